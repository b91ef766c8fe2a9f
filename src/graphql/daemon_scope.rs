//! What a daemon key may ask for: the root fields of its own work. Checked once per
//! document, as it is parsed, so a daemon key never reaches another resolver; the
//! resolvers it may reach check that the task is its daemon's (`Viewer::may_report`).

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use std::collections::HashMap;

/// Root fields a daemon key may select, per operation type.
const QUERY: &[&str] = &["daemonWork", "task", "codeOperation", "__typename"];
const MUTATION: &[&str] = &[
    "heartbeatDaemon",
    "claimTask",
    "claimNextTask",
    "completeCodeOperation",
    "updateTaskStatus",
    "appendMessages",
    "appendTaskEvents",
    "recordCheckpoint",
    "__typename",
];
const SUBSCRIPTION: &[&str] = &["workAvailable"];

/// The first root field of `doc` that a daemon key may not select, if any.
pub fn refused_root_field(doc: &ExecutableDocument) -> Option<String> {
    for (_, op) in doc.operations.iter() {
        let allowed = match op.node.ty {
            OperationType::Query => QUERY,
            OperationType::Mutation => MUTATION,
            OperationType::Subscription => SUBSCRIPTION,
        };
        if let Some(name) = refused(&op.node.selection_set.node, &doc.fragments, allowed, 0) {
            return Some(name);
        }
    }
    None
}

fn refused(
    set: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    allowed: &[&str],
    depth: usize,
) -> Option<String> {
    // Fragments at the root can spread fragments; the document's own nesting bound
    // keeps this finite, this bound keeps a cycle (refused later by validation) finite.
    if depth > 32 {
        return Some("a fragment cycle".into());
    }
    for item in &set.items {
        let found = match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                (!allowed.contains(&name)).then(|| name.to_owned())
            }
            Selection::InlineFragment(f) => {
                refused(&f.node.selection_set.node, fragments, allowed, depth + 1)
            }
            Selection::FragmentSpread(s) => fragments
                .get(&s.node.fragment_name.node)
                .and_then(|d| refused(&d.node.selection_set.node, fragments, allowed, depth + 1)),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_in(query: &str) -> Option<String> {
        refused_root_field(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn only_the_daemons_own_root_fields_pass() {
        assert_eq!(refused_in("{ daemonWork { tasks { id } } }"), None);
        assert_eq!(
            refused_in("mutation { claimTask(input: {taskId: \"x\"}) { task { id } } }"),
            None
        );
        assert_eq!(
            refused_in("subscription { workAvailable { cursor } }"),
            None
        );
        assert_eq!(
            refused_in("{ contracts { totalCount } }").as_deref(),
            Some("contracts")
        );
        assert_eq!(
            refused_in("{ ...F } fragment F on Query { ... on Query { timeline { totalCount } } }")
                .as_deref(),
            Some("timeline")
        );
        assert_eq!(
            refused_in("mutation { rewindTask(input: {}) { task { id } } }").as_deref(),
            Some("rewindTask")
        );
        assert_eq!(
            refused_in("subscription { historyEvents { id } }").as_deref(),
            Some("historyEvents")
        );
    }
}
