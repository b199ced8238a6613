//! The `shopchat` binary: load the config, then serve (default) or mint a token.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shopchat::auth::Authenticator;
use shopchat::config::Config;
use shopchat::ids::UserId;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "shopchat",
    version,
    about = "Instant-messaging server for B2B2C e-commerce"
)]
struct Cli {
    /// Config file (default: config.dev.toml, or config.produce.toml when SHOPCHAT_ENV=produce).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP and WebSocket (the default).
    Serve,
    /// Print a token for a user, signed with the configured secret.
    Token {
        #[arg(long)]
        uid: i64,
        /// Lifetime in seconds (default: auth.token_ttl_secs).
        #[arg(long)]
        ttl: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let loaded = match Config::load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shopchat: {}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    for key in &loaded.unknown_keys {
        log::warn!("config: unknown key {key} (ignored; is it a typo?)");
    }
    let config = loaded.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token { uid, ttl } => {
            if uid <= 0 {
                eprintln!("shopchat: --uid must be a positive integer");
                return ExitCode::from(2);
            }
            let auth = Authenticator::new(&config.auth);
            println!(
                "{}",
                auth.mint_with_ttl(UserId(uid), ttl.unwrap_or(config.auth.token_ttl_secs))
            );
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config),
    }
}

/// Parser errors quote the offending source over several lines; an operator needs one
/// line that says what and where.
fn one_line(text: &str) -> String {
    let is_snippet = |l: &str| {
        let rest = l.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        rest.is_empty() || rest.starts_with('|') || rest.starts_with('^')
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !is_snippet(l))
        .collect::<Vec<_>>()
        .join(": ")
}

fn serve(config: Config) -> ExitCode {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shopchat: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let result = actix_web::rt::System::new().block_on(shopchat::run(
        listener,
        config,
        shopchat::app::stop_signal(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopchat: {e}");
            ExitCode::from(1)
        }
    }
}
