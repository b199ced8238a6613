//! Database and Redis servers of a test's own: started from the installed server
//! binaries in a temp folder, on a free port, so that a test can kill, pause and restart
//! them by their pid without touching the machine's shared services.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mariadb,
    Postgres,
    Redis,
}

/// How long a server may take to answer after it was (re)started.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct Instance {
    pub kind: Kind,
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

const POSTGRES_BIN: &str = "/usr/lib/postgresql";

/// The folder of PostgreSQL's server binaries (the newest installed version).
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(POSTGRES_BIN)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn installed(kind: Kind) -> Result<(), String> {
    let missing = |what: &str| Err(format!("{what} is not installed"));
    match kind {
        Kind::Mariadb if !Path::new("/usr/sbin/mariadbd").exists() => missing("/usr/sbin/mariadbd"),
        Kind::Mariadb if which("mariadb-install-db").is_none() => missing("mariadb-install-db"),
        Kind::Postgres if postgres_bin().is_none() => {
            missing("PostgreSQL's server (initdb, postgres)")
        }
        Kind::Redis if which("redis-server").is_none() => missing("redis-server"),
        _ => Ok(()),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port should be free")
        .port()
}

/// The uid and gid PostgreSQL's server must run as when the test runs as root (it
/// refuses to run as root): those of the `postgres` account.
fn postgres_account() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} should run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Instance {
    /// A new server of `kind`, answering; `None` (the reason printed) when its binaries
    /// are not installed, unless `SHOPCHAT_REQUIRE_SERVICES=1`, where that fails the test.
    pub fn start(kind: Kind) -> Option<Instance> {
        if let Err(why) = installed(kind) {
            if std::env::var("SHOPCHAT_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("SHOPCHAT_REQUIRE_SERVICES=1 but {why}");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir should be creatable");
        let mut me = Instance {
            kind,
            dir,
            port: free_port(),
            child: None,
        };
        me.init();
        me.launch();
        Some(me)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(&self) {
        match self.kind {
            Kind::Mariadb => run(Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", self.data().display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ])),
            Kind::Postgres => {
                let bin = postgres_bin().expect("checked by installed()");
                let mut cmd = Command::new(bin.join("initdb"));
                cmd.arg("-D")
                    .arg(self.data())
                    .args(["-A", "trust", "-U", "postgres"]);
                self.as_postgres(&mut cmd);
                run(&mut cmd);
            }
            Kind::Redis => {}
        }
    }

    /// Runs `cmd` as the `postgres` account when the test runs as root, its folder
    /// handed to that account first.
    fn as_postgres(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        if !running_as_root() {
            return;
        }
        let (uid, gid) = postgres_account().expect("running as root needs a postgres account");
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(self.dir.path()));
        cmd.uid(uid).gid(gid);
    }

    /// Starts the server process on the existing data folder and waits until it answers.
    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("the log file should be creatable");
        let mut cmd = match self.kind {
            Kind::Mariadb => {
                let mut c = Command::new("/usr/sbin/mariadbd");
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data().display()))
                    .arg(format!("--port={}", self.port))
                    .arg(format!(
                        "--socket={}",
                        self.dir.path().join("sock").display()
                    ))
                    .arg(format!(
                        "--pid-file={}",
                        self.dir.path().join("pid").display()
                    ))
                    .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
                    .args(["--innodb-buffer-pool-size=64M", "--max-connections=500"]);
                c
            }
            Kind::Postgres => {
                let bin = postgres_bin().expect("checked by installed()");
                let mut c = Command::new(bin.join("postgres"));
                c.arg("-D")
                    .arg(self.data())
                    .arg("-p")
                    .arg(self.port.to_string())
                    .arg("-k")
                    .arg(self.dir.path())
                    .args([
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "max_connections=300",
                    ]);
                self.as_postgres(&mut c);
                c
            }
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--bind", "127.0.0.1", "--port"])
                    .arg(self.port.to_string())
                    .args(["--save", "", "--appendonly", "no", "--dir"])
                    .arg(self.dir.path());
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file handle should clone"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} should start: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    /// The server's own command-line client, connected to it.
    fn client(&self) -> Command {
        let port = self.port.to_string();
        let (program, args): (&str, Vec<&str>) = match self.kind {
            Kind::Mariadb => ("mariadb", vec!["-h127.0.0.1", "-uroot", "-N", "-P", &port]),
            Kind::Postgres => (
                "psql",
                vec![
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-p",
                    &port,
                    "-d",
                    "postgres",
                ]
                .into_iter()
                .chain(["-v", "ON_ERROR_STOP=1", "-At"])
                .collect(),
            ),
            Kind::Redis => ("redis-cli", vec!["-h", "127.0.0.1", "-p", &port]),
        };
        let mut c = Command::new(program);
        c.args(args);
        c
    }

    /// `statements` run by [`client`](Self::client) (`-e` for MariaDB, `-c` for psql).
    fn query(&self, statements: &str) -> Command {
        let mut c = self.client();
        match self.kind {
            Kind::Mariadb => c.args(["-e", statements]),
            Kind::Postgres => c.args(["-c", statements]),
            Kind::Redis => panic!("no SQL on Redis"),
        };
        c
    }

    fn answers(&self) -> bool {
        let mut cmd = match self.kind {
            Kind::Redis => {
                let mut c = self.client();
                c.arg("ping");
                c
            }
            _ => self.query("SELECT 1"),
        };
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        while !self.answers() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{:?} exited with {status} as it started:\n{}",
                    self.kind,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not answer:\n{}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    fn signal(&self, sig: &str) {
        run(Command::new("kill").args([sig, &self.pid().to_string()]));
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A clean shutdown, waited for: SIGTERM, or SIGINT for PostgreSQL (its "fast"
    /// shutdown; SIGTERM would wait for every client to leave).
    pub fn stop(&mut self) {
        self.signal(if self.kind == Kind::Postgres {
            "-INT"
        } else {
            "-TERM"
        });
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Starts the server again on its data and port, after [`kill`](Self::kill) or
    /// [`stop`](Self::stop). PostgreSQL's server killed with -9 leaves backends that
    /// hold its shared memory for a moment: the start is tried until they are gone.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart follows kill or stop");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.launch()));
            match started {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => std::panic::resume_unwind(e),
                Err(_) => {
                    self.child = None;
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
    }

    /// Runs SQL through the server's own client; what it printed.
    pub fn sql(&self, statements: &str) -> String {
        let mut cmd = self.query(statements);
        let out = cmd.output().expect("the client should run");
        assert!(
            out.status.success(),
            "{statements}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new database on this server, and the URL shopchat reaches it at.
    pub fn database(&self, name: &str) -> String {
        match self.kind {
            Kind::Mariadb => {
                self.sql(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"));
                format!("mysql://root@127.0.0.1:{}/{name}", self.port)
            }
            Kind::Postgres => {
                self.sql(&format!("CREATE DATABASE {name}"));
                format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
            }
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Ends every client connection but the one asking (as an operator's KILL or
    /// `pg_terminate_backend` would); returns how many were ended.
    pub fn cut_connections(&self) -> usize {
        match self.kind {
            Kind::Mariadb => {
                let ids = self.sql(
                    "SELECT id FROM information_schema.processlist \
                     WHERE id <> CONNECTION_ID() AND command <> 'Daemon' AND user <> 'system user'",
                );
                let ids: Vec<&str> = ids.split_whitespace().collect();
                let kills: String = ids.iter().map(|id| format!("KILL {id};")).collect();
                if !kills.is_empty() {
                    self.sql(&kills);
                }
                ids.len()
            }
            Kind::Postgres => self
                .sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                )
                .trim()
                .parse()
                .expect("a count"),
            Kind::Redis => {
                run(self.client().args(["client", "kill", "type", "normal"]));
                0
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
    }
}
