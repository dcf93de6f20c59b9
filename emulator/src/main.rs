//! The `workbook-emulator` command: serves `.xlsx` files over the Graph workbook session API.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workbook_emulator::{AsyncCreate, Emulator};

/// A local Microsoft Graph workbook session server on real .xlsx files, for offline tests.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Options {
    /// Address to listen on, as IP:PORT. Only loopback addresses are accepted unless
    /// --allow-remote is given.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Accept a listen address that is not loopback. The emulator has no real security:
    /// expose it only on networks you trust.
    #[arg(long)]
    allow_remote: bool,

    /// A workbook to serve, as ITEM_ID=PATH.xlsx (repeatable). Path addressing finds it by
    /// its file name at the drive root.
    #[arg(long = "workbook", value_name = "ID=FILE", value_parser = parse_workbook, required = true)]
    workbooks: Vec<(String, PathBuf)>,

    /// Bearer token that every request must carry. Without it, any non-empty bearer token
    /// is accepted.
    #[arg(long)]
    token: Option<String>,

    /// Maximum number of open sessions per workbook.
    #[arg(long, default_value_t = 25)]
    session_cap: usize,

    /// Inactivity timeout of persistent sessions, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    persistent_timeout: u64,

    /// Inactivity timeout of non-persistent sessions, in seconds.
    #[arg(long, default_value_t = 420, value_name = "SECONDS")]
    non_persistent_timeout: u64,

    /// Respond to createSession with 'Prefer: respond-async' by 202 and a long-running
    /// operation that succeeds after this many polls. Without it, createSession always
    /// returns 201.
    #[arg(long, value_name = "POLLS")]
    async_create_polls: Option<u32>,
}

fn parse_workbook(text: &str) -> Result<(String, PathBuf), String> {
    let (id, file) = text
        .split_once('=')
        .ok_or_else(|| format!("invalid workbook '{text}': expected ITEM_ID=PATH.xlsx"))?;
    if id.is_empty() || file.is_empty() {
        return Err(format!(
            "invalid workbook '{text}': both the item id and the path are needed"
        ));
    }
    Ok((id.to_owned(), PathBuf::from(file)))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "workbook_emulator=info".into()),
        )
        // Colour codes only where a person reads them, not in files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let options = Options::parse();

    if !options.listen.ip().is_loopback() && !options.allow_remote {
        eprintln!(
            "error: listen address {} is not loopback; pass --allow-remote to serve on it",
            options.listen
        );
        return ExitCode::from(2);
    }

    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> std::io::Result<()> {
    let mut builder = Emulator::builder()
        .bind(options.listen)
        .session_cap(options.session_cap)
        .persistent_timeout(Duration::from_secs(options.persistent_timeout))
        .non_persistent_timeout(Duration::from_secs(options.non_persistent_timeout));
    for (id, file) in options.workbooks {
        builder = builder.workbook(id, file);
    }
    if let Some(token) = options.token {
        builder = builder.token(token);
    }
    if let Some(polls) = options.async_create_polls {
        builder = builder.async_create(AsyncCreate {
            polls_before_success: polls,
            fail: false,
        });
    }

    let emulator = builder.start().await?;
    println!(
        "workbook emulator listening: base URL {}",
        emulator.base_url()
    );

    tokio::signal::ctrl_c().await?;
    tracing::info!("interrupted, stopping");
    emulator.shutdown().await;
    Ok(())
}
