//! A cache of parsed GraphQL documents: clients send the same few operations over and
//! over, and parsing (pest) is a visible share of a small request's CPU.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;

/// Distinct documents kept; past it the cache starts over (simple and bounded).
const CAPACITY: usize = 512;
/// Documents longer than this are parsed every time rather than kept.
const MAX_CACHED_LEN: usize = 16 * 1024;

#[derive(Default)]
pub struct Documents {
    parsed: Mutex<HashMap<String, ExecutableDocument>>,
}

impl Documents {
    /// The parsed form of `query`, when it parses; a document that does not parse is
    /// left to the executor, which reports the error with its code.
    pub fn get(&self, query: &str) -> Option<ExecutableDocument> {
        if let Some(doc) = self.parsed.lock().expect("document cache").get(query) {
            return Some(doc.clone());
        }
        let doc = async_graphql::parser::parse_query(query).ok()?;
        if query.len() <= MAX_CACHED_LEN {
            let mut parsed = self.parsed.lock().expect("document cache");
            if parsed.len() >= CAPACITY {
                parsed.clear();
            }
            parsed.insert(query.to_owned(), doc.clone());
        }
        Some(doc)
    }
}
