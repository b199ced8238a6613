//! The `shopchat` binary: load the config, then serve (default) or mint a token.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use shopchat::auth::Authenticator;
use shopchat::config::Config;
use shopchat::ids::UserId;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const HELP: &str = "\
Instant-messaging server for B2B2C e-commerce

Usage: shopchat [--config PATH] [COMMAND]

Commands:
  serve                    Serve HTTP and WebSocket (the default)
  token --uid N [--ttl S]  Print a token for user N, signed with the configured secret
                           (lifetime S seconds, default auth.token_ttl_secs)

Options:
  --config PATH  Config file (default: config.dev.toml, or config.produce.toml when
                 SHOPCHAT_ENV=produce)
  -h, --help     Print this help
  -V, --version  Print the version
";

struct Cli {
    config: Option<PathBuf>,
    command: Command,
}

enum Command {
    Serve,
    Token { uid: i64, ttl: Option<u64> },
}

/// The command line, parsed by `lexopt` (the binary's only argument parser; the
/// load generator's richer CLI lives in the bench crate).
fn parse_args() -> Result<Cli, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut config = None;
    let (mut command, mut uid, mut ttl) = (None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("config") => config = Some(PathBuf::from(parser.value()?)),
            Long("uid") => uid = Some(parser.value()?.parse()?),
            Long("ttl") => ttl = Some(parser.value()?.parse()?),
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            Short('V') | Long("version") => {
                println!("shopchat {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            Value(v) if command.is_none() => command = Some(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let command = match command.as_deref() {
        None | Some("serve") => Command::Serve,
        Some("token") => Command::Token {
            uid: uid.ok_or("token needs --uid")?,
            ttl,
        },
        Some(other) => return Err(format!("unknown command {other:?}").into()),
    };
    if uid.is_some() && !matches!(command, Command::Token { .. }) {
        return Err("--uid belongs to the token command".into());
    }
    Ok(Cli { config, command })
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("shopchat: {e} (see shopchat --help)");
            return ExitCode::from(2);
        }
    };
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
    match cli.command {
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
