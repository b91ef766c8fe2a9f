//! Size limits of the API contract and the checks that enforce them. Every check fails
//! with `BAD_USER_INPUT` naming the field, before anything is written.

use crate::error::{AppError, AppResult};

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
pub const MAX_PHASES: usize = 20;
pub const MAX_BATCH: usize = 100;
/// How deeply stored JSON may nest: well below serde_json's recursion limit (128), so
/// whatever is stored can always be read back.
pub const MAX_JSON_DEPTH: usize = 64;
pub const DEFAULT_PHASES: [&str; 5] = ["research", "specify", "plan", "execute", "review"];

/// A required name: 1..=256 Unicode scalar values, not only whitespace.
pub fn name(field: &str, value: &str) -> AppResult<()> {
    if value.trim().is_empty() {
        return Err(AppError::bad_input(format!("{field} must not be empty")));
    }
    optional_name(field, Some(value))
}

pub fn optional_name(field: &str, value: Option<&str>) -> AppResult<()> {
    match value {
        Some(v) if v.chars().count() > MAX_NAME_CHARS => Err(AppError::bad_input(format!(
            "{field} is longer than {MAX_NAME_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

/// Plans, descriptions and checkpoint messages: at most 64 KiB of UTF-8.
pub fn text(field: &str, value: Option<&str>) -> AppResult<()> {
    match value {
        Some(v) if v.len() > MAX_TEXT_BYTES => Err(AppError::bad_input(format!(
            "{field} is larger than {} KiB",
            MAX_TEXT_BYTES / 1024
        ))),
        _ => Ok(()),
    }
}

/// How deeply `value` nests (a scalar is 1), counted without recursion.
fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// A JSON value, serialised, at most 256 KiB and nested at most 64 levels. Returns the
/// serialisation.
pub fn json(field: &str, value: &serde_json::Value) -> AppResult<String> {
    if json_depth(value) > MAX_JSON_DEPTH {
        return Err(AppError::bad_input(format!(
            "{field} nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let s = value.to_string();
    if s.len() > MAX_CONTENT_BYTES {
        return Err(AppError::bad_input(format!(
            "{field} is larger than {} KiB when serialised",
            MAX_CONTENT_BYTES / 1024
        )));
    }
    Ok(s)
}

/// A batch of 1..=100 items.
pub fn batch(field: &str, len: usize) -> AppResult<()> {
    if len == 0 {
        return Err(AppError::bad_input(format!("{field} must not be empty")));
    }
    if len > MAX_BATCH {
        return Err(AppError::bad_input(format!(
            "{field} takes at most {MAX_BATCH} items per call"
        )));
    }
    Ok(())
}

/// A git commit name as a checkpoint records it: 7..=64 hex digits, stored lowercase.
pub fn commit_sha(value: &str) -> AppResult<String> {
    let ok = (7..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(AppError::bad_input(
            "commitSha must be 7 to 64 hexadecimal characters",
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// The phases of a new contract: 1..=20 distinct names.
pub fn phases(value: Option<Vec<String>>) -> AppResult<Vec<String>> {
    let phases = value.unwrap_or_else(|| DEFAULT_PHASES.iter().map(|s| s.to_string()).collect());
    if phases.is_empty() {
        return Err(AppError::bad_input("phases must not be empty"));
    }
    if phases.len() > MAX_PHASES {
        return Err(AppError::bad_input(format!(
            "a contract has at most {MAX_PHASES} phases"
        )));
    }
    for (i, p) in phases.iter().enumerate() {
        name("phase name", p)?;
        if phases[..i].contains(p) {
            return Err(AppError::bad_input("phase names must be distinct"));
        }
    }
    Ok(phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_deeper_than_the_limit_is_refused() {
        let nest = |n: usize| -> serde_json::Value {
            let mut v = serde_json::json!(1);
            for _ in 1..n {
                v = serde_json::json!([v]);
            }
            v
        };
        assert_eq!(json_depth(&nest(MAX_JSON_DEPTH)), MAX_JSON_DEPTH);
        assert!(json("content", &nest(MAX_JSON_DEPTH)).is_ok());
        assert!(json("content", &nest(MAX_JSON_DEPTH + 1)).is_err());
    }

    #[test]
    fn names_count_scalar_values_not_bytes() {
        assert!(name("name", &"é".repeat(256)).is_ok());
        assert!(name("name", &"é".repeat(257)).is_err());
        assert!(name("name", "  ").is_err());
    }

    #[test]
    fn commit_sha_is_7_to_64_hex() {
        assert_eq!(commit_sha("ABCDEF1").unwrap(), "abcdef1");
        assert!(commit_sha("abc123").is_err());
        assert!(commit_sha(&"a".repeat(65)).is_err());
        assert!(commit_sha("abcdefg").is_err());
    }

    #[test]
    fn phases_default_and_bounds() {
        assert_eq!(phases(None).unwrap().len(), 5);
        assert!(phases(Some(vec![])).is_err());
        assert!(phases(Some(vec!["a".into(), "a".into()])).is_err());
        assert!(phases(Some((0..21).map(|i| i.to_string()).collect())).is_err());
    }

    #[test]
    fn json_limit_is_on_serialised_bytes() {
        let big = serde_json::Value::String("x".repeat(MAX_CONTENT_BYTES));
        assert!(json("content", &big).is_err());
        assert!(json("content", &serde_json::json!({"type": "text"})).is_ok());
    }
}
