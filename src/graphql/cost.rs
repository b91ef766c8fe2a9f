//! What a document may ask for, decided before anything runs (API.md, "Document errors
//! and limits"):
//!
//! - **complexity**: the number of fields it selects, fragments expanded, at most
//!   1,000;
//! - **cost**: what its answer can hold. Every field costs 1 and a connection's
//!   selection counts once per item of its page (`first` or `last`, default 20; see
//!   `connection::page_cost`), so `tasks(first: 100) { nodes { … tasks(first: 100) … } }`
//!   costs 100 × 100 × its innermost selection. At most 50,000: two levels of full
//!   pages with a few fields each, never three.
//!
//! async-graphql computes the cost (each connection field declares its own) during
//! validation; the field count is ours and runs right after parsing.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Fields a document may select (API.md: complexity 1,000).
pub const MAX_COMPLEXITY: usize = 1000;
/// The most a document's answer may cost.
pub const MAX_COST: usize = 50_000;

/// How deeply selections may nest once fragments are expanded. Selection sets in one
/// place nest at most 64 levels (`nesting`); a chain of fragments spreading each other
/// could nest them without end, and every later step (validation included) recurses
/// through it, so the chain is bounded here, before validation.
const MAX_EXPANDED_DEPTH: usize = 128;

/// Refuses a document that selects more than [`MAX_COMPLEXITY`] fields or whose
/// fragments nest too deeply. Runs before validation, so it tolerates unknown and
/// cyclic fragments (validation reports those).
pub fn check_fields(doc: &ExecutableDocument) -> Result<(), String> {
    let mut counter = Counter {
        doc,
        fragments: HashMap::new(),
    };
    let mut fields = 0usize;
    for (_, op) in doc.operations.iter() {
        let n = counter
            .count(&op.node.selection_set.node, 0)
            .ok_or_else(|| {
                format!("fragments nest selections deeper than {MAX_EXPANDED_DEPTH} levels")
            })?;
        fields = fields.saturating_add(n);
    }
    if fields > MAX_COMPLEXITY {
        return Err(format!(
            "the query selects {fields} fields, more than the limit of {MAX_COMPLEXITY}"
        ));
    }
    Ok(())
}

/// Refuses a document whose answer may cost more than [`MAX_COST`].
pub fn check_cost(cost: usize) -> Result<(), String> {
    if cost > MAX_COST {
        return Err(format!(
            "the query costs {cost}, more than the limit of {MAX_COST}: every field costs 1 \
             and a connection's selection counts once per item of its page (first or last, \
             default 20); ask for smaller pages or fewer nested connections"
        ));
    }
    Ok(())
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    /// Fields per fragment, each counted once; 0 while it is being counted, so a
    /// cycle ends instead of recursing forever.
    fragments: HashMap<&'a str, usize>,
}

impl<'a> Counter<'a> {
    /// Fields in `set`, fragments expanded; `None` past the depth bound.
    fn count(&mut self, set: &'a SelectionSet, depth: usize) -> Option<usize> {
        if depth > MAX_EXPANDED_DEPTH {
            return None;
        }
        let mut total = 0usize;
        for item in &set.items {
            let n = match &item.node {
                Selection::Field(f) => 1 + self.count(&f.node.selection_set.node, depth + 1)?,
                Selection::InlineFragment(f) => {
                    self.count(&f.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    match self.fragments.get(name) {
                        Some(n) => *n,
                        None => {
                            self.fragments.insert(name, 0);
                            let n = match self.doc.fragments.get(&s.node.fragment_name.node) {
                                Some(f) => self.count(&f.node.selection_set.node, depth + 1)?,
                                None => 0,
                            };
                            self.fragments.insert(name, n);
                            n
                        }
                    }
                }
            };
            total = total.saturating_add(n);
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(query: &str) -> usize {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        Counter {
            doc: &doc,
            fragments: HashMap::new(),
        }
        .count(
            &doc.operations
                .iter()
                .next()
                .unwrap()
                .1
                .node
                .selection_set
                .node,
            0,
        )
        .unwrap()
    }

    #[test]
    fn counts_fields_with_fragments_expanded() {
        assert_eq!(fields("{ a b { c d } }"), 4);
        assert_eq!(
            fields("{ a { ...F } b { ...F } } fragment F on T { x y }"),
            6
        );
        assert_eq!(fields("{ a { ... on T { x } } }"), 2);
        // Cycles end (validation reports them).
        assert_eq!(fields("{ a { ...F } } fragment F on T { x ...F }"), 2);
    }

    #[test]
    fn long_fragment_chains_are_refused_before_validation() {
        let mut doc = String::from("{ ...F0 }");
        for i in 0..5_000 {
            doc.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        doc.push_str(" fragment F5000 on Query { viewer { owner } }");
        let parsed = async_graphql::parser::parse_query(&doc).expect("parses");
        assert!(check_fields(&parsed).is_err());
        let chain_of_ten = doc.replace("{ ...F11 }", "{ viewer { owner } }");
        let short = async_graphql::parser::parse_query(&chain_of_ten).expect("parses");
        assert!(check_fields(&short).is_ok());
    }
}
