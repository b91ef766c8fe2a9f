//! The server under test: `target/release/makima serve` as a separate process, the way
//! it runs in production, plus its memory as the kernel reports it.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// How the server is started.
pub struct ServerConfig {
    pub bin: PathBuf,
    pub database_url: String,
    /// Scratch directory: the workspace root and the server's log live here.
    pub dir: PathBuf,
    /// `MAKIMA_LOG` (e.g. `warn`, or `info` to log every request's `duration_ms`).
    pub log: String,
    pub db_pool: Option<u32>,
}

impl ServerConfig {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("MAKIMA_DATABASE_URL", &self.database_url)
            .env("MAKIMA_LOG", &self.log)
            .env_remove("MAKIMA_BIND")
            .env_remove("MAKIMA_WORKSPACE_ROOT")
            .env_remove("MAKIMA_DB_POOL")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(pool) = self.db_pool {
            cmd.env("MAKIMA_DB_POOL", pool.to_string());
        }
        cmd
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `makima api-key create --owner OWNER`: the key is the last line it prints.
    pub async fn create_key(&self, owner: &str) -> Result<String> {
        let out = self
            .command()
            .args(["api-key", "create", "--owner", owner])
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| Error::msg(format!("cannot run {}: {e}", self.bin.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last().map(str::trim) {
            Some(key) if out.status.success() && !key.is_empty() => Ok(key.to_owned()),
            _ => Err(Error::msg(format!(
                "makima api-key create failed ({}): {stdout}",
                out.status
            ))),
        }
    }
}

/// The default server binary: `makima` next to this one (both in `target/release`).
pub fn default_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("makima"))
}

/// A running `makima serve`.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl Server {
    pub async fn start(config: &ServerConfig) -> Result<Self> {
        if !config.bin.is_file() {
            return Err(Error::msg(format!(
                "{} not found: build the server first (cargo build --release -p makima) or pass --server-bin",
                config.bin.display()
            )));
        }
        let addr = free_port()?;
        let workspace = config.dir.join("workspace");
        std::fs::create_dir_all(&workspace)?;
        let log = std::fs::File::create(config.log_path())?;
        let child = config
            .command()
            .arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--workspace-root")
            .arg(&workspace)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::msg(format!("cannot start {}: {e}", config.bin.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::msg("server exited at once"))?;
        let mut server = Self { child, pid, addr };
        server.wait_ready(config).await?;
        Ok(server)
    }

    /// Polls `/healthz` (at most 60 s: migrations on a large database are quick).
    async fn wait_ready(&mut self, config: &ServerConfig) -> Result<()> {
        let ep = Endpoint {
            addr: self.addr,
            key: String::new(),
        };
        let req = ep.get("/healthz");
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::msg(format!(
                    "server exited with {status}; see {}",
                    config.log_path().display()
                )));
            }
            if let Ok((200, _)) = Conn::new(self.addr).send(&req).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::msg("server did not become healthy within 60 s"))
    }

    pub fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Resident memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident now.
    pub rss_kib: u64,
    /// Peak resident since the process started.
    pub hwm_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        })
    }

    pub fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
}

/// Samples a process's VmRSS every 100 ms in the background and keeps the largest.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            // Bounded: at most an hour of samples.
            for _ in 0..36_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(m) = Memory::of(pid) {
                    p.fetch_max(m.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { stop, peak, task }
    }

    /// Stops sampling; returns the peak VmRSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}
