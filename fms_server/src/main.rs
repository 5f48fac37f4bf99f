//! `fms_server` binary: resolves configuration, binds the HTTP port and runs the server
//! until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use fms_server::config::{strip_ros_args, Cli, Command, KeysAction, LogSettings, ServerConfig};
use fms_server::link::ZenohMode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse_from(strip_ros_args(std::env::args()));
    match cli.command.take() {
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
        Some(cmd @ (Command::Keys { .. } | Command::Token { .. })) => return admin(cmd, cli).await,
        None => {}
    }
    let config = ServerConfig::resolve(cli)?;
    fms_server::logging::init(&config.log_level, &config.log)?;
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
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

/// `fms_server keys …` and `fms_server token …`: administration against the configured store.
async fn admin(command: Command, cli: Cli) -> anyhow::Result<()> {
    let config = ServerConfig::resolve(cli)?;
    match command {
        Command::Token { sub, role, ttl_s } => {
            let secret = config.auth.jwt_secret.as_ref().context(
                "no JWT secret: set FMS_JWT_SECRET or FMS_JWT_SECRET_FILE ([auth] jwt_secret_file)",
            )?;
            let token = fms_server::auth::issue_jwt(
                &sub,
                role,
                std::time::Duration::from_secs(ttl_s),
                &secret.0,
            )?;
            println!("{token}");
        }
        Command::Keys { action } => {
            let store =
                fms_server::store::open_store(config.database_url.as_deref(), &config.data_dir)
                    .await?;
            let keys = fms_server::auth::Keys::new(store);
            match action {
                KeysAction::Create { name, role } => {
                    let (record, key) = keys.create(&name, role, "cli").await?;
                    eprintln!(
                        "created key {} ({}, {}); it is shown once:",
                        record.id, record.name, record.role
                    );
                    println!("{key}");
                }
                KeysAction::List => {
                    println!(
                        "{:<14} {:<24} {:<9} {:<14} revoked_ms",
                        "id", "name", "role", "created_ms"
                    );
                    for k in keys.list().await? {
                        println!(
                            "{:<14} {:<24} {:<9} {:<14} {}",
                            k.id,
                            k.name,
                            k.role.to_string(),
                            k.created_ms,
                            k.revoked_ms.map_or("-".into(), |t| t.to_string())
                        );
                    }
                }
                KeysAction::Revoke { id } => {
                    if !keys.revoke(&id, "cli").await? {
                        anyhow::bail!("no key {id}");
                    }
                    println!("revoked {id} (servers forget cached keys within a minute)");
                }
            }
        }
        Command::BenchDispatch { .. } | Command::Phone(_) => {}
    }
    Ok(())
}

/// `fms_server phone`: the mobile teleop server.
async fn phone(args: fms_server::phone::PhoneArgs) -> anyhow::Result<()> {
    args.validate()?;
    fms_server::logging::init(
        &args.log_level,
        &LogSettings {
            format: Default::default(),
            file: None,
            max_size_bytes: u64::MAX,
            backups: 0,
        },
    )?;
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
    // On shutdown each phone gets a close frame (1001) and its robot is released.
    fms_server::phone::serve(listener, phone, &args.frontend_dir, shutdown_signal()).await?;
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
