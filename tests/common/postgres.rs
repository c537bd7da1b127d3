//! A throwaway PostgreSQL server for tests: Debian's `initdb`/`pg_ctl` (from
//! `/usr/lib/postgresql/*/bin`, installed by `tests/hosts/setup`) in a temporary directory, run as
//! an unprivileged user (`nobody` via `setpriv` when the tests run as root), listening on
//! 127.0.0.1 at a free port and on a unix socket in that directory. Password authentication
//! (scram) for user `knockplay`, password [`PASSWORD`]. Dropping it (also in a panic) stops the
//! server at once and removes the directory.
//!
//! Self-contained (std and the `postgres` crate only), so the library's unit tests include it too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The test user's password (give it to clients as `PGPASSWORD`).
pub const PASSWORD: &str = "knockplay-test-pw";
pub const USER: &str = "knockplay";

pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// uid/gid to run the server as (None: as we are).
    run_as: Option<(u32, u32)>,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    match found.pop() {
        Some(b) => b,
        None => panic!("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: run `bash tests/hosts/setup` (installs postgresql)"),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl PgServer {
    /// initdb + start; panics with the server's log when it does not come up.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        remove_leftovers(&bin);
        let base = std::env::temp_dir().join(format!(
            "kp-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&base).expect("pg temp dir");
        let root = unsafe { libc_geteuid() } == 0;
        let run_as = root.then_some((65534, 65534));
        let server = PgServer {
            dir: base.clone(),
            bin,
            port: free_port(),
            run_as,
        };
        if let Some((uid, gid)) = run_as {
            chown_r(&base, uid, gid);
        }
        std::fs::write(base.join("pw"), PASSWORD).expect("pwfile");
        if let Some((uid, gid)) = run_as {
            chown_r(&base, uid, gid);
        }
        let data = base.join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                USER.as_ref(),
                "--pwfile".as_ref(),
                base.join("pw").as_os_str(),
                "--auth=scram-sha-256".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        server.pg_ctl_start();
        server
    }

    /// A command for the server tool `tool`, run as the server's user (`setpriv` when we are root).
    fn tool(&self, tool: &str) -> Command {
        match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(self.bin.join(tool));
                c
            }
            None => Command::new(self.bin.join(tool)),
        }
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        let mut cmd = self.tool(tool);
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null());
        let out = cmd.output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            panic!(
                "{tool} failed: {}\n{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                self.dir.join("log").as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
    }

    /// Stops the server (fast shutdown: connections are cut), keeping its data.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "stop".as_ref(),
            ],
        );
    }

    /// Starts it again after [`PgServer::stop`], on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// `postgres://knockplay@127.0.0.1:PORT/DB?sslmode=disable` (no password: `PGPASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A client to database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        let mut c = postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(USER)
            .password(PASSWORD)
            .dbname(db)
            .connect_timeout(std::time::Duration::from_secs(10));
        c.connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test postgres: {e}"))
    }

    /// Creates database `name`; returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = self
                .tool("pg_ctl")
                .args(["-m", "immediate", "-w", "-t", "30", "stop", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Servers of test processes that were killed before their `Drop` ran: stopped and removed.
fn remove_leftovers(bin: &Path) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("kp-pg-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = e.path().join("data");
        if data.join("postmaster.pid").exists() {
            // pg_ctl refuses to run as root: as the data directory's owner.
            let owner = std::fs::metadata(&data)
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .unwrap_or(65534);
            let mut cmd = if unsafe { libc_geteuid() } == 0 {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={owner}"))
                    .arg("--clear-groups")
                    .arg(bin.join("pg_ctl"));
                c
            } else {
                Command::new(bin.join("pg_ctl"))
            };
            cmd.args(["-m", "immediate", "-w", "-t", "30", "stop", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(p, Some(uid), Some(gid));
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            chown_r(&e.path(), uid, gid);
        }
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
