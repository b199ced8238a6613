//! `shopchat-bench`: drives a running server over real WebSockets with the protocol of
//! PROTOCOL.md and reports throughput and latency. It mints its own tokens with the
//! server's secret. See BENCHMARKS.md for how the published figures were taken.
//!
//!     shopchat-bench --url ws://127.0.0.1:9504 pairs --pairs 100 --duration 10
//!     shopchat-bench pairs --pairs 100 --duration 10 --rate 10000
//!     shopchat-bench --admin-token T group --members 1000 --duration 10
//!     shopchat-bench --admin-token T service --shops 10 --agents 3 --consumers 300 --duration 10
//!     shopchat-bench idle --connections 10000 --pid $(pidof shopchat)
//!     shopchat-bench soak --minutes 30 --rate 5000 --pid $(pidof shopchat)
//!     shopchat-bench disk --dir data --seconds 10

mod client;
mod disk;
mod soak;
mod stats;
mod words;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use shopchat::auth::Authenticator;
use shopchat::config::AuthConfig;
use shopchat::ids::UserId;
use tokio::sync::watch;
use tokio::time::Instant;

use client::{Plan, Target, Ws};
use stats::{histogram, CpuClock, Stats, Summary};

#[derive(Parser)]
#[command(
    name = "shopchat-bench",
    about = "Load test a shopchat server over real WebSockets"
)]
struct Cli {
    /// The server's WebSocket base URL (its HTTP API is the same host and port).
    #[arg(long, default_value = "ws://127.0.0.1:9504", global = true)]
    url: String,
    /// A second node of the same cluster: every other connection (the second user of
    /// each pair) connects there, so each message crosses from one node to the other.
    #[arg(long, global = true)]
    peer_url: Option<String>,
    /// The server's auth.jwt_secret (tokens are minted here).
    #[arg(long, default_value = shopchat::config::DEV_JWT_SECRET, global = true)]
    secret: String,
    /// The server's auth.jwt_issuer, if it checks one.
    #[arg(long, default_value = "", global = true)]
    issuer: String,
    /// The server's admin.token (group and service set-up use the admin API).
    #[arg(long, default_value = shopchat::config::DEV_ADMIN_TOKEN, global = true)]
    admin_token: String,
    /// User ids of the run start here (keep them clear of real users).
    #[arg(long, default_value_t = 1_000_000, global = true)]
    uid_base: i64,
    /// Messages a connection may have awaiting their ack.
    #[arg(long, default_value_t = 8, global = true)]
    window: usize,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 200, global = true)]
    connect_concurrency: usize,
    /// Load-generator threads (pin the process with taskset to keep it off the server's core).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    /// The server's process id (same machine): its CPU over the run is reported, and
    /// what it did per second of CPU (the server's cost, even where the load is the limit).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Also give the p99 of each period of this many seconds (pairs, group): where a
    /// run's tail comes from, a few stalls or every moment.
    #[arg(long, global = true)]
    p99_every: Option<f64>,
    /// Print one JSON summary line last.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// P pairs of users exchanging 1:1 messages (both ways).
    Pairs {
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Open loop at this many messages per second in total; absent: flat out.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// One group of G members (created through the admin API); `senders` of them post.
    Group {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 1)]
        senders: usize,
        /// Use this existing group (its members must be the run's uids) instead of
        /// creating one through the admin API.
        #[arg(long)]
        group_id: Option<i64>,
        /// Open loop at this many messages per second in total; absent: flat out.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// S shops of A online agents each, and C consumers asking them.
    Service {
        #[arg(long, default_value_t = 10)]
        shops: usize,
        #[arg(long, default_value_t = 3)]
        agents: usize,
        #[arg(long, default_value_t = 300)]
        consumers: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// No server: the sensitive-word matcher (PROTOCOL.md §14) with a list of W words,
    /// timed on messages of C characters, clean and with matches (masked).
    Words {
        #[arg(long, default_value_t = 20_000)]
        words: usize,
        #[arg(long, default_value_t = 4000)]
        chars: usize,
        #[arg(long, default_value_t = 2000)]
        rounds: usize,
    },
    /// No server: how long this disk takes to make a small write durable (write `kib`
    /// KiB, then fdatasync), as SQLite does at each commit with `sqlite_synchronous =
    /// "full"`. Run it in the server's data folder: its tail is a floor under the tail
    /// of shopchat's latency on that disk.
    Disk {
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 16)]
        kib: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Pause between syncs, in ms (0: back to back).
        #[arg(long, default_value_t = 0.5)]
        pause_ms: f64,
    },
    /// A long open-loop run: `pairs` pairs at `rate` messages per second in total, while
    /// `churn` users a second connect, send one message to a pair's member and leave.
    /// Reports p99 per minute, the server's RSS and disk writes (with --pid), and
    /// accounts for every message.
    Soak {
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Connections opened (and closed after one message) per second; 0 for none.
        #[arg(long, default_value_t = 10.0)]
        churn: f64,
        #[arg(long)]
        pid: Option<u32>,
        /// The server's SQLite file (e.g. data/shopchat.db): report the space taken.
        #[arg(long)]
        db_file: Option<std::path::PathBuf>,
    },
    /// N idle connections; with --pid, the server's RSS per connection from /proc.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long)]
        pid: Option<u32>,
        /// How long to hold them once open.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Scenario::Words {
        words,
        chars,
        rounds,
    } = cli.scenario
    {
        return words::run(words, chars, rounds);
    }
    if let Scenario::Disk {
        dir,
        kib,
        seconds,
        pause_ms,
    } = &cli.scenario
    {
        return disk::run(dir, *kib, *seconds, *pause_ms);
    }
    // `ws://host:9504/` (as the README writes URLs) and `ws://host:9504` are one server.
    cli.url = cli.url.trim_end_matches('/').to_string();
    cli.peer_url = cli.peer_url.map(|u| u.trim_end_matches('/').to_string());
    // One load thread: the current-thread scheduler, with no hand-offs between threads.
    let rt = match cli.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    let summary = rt.block_on(run(&cli))?;
    summary.print();
    if cli.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}

