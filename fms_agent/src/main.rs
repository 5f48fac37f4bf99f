//! `fms_agent` binary: resolves configuration and runs the agent until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use fms_agent::config::{split_ros_args, AgentConfig, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (args, ros) = split_ros_args(std::env::args().collect())?;
    let cli = Cli::parse_from(args);
    let config = AgentConfig::resolve(cli, ros)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_level)
                .context("invalid log level")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    let robot = fms_agent::make_robot(&config)?;
    fms_agent::run(&config, robot, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
