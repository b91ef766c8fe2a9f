//! Refuses the NUL character in every string a request carries.
//!
//! PostgreSQL cannot store U+0000 in text and fails the whole statement, which would
//! surface as an internal error; SQLite would store it. Refusing it up front, in the
//! document's literals and in the variables alike, gives one clear `BAD_USER_INPUT` on
//! both databases before anything runs.

use async_graphql::Value as ConstValue;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql_value::Value;

pub const MESSAGE: &str = "strings must not contain the NUL character (U+0000)";

/// Whether a NUL character occurs in any string of the document or the variables.
pub fn found(doc: &ExecutableDocument, variables: &async_graphql::Variables) -> bool {
    variables
        .iter()
        .any(|(name, value)| name.contains('\0') || in_const(value))
        || doc.operations.iter().any(|(_, op)| {
            op.node.variable_definitions.iter().any(|def| {
                def.node
                    .default_value
                    .as_ref()
                    .is_some_and(|v| in_const(&v.node))
            }) || in_set(&op.node.selection_set.node)
        })
        || doc
            .fragments
            .values()
            .any(|f| in_set(&f.node.selection_set.node))
}

fn in_set(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(f) => {
            f.node.arguments.iter().any(|(_, v)| in_value(&v.node))
                || f.node
                    .directives
                    .iter()
                    .any(|d| d.node.arguments.iter().any(|(_, v)| in_value(&v.node)))
                || in_set(&f.node.selection_set.node)
        }
        Selection::InlineFragment(f) => in_set(&f.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

/// Literal values nest at most `nesting::MAX_NESTING` deep, so recursion is bounded.
fn in_value(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(in_value),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || in_value(v)),
        _ => false,
    }
}

/// Variables come from JSON that serde_json parsed with its recursion limit, so
/// recursion is bounded here too.
fn in_const(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(s) => s.contains('\0'),
        ConstValue::List(items) => items.iter().any(in_const),
        ConstValue::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || in_const(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, variables: serde_json::Value) -> bool {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        found(&doc, &async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn finds_nul_in_literals_defaults_and_variables() {
        assert!(!check("{ a(x: \"ok\") }", serde_json::json!({})));
        assert!(check("{ a(x: \"a\\u0000b\") }", serde_json::json!({})));
        assert!(check("{ a(x: {k: [\"\\u0000\"]}) }", serde_json::json!({})));
        assert!(check(
            "query($v: String = \"\\u0000\") { a(x: $v) }",
            serde_json::json!({})
        ));
        assert!(check(
            "query($v: JSON) { a(x: $v) }",
            serde_json::json!({ "v": { "deep": ["x\u{0}"] } })
        ));
        assert!(check(
            "{ ...F } fragment F on Q { a(x: \"\\u0000\") }",
            serde_json::json!({})
        ));
    }
}