pub(crate) struct Bench<'a> {
    cli: &'a Cli,
    auth: Authenticator,
    http: reqwest::Client,
    http_base: String,
}

async fn run(cli: &Cli) -> anyhow::Result<Summary> {
    let auth = Authenticator::new(&AuthConfig {
        jwt_secret: cli.secret.clone(),
        jwt_issuer: cli.issuer.clone(),
        ..AuthConfig::default()
    });
    let http_base = cli
        .url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    let bench = Bench {
        cli,
        auth,
        http: reqwest::Client::new(),
        http_base,
    };
    match cli.scenario {
        Scenario::Pairs {
            pairs,
            duration,
            rate,
        } => bench.pairs(pairs, duration, rate).await,
        Scenario::Group {
            members,
            duration,
            senders,
            group_id,
            rate,
        } => {
            bench
                .group(members, duration, senders, group_id, rate)
                .await
        }
        Scenario::Service {
            shops,
            agents,
            consumers,
            duration,
        } => bench.service(shops, agents, consumers, duration).await,
        Scenario::Idle {
            connections,
            pid,
            duration,
        } => bench.idle(connections, pid, duration).await,
        Scenario::Soak {
            minutes,
            rate,
            pairs,
            churn,
            pid,
            ref db_file,
        } => {
            soak::run(
                &bench,
                soak::Soak {
                    minutes,
                    rate,
                    pairs,
                    churn,
                    pid,
                    db_file: db_file.clone(),
                },
            )
            .await
        }
        Scenario::Words { .. } | Scenario::Disk { .. } => {
            anyhow::bail!("`words` and `disk` need no server and return early")
        }
    }
}

