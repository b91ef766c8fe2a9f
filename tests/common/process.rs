//! The built `makima` binary run as a separate process, and a minimal HTTP client.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::ws::WAIT;

/// `makima serve` on an ephemeral port.
pub struct Spawned {
    pub addr: SocketAddr,
    child: Child,
}

/// `makima serve --bind 127.0.0.1:0` on `database_url` and `workspace_root`, logging
/// without colour to a piped stderr; add to it, then `spawn_listening`.
pub fn serve_command(database_url: &str, workspace_root: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_makima"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--database-url"])
        .arg(database_url)
        .arg("--workspace-root")
        .arg(workspace_root)
        .env("MAKIMA_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Spawns `cmd` (a `serve_command`) and waits until it logs the address it listens on.
pub async fn spawn_listening(mut cmd: Command) -> (Child, SocketAddr) {
    let mut child = cmd.spawn().expect("spawn makima");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(rest) = line.split("http://").nth(1) {
                let addr = rest.split('/').next().unwrap();
                return addr.parse::<SocketAddr>().expect("listening address");
            }
        }
        panic!("makima exited before listening");
    })
    .await
    .expect("makima starts listening");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

impl Spawned {
    pub async fn start(database_url: &str, workspace_root: &std::path::Path) -> Self {
        Self::start_with(database_url, workspace_root, &[]).await
    }

    /// `start` with more arguments for `makima serve`.
    pub async fn start_with(
        database_url: &str,
        workspace_root: &std::path::Path,
        args: &[&str],
    ) -> Self {
        let mut cmd = serve_command(database_url, workspace_root);
        cmd.args(args);
        let (child, addr) = spawn_listening(cmd).await;
        Self { addr, child }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it succeeded.
    pub async fn terminate(&mut self) -> bool {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("makima exits after SIGTERM")
            .expect("wait");
        exit.success()
    }

    /// Runs an operation over HTTP; returns the response body.
    pub async fn post(&self, key: &str, query: &str, variables: Value) -> Value {
        http_post(self.addr, key, query, variables).await
    }

    /// Runs an operation that must succeed; returns its `data`.
    pub async fn ok(&self, key: &str, query: &str, variables: Value) -> Value {
        let body = self.post(key, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }
}

/// `POST /graphql` over a fresh HTTP/1.1 connection.
pub async fn http_post(addr: SocketAddr, key: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("HTTP response in time");
    let text = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).expect("JSON body")
}
