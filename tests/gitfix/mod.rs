//! Real git repositories for code-operation tests, under the test's workspace root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository at `<root>/<name>` with `main` checked out.
pub struct TestRepo {
    pub dir: PathBuf,
}

impl TestRepo {
    pub fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join(".gitignore"), "build/\n.env\n").unwrap();
        let repo = Self {
            dir: dir.canonicalize().unwrap(),
        };
        repo.commit("initial", &[(".gitignore", "build/\n.env\n")]);
        repo
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(path)).ok()
    }

    /// Writes the files and commits them; returns the commit id.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> String {
        for (p, c) in files {
            self.write(p, c);
        }
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    pub fn path(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}
