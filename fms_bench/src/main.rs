//! `fms_bench`: the fms scale benchmark (issue #8).
//!
//! `fms_bench run` starts a real `fms_server`, runs N simulated robots in this process
//! publishing `RobotState` over real Zenoh at f Hz, opens K WebSocket dashboards, and
//! measures offered and processed messages/s, loss, end-to-end latency, server CPU and RSS,
//! WebSocket bytes, `GET /api/robots` latency and (optionally) task round trips. With
//! `--saturation-s` it also floods the server's ingest and a raw Zenoh baseline (router
//! process + subscriber process, no fms logic) with the same payload, and reports the ratio.
//!
//! Everything runs on loopback, is bounded in time, and the child processes die with it.

mod baseline;
mod fleet;
mod report;
mod run;
mod stats;
mod ws;

use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "fms_bench",
    version,
    about = "fms scale benchmark (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run one benchmark scenario against a real fms_server and print its table.
    Run(run::RunArgs),
    /// A plain Zenoh router (for the raw baseline); exits when its stdin closes.
    ZenohRouter {
        #[arg(long)]
        listen: String,
        #[arg(long, default_value_t = 600)]
        max_s: u64,
    },
    /// A counting Zenoh subscriber (for the raw baseline); prints `count N BYTES` every 50 ms.
    ZenohSub {
        #[arg(long, default_value = "fms/robot/*/state")]
        key: String,
        /// Connect as a client to this router.
        #[arg(long, conflicts_with = "listen")]
        connect: Option<String>,
        /// Be a router listening here instead (subscriber and router in one process).
        #[arg(long)]
        listen: Option<String>,
        #[arg(long, default_value_t = 600)]
        max_s: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::main(args).await,
        Command::ZenohRouter { listen, max_s } => {
            baseline::router(&listen, Duration::from_secs(max_s)).await
        }
        Command::ZenohSub {
            key,
            connect,
            listen,
            max_s,
        } => {
            baseline::sub(
                &key,
                connect.as_deref(),
                listen.as_deref(),
                Duration::from_secs(max_s),
            )
            .await
        }
    }
}
