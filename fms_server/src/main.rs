//! `fms_server` binary: resolves configuration, binds the HTTP port and runs the server
//! until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use fms_server::config::{strip_ros_args, Cli, Command, ServerConfig};
use fms_server::link::ZenohMode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(strip_ros_args(std::env::args()));
    match cli.command {
        Some(Command::BenchDispatch {
            tasks,
            robots,
            runs,
        }) => {
            print!(
                "{}",
                fms_server::bench::dispatch(tasks, robots, runs).report()
            );
            return Ok(());
        }
        Some(Command::Phone(args)) => return phone(args).await,
        None => {}
    }
    let config = ServerConfig::resolve(cli)?;
    init_logs(&config.log_level)?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let server = fms_server::Server::start(config).await?;
    let config = server.config();
    let zenoh = match &config.zenoh {
        ZenohMode::EmbeddedRouter { listen } => format!("embedded router on {}", listen.join(", ")),
        ZenohMode::Client { connect } => format!("client of {connect}"),
    };
    // Tests and scripts wait for this line.
    println!("fms_server listening on http://{addr} (zenoh: {zenoh})");
    if config.frontend_dir.is_dir() {
        println!("dashboard: http://{addr}/");
    }
    server.serve(listener, shutdown_signal()).await?;
    Ok(())
}

fn init_logs(filter: &str) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).context("invalid log level")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

/// `fms_server phone`: the mobile teleop server.
async fn phone(args: fms_server::phone::PhoneArgs) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    init_logs(&args.log_level)?;
    let listener = tokio::net::TcpListener::bind(args.addr())
        .await
        .with_context(|| format!("cannot listen on {}", args.addr()))?;
    let addr = listener.local_addr()?;
    let (phone, _robots) = fms_server::phone::start(&args)
        .await
        .map_err(|e| anyhow::anyhow!("zenoh: {e}"))?;
    println!(
        "fms phone server listening on http://{addr} (zenoh: client of {})",
        args.zenoh_endpoint
    );
    axum::serve(listener, fms_server::phone::app(phone, &args.frontend_dir))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
