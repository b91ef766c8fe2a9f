//! Names that reach git from clients: branch names, checked before git sees them.

use super::{GitError, GitResult};

/// Checks a branch name as `git check-ref-format --branch` does, and refuses names that
/// could be taken for options.
pub fn check_branch_name(name: &str) -> GitResult<()> {
    let bad = |why: &str| Err(GitError::BadInput(format!("invalid branch name: {why}")));
    if name.is_empty() || name.len() > 255 {
        return bad("it must be 1 to 255 bytes");
    }
    if name.starts_with('-') {
        return bad("it must not start with '-'");
    }
    if name == "@" || name == "HEAD" {
        return bad("it is reserved");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') || name.contains("//") {
        return bad("misplaced '/' or '.'");
    }
    if name.contains("..") || name.contains("@{") || name.ends_with(".lock") {
        return bad("'..', '@{' and a '.lock' ending are not allowed");
    }
    for c in name.chars() {
        if c.is_control() || c == ' ' || "~^:?*[\\\x7f".contains(c) {
            return bad("it contains a character git does not allow");
        }
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return bad("a component starts with '.' or ends with '.lock'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_branch_name;

    #[test]
    fn branch_names_follow_git_rules() {
        for ok in ["main", "feature/x", "makima/0193-abc", "a.b", "v1.2"] {
            assert!(check_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-f", "--force", "a..b", "a b", "a~1", "x.lock", "a/.b", "/a", "a/", "HEAD",
            "a@{1}", "a:b", "a\\b",
        ] {
            assert!(check_branch_name(bad).is_err(), "{bad}");
        }
    }
}
