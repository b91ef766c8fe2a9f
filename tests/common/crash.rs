//! Killing a real makima process in the middle of a code operation: a `git` wrapper
//! first on its PATH runs the real git but stops at one chosen invocation (after
//! touching a marker), so the test can send SIGKILL exactly there.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use super::ws::WAIT;

/// Where in the git step the wrapper stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Before running the invocation.
    Before,
    /// After the real git ran it.
    After,
}

/// A directory holding the `git` wrapper and the marker it touches.
pub struct GitTrap {
    pub dir: PathBuf,
    marker: PathBuf,
}

fn real_git() -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("git"))
        .find(|p| p.is_file())
        .expect("git on PATH")
}

impl GitTrap {
    /// A wrapper in `dir` that stops at the first git invocation with an argument equal
    /// to `arg` (`Stop::After`: once the real git has run it).
    pub fn new(dir: &Path, arg: &str, stop: Stop) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let marker = dir.join("stopped");
        let git = real_git();
        let stop_here = format!(
            "echo $$ > '{m}.tmp' && mv '{m}.tmp' '{m}'; exec sleep 300",
            m = marker.display()
        );
        let (before, after) = match stop {
            Stop::Before => (stop_here.as_str(), ""),
            Stop::After => ("", stop_here.as_str()),
        };
        let script = format!(
            "#!/bin/sh\n\
             hit=\n\
             for a in \"$@\"; do [ \"$a\" = '{arg}' ] && hit=1; done\n\
             if [ -n \"$hit\" ] && [ ! -e '{m}' ]; then\n\
               {before}\n\
               '{git}' \"$@\"; {after}\n\
             fi\n\
             exec '{git}' \"$@\"\n",
            m = marker.display(),
            git = git.display(),
            before = if before.is_empty() { ":" } else { before },
            after = if after.is_empty() { "exit $?" } else { after },
        );
        let path = dir.join("git");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            dir: dir.to_path_buf(),
            marker,
        }
    }

    /// Waits until the wrapper stopped; returns the pid of the process holding it.
    pub async fn stopped(&self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(pid) = std::fs::read_to_string(&self.marker) {
                return pid.trim().parse().expect("pid in the marker");
            }
            assert!(
                Instant::now() < deadline,
                "git never reached the trap within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `makima serve` with an optional directory first on its PATH.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    pub async fn start(
        database_url: &str,
        workspace_root: &Path,
        path_first: Option<&Path>,
    ) -> Self {
        let mut cmd = super::process::serve_command(database_url, workspace_root);
        if let Some(dir) = path_first {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        let (child, addr) = super::process::spawn_listening(cmd).await;
        Self { addr, child }
    }

    /// Sends an operation without waiting for (or needing) its answer.
    pub fn fire(&self, key: &str, query: &str, variables: Value) -> tokio::task::JoinHandle<()> {
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len(),
            a = self.addr,
        );
        let addr = self.addr;
        tokio::spawn(async move {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await
                && stream.write_all(request.as_bytes()).await.is_ok()
            {
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink).await;
            }
        })
    }

    /// `kill -9`, and waits for the process to be gone.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("makima dies")
            .expect("wait");
    }
}

/// `kill -9` of a process that is not a child of the test (the stopped git wrapper).
pub fn kill_pid(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}