impl Bench<'_> {
    /// Opens one connection per uid, `connect_concurrency` at a time, in uid order.
    pub(crate) async fn connect_all(&self, uids: &[i64]) -> anyhow::Result<Vec<Ws>> {
        let tokens: Vec<String> = uids.iter().map(|u| self.auth.mint(UserId(*u))).collect();
        let (url, peer) = (&self.cli.url, self.cli.peer_url.as_ref());
        let conns: Vec<anyhow::Result<Ws>> =
            futures_util::stream::iter(tokens.into_iter().enumerate())
                .map(|(i, t)| async move {
                    let url = peer.filter(|_| i % 2 == 1).unwrap_or(url);
                    client::connect(url, &t).await
                })
                .buffered(self.cli.connect_concurrency.max(1))
                .collect()
                .await;
        conns
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()
            .context("opening connections")
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.http_base))
            .bearer_auth(&self.cli.admin_token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("admin {path}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "admin {path}: {status} {body}");
        Ok(body)
    }

    /// Runs every connection with its plan for `duration`, then waits (at most 10 s)
    /// for the pushes still owed: `fanout` per acked message.
    async fn measure(
        &self,
        scenario: &'static str,
        runs: Vec<(Ws, Plan)>,
        duration: f64,
        fanout: u64,
    ) -> anyhow::Result<Summary> {
        let connections = runs.len();
        let stats = Arc::new(Stats {
            periods: self
                .cli
                .p99_every
                .map(|s| stats::Periods::new(Duration::from_secs_f64(s.max(0.001)))),
            ..Stats::default()
        });
        let (done_tx, done_rx) = watch::channel(false);
        let started = Instant::now();
        let cpu = CpuClock::start();
        let server_cpu = self.cli.server_pid.map(|p| CpuClock::of(p.to_string()));
        let tasks: Vec<_> = runs
            .into_iter()
            .map(|(ws, plan)| tokio::spawn(client::drive(ws, plan, stats.clone(), done_rx.clone())))
            .collect();
        let progress = progress_bar(duration);
        let until = started + Duration::from_secs_f64(duration);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            progress.set_position((started.elapsed().as_secs_f64() * 10.0) as u64);
            progress.set_message(format!(
                "sent {} acked {} received {}",
                Stats::get(&stats.sent),
                Stats::get(&stats.acked),
                Stats::get(&stats.received)
            ));
        }
        let elapsed = started.elapsed();
        let generator_cpu_pct = cpu.percent();
        let server_cpu_pct = server_cpu.and_then(|c| c.percent());
        progress.finish_and_clear();
        // Let acks and pushes in flight arrive.
        let drain_until = Instant::now() + Duration::from_secs(10);
        loop {
            if stats.settled(fanout) || Instant::now() >= drain_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = done_tx.send(true);
        let mut latency = histogram();
        for t in tasks {
            let h: Histogram<u64> = t.await?;
            latency.add(&h)?;
        }
        let expected = Stats::get(&stats.acked) * fanout;
        let mut summary = Summary::new(scenario, connections, elapsed, &stats, expected, &latency);
        summary.generator_cpu_pct = generator_cpu_pct;
        summary.server_cpu_pct = server_cpu_pct;
        if let Some(periods) = &stats.periods {
            summary.p99_ms_per_period = periods.p99s().into_iter().map(|(_, p)| p).collect();
        }
        Ok(summary)
    }

    /// Each connection of `uids` (one per uid, in order) with its plan: users base+2k and
    /// base+2k+1 are a pair, each sending to the other.
    fn pair_plans(
        &self,
        conns: Vec<Ws>,
        uids: &[i64],
        every: Option<Duration>,
        until: Instant,
    ) -> Vec<(Ws, Plan)> {
        let base = self.cli.uid_base;
        conns
            .into_iter()
            .zip(uids)
            .map(|(ws, uid)| {
                let peer = if (uid - base) % 2 == 0 {
                    uid + 1
                } else {
                    uid - 1
                };
                let plan = Plan {
                    target: Target::Direct(peer),
                    window: self.cli.window,
                    every,
                    until,
                };
                (ws, plan)
            })
            .collect()
    }

    async fn pairs(
        &self,
        pairs: usize,
        duration: f64,
        rate: Option<f64>,
    ) -> anyhow::Result<Summary> {
        let base = self.cli.uid_base;
        let uids: Vec<i64> = (0..pairs as i64 * 2).map(|i| base + i).collect();
        let conns = self.connect_all(&uids).await?;
        let senders = uids.len() as f64;
        let every = rate.map(|r| Duration::from_secs_f64(senders / r.max(1e-9)));
        let until = Instant::now() + Duration::from_secs_f64(duration);
        let runs = self.pair_plans(conns, &uids, every, until);
        self.measure("pairs", runs, duration, 1).await
    }

    async fn group(
        &self,
        members: usize,
        duration: f64,
        senders: usize,
        group_id: Option<i64>,
        rate: Option<f64>,
    ) -> anyhow::Result<Summary> {
        anyhow::ensure!(members >= 2, "a group needs at least 2 members");
        let base = self.cli.uid_base;
        let uids: Vec<i64> = (0..members as i64).map(|i| base + i).collect();
        let group = match group_id {
            Some(g) => g,
            None => self
                .admin(
                    reqwest::Method::POST,
                    "/admin/groups",
                    json!({"name": "bench", "owner_uid": uids[0], "member_uids": uids[1..]}),
                )
                .await?["result"]["group_id"]
                .as_i64()
                .context("POST /admin/groups gave no group_id")?,
        };
        let conns = self.connect_all(&uids).await?;
        let until = Instant::now() + Duration::from_secs_f64(duration);
        let every = rate.map(|r| Duration::from_secs_f64(senders as f64 / r.max(1e-9)));
        let runs = conns
            .into_iter()
            .enumerate()
            .map(|(i, ws)| {
                let target = if i < senders {
                    Target::Group(group)
                } else {
                    Target::Nothing
                };
                let plan = Plan {
                    target,
                    window: self.cli.window,
                    every,
                    until,
                };
                (ws, plan)
            })
            .collect();
        // Every member but the sender gets each message.
        self.measure("group", runs, duration, members as u64 - 1)
            .await
    }

    async fn service(
        &self,
        shops: usize,
        agents: usize,
        consumers: usize,
        duration: f64,
    ) -> anyhow::Result<Summary> {
        anyhow::ensure!(
            shops > 0 && agents > 0,
            "need at least one shop and one agent"
        );
        let base = self.cli.uid_base;
        let shop_ids: Vec<i64> = (0..shops as i64).map(|i| base + i).collect();
        let agent_uids: Vec<i64> = (0..(shops * agents) as i64)
            .map(|i| base + shops as i64 + i)
            .collect();
        let consumer_uids: Vec<i64> = (0..consumers as i64)
            .map(|i| base + (shops * (agents + 1)) as i64 + i)
            .collect();
        for (s, shop) in shop_ids.iter().enumerate() {
            self.admin(
                reqwest::Method::PUT,
                &format!("/admin/shops/{shop}"),
                json!({"name": format!("bench shop {s}")}),
            )
            .await?;
            for agent in &agent_uids[s * agents..(s + 1) * agents] {
                self.admin(
                    reqwest::Method::PUT,
                    &format!("/admin/shops/{shop}/agents/{agent}"),
                    json!({}),
                )
                .await?;
            }
        }
        let mut agent_conns = self.connect_all(&agent_uids).await?;
        for ws in agent_conns.iter_mut() {
            client::request(ws, "service", "setOnline", json!({"online": true})).await?;
        }
        let consumer_conns = self.connect_all(&consumer_uids).await?;
        let until = Instant::now() + Duration::from_secs_f64(duration);
        let window = self.cli.window;
        let mut runs: Vec<(Ws, Plan)> = agent_conns
            .into_iter()
            .map(|ws| {
                let plan = Plan {
                    target: Target::Nothing,
                    window,
                    every: None,
                    until,
                };
                (ws, plan)
            })
            .collect();
        for (i, ws) in consumer_conns.into_iter().enumerate() {
            let plan = Plan {
                target: Target::Shop(shop_ids[i % shops]),
                window,
                every: None,
                until,
            };
            runs.push((ws, plan));
        }
        // Each consumer message reaches the one agent it is routed to.
        self.measure("service", runs, duration, 1).await
    }

    async fn idle(
        &self,
        connections: usize,
        pid: Option<u32>,
        duration: f64,
    ) -> anyhow::Result<Summary> {
        let before = pid.map(rss_kib).transpose()?;
        let base = self.cli.uid_base;
        let uids: Vec<i64> = (0..connections as i64).map(|i| base + i).collect();
        let started = Instant::now();
        let conns = self.connect_all(&uids).await?;
        // Let the server settle (sessions registered, buffers at rest) before measuring.
        tokio::time::sleep(Duration::from_secs_f64(duration)).await;
        let after = pid.map(rss_kib).transpose()?;
        let elapsed = started.elapsed();
        drop(conns);
        let mut summary = Summary::new(
            "idle",
            connections,
            elapsed,
            &Stats::default(),
            0,
            &histogram(),
        );
        if let (Some(b), Some(a)) = (before, after) {
            let grew = a.saturating_sub(b);
            summary.rss_kib_total = Some(grew);
            summary.rss_kib_per_connection = Some(grew as f64 / connections.max(1) as f64);
        }
        Ok(summary)
    }
}

/// Resident memory of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    shopchat::metrics::rss_kib(pid).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// A progress bar in tenths of a second; drawn only when stderr is a terminal.
fn progress_bar(duration: f64) -> ProgressBar {
    let bar = ProgressBar::new((duration * 10.0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed} [{bar:30}] {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar
}
