//! A bound on how deeply a document nests, checked on the raw text before anything
//! parses it.
//!
//! async-graphql's parser limits the nesting of selection sets but not of list and
//! object values, and recurses once per level: `viewer(x: [[[…5,000 levels…]]])`
//! overflows the stack and aborts the process. A linear scan that counts brackets
//! outside strings and comments refuses such a document in O(length) with no
//! recursion, so the parser only ever sees documents it can handle.

/// The deepest bracket nesting (`{`, `[`, `(` combined) a document may have. Selection
/// sets are limited to depth 20 anyway; arguments and variable defaults nest inside
/// them, so 64 leaves room for any real document (GraphiQL's introspection query
/// nests 17 levels).
pub const MAX_NESTING: usize = 64;

/// A document nested past the bound.
#[derive(Debug, PartialEq, Eq)]
pub enum TooDeep {
    /// Only selection sets were open: the depth limit of API.md, a validation failure.
    Selections,
    /// Argument values or variable definitions were open: the document is refused as
    /// unparseable.
    Values,
}

impl TooDeep {
    /// What to tell the client.
    pub fn message(&self) -> String {
        format!(
            "the document nests deeper than {MAX_NESTING} levels of braces, brackets and \
             parentheses"
        )
    }
}

/// Refuses `query` when it nests deeper than [`MAX_NESTING`].
pub fn check(query: &str) -> Result<(), TooDeep> {
    let (depth, in_parens) = max_depth(query.as_bytes(), MAX_NESTING);
    match (depth > MAX_NESTING, in_parens) {
        (false, _) => Ok(()),
        (true, false) => Err(TooDeep::Selections),
        (true, true) => Err(TooDeep::Values),
    }
}

/// The deepest bracket nesting in `text`, counted up to `stop + 1` (the scan stops
/// there), and whether a parenthesis was open at the deepest point (so the nesting is in
/// values, not selection sets). Brackets inside strings, block strings and comments do
/// not count.
fn max_depth(text: &[u8], stop: usize) -> (usize, bool) {
    let mut depth = 0usize;
    let mut parens = 0usize;
    let mut deepest = (0usize, false);
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'#' => {
                while i < text.len() && text[i] != b'\n' && text[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if text[i..].starts_with(b"\"\"\"") => {
                i += 3;
                // Block strings end at the next unescaped `"""`; `\"""` is an escape.
                while i < text.len() && !text[i..].starts_with(b"\"\"\"") {
                    i += if text[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
            }
            open @ (b'{' | b'[' | b'(') => {
                depth += 1;
                parens += usize::from(open == b'(');
                if depth > deepest.0 {
                    deepest = (depth, parens > 0);
                    if depth > stop {
                        return deepest;
                    }
                }
            }
            close @ (b'}' | b']' | b')') => {
                depth = depth.saturating_sub(1);
                if close == b')' {
                    parens = parens.saturating_sub(1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings_and_comments() {
        let depth = |t: &[u8]| max_depth(t, 100).0;
        assert_eq!(depth(b"{ a { b } }"), 2);
        assert_eq!(depth(b"{ a(x: [[1]]) }"), 4);
        assert_eq!(depth(b"{ a(x: \"[[[[\") }"), 2);
        assert_eq!(depth(b"{ a(x: \"\\\"[[[\") }"), 2);
        assert_eq!(depth(b"{ a(x: \"\"\"[[[\\\"\"\"[[\"\"\") }"), 2);
        assert_eq!(depth(b"# {{{{{{\n{ a }"), 1);
        assert_eq!(depth(b"}}}}{"), 1);
    }

    #[test]
    fn refuses_deep_values_without_recursing() {
        let deep = format!(
            "{{viewer(x:{}1{}){{owner}}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(check(&deep).is_err());
        let ok = format!(
            "{{viewer(x:{}1{}){{owner}}}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(check(&ok).is_ok());
    }
}
