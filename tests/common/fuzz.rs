//! Input generators for the fuzz test (`tests/fuzz.rs`): GraphQL documents built from
//! `schema.graphql`, variables, cursors, IDs and WebSocket frames, the README's
//! examples as seed corpus, and the filter for bugs that are known and being fixed.
//!
//! Generators read a sequence of numbers (`Choices`) that proptest generates and
//! shrinks; an exhausted or zeroed sequence always picks the first, simplest option,
//! so a shrunk failure is close to the plainest input that still fails.

use std::collections::HashMap;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Deepest nesting of list and object values (in documents and in JSON) that the
/// generators produce: far past every bound makima sets (64 in documents and stored
/// JSON, serde_json's 128 in variables), where the parser used to overflow its stack.
pub const MAX_GENERATED_NESTING: usize = 5_000;

/// Nesting depths the generators try, the ones above `MAX_GENERATED_NESTING` left out.
const NESTING_DEPTHS: [usize; 7] = [2, 8, 33, 64, 129, 1_000, 5_000];

/// The numbers that drive a generator. Past the end every pick is 0.
pub struct Choices<'a> {
    seq: &'a [u32],
    pos: usize,
}

impl<'a> Choices<'a> {
    pub fn new(seq: &'a [u32]) -> Self {
        Self { seq, pos: 0 }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn pick(&mut self, n: usize) -> usize {
        let raw = self.seq.get(self.pos).copied().unwrap_or(0) as usize;
        self.pos += 1;
        if n == 0 { 0 } else { raw % n }
    }

    /// True with about `percent` % probability (never once the sequence is used up).
    pub fn chance(&mut self, percent: usize) -> bool {
        let raw = self.seq.get(self.pos).copied();
        self.pos += 1;
        raw.is_some_and(|r| (r as usize % 100) >= 100 - percent)
    }

    pub fn one<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[self.pick(items.len())]
    }

    /// A raw 32-bit number (for random bytes and integers).
    pub fn raw(&mut self) -> u32 {
        let raw = self.seq.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        raw
    }
}

/// A nesting depth for deep values, at most `MAX_GENERATED_NESTING`.
pub fn nesting(c: &mut Choices) -> usize {
    let allowed: Vec<usize> = NESTING_DEPTHS
        .iter()
        .copied()
        .filter(|d| *d <= MAX_GENERATED_NESTING)
        .collect();
    *c.one(&allowed)
}

// ---------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------

/// Strings that have tripped servers before: empty, whitespace, unicode of every
/// width, control characters, NUL, quotes, SQL and path fragments, long ones.
pub fn string(c: &mut Choices) -> String {
    const PIECES: [&str; 24] = [
        "a",
        "",
        " ",
        "é",
        "日本語",
        "🦀",
        "\u{202e}rtl",
        "\u{feff}",
        "\0",
        "\n\r\t",
        "\"",
        "\\",
        "'; DROP TABLE tasks; --",
        "%s%n",
        "../../etc/passwd",
        "\u{7f}\u{1}",
        "null",
        "{}",
        "[[[",
        "$x",
        "\u{10ffff}",
        "Z̷̢͎a̸l̶g̵o",
        "0x7fffffff",
        "\u{0300}",
    ];
    let mut s = String::new();
    for _ in 0..1 + c.pick(4) {
        let piece = c.one(&PIECES);
        s.push_str(piece);
    }
    match c.pick(12) {
        10 => s.repeat(300),
        11 => "x".repeat(257),
        _ => s,
    }
}

/// Integer literals: ordinary, page-size edges, the 32- and 64-bit extremes and
/// beyond.
pub fn int(c: &mut Choices) -> String {
    const INTS: [&str; 18] = [
        "1",
        "0",
        "-1",
        "5",
        "20",
        "100",
        "101",
        "2147483646",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "-0",
    ];
    if c.chance(10) {
        return (c.raw() as i32).to_string();
    }
    c.one(&INTS).to_string()
}

pub fn float(c: &mut Choices) -> String {
    const FLOATS: [&str; 7] = ["1.5", "0.0", "-0.0", "1e308", "1e309", "-1e-400", "3.4e38"];
    c.one(&FLOATS).to_string()
}

pub fn datetime(c: &mut Choices) -> String {
    const DATES: [&str; 9] = [
        "2026-01-01T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "99999-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-01-01T00:00:00+14:00",
        "2026-01-01",
        "yesterday",
        "2262-04-11T23:47:16.854775808Z",
        "1677-09-21T00:12:43.145224191Z",
    ];
    c.one(&DATES).to_string()
}

// ---------------------------------------------------------------------------
// IDs and cursors
// ---------------------------------------------------------------------------

/// Real IDs and cursors of the fixtures, this owner's and another owner's.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    /// IDs the default owner owns (contracts, tasks, checkpoints, history events).
    pub own_ids: Vec<String>,
    /// IDs of another owner's rows.
    pub foreign_ids: Vec<String>,
    /// Valid cursors of every kind of list.
    pub cursors: Vec<String>,
}

/// An ID: the owner's own, another owner's, random UUIDs, UUID look-alikes, junk.
pub fn id(c: &mut Choices, pool: &Pool) -> String {
    let own = || pool.own_ids.first().cloned().unwrap_or_default();
    match c.pick(14) {
        0..=4 => {
            if pool.own_ids.is_empty() {
                own()
            } else {
                c.one(&pool.own_ids).clone()
            }
        }
        5 | 6 if !pool.foreign_ids.is_empty() => c.one(&pool.foreign_ids).clone(),
        7 => uuid::Uuid::now_v7().to_string(),
        8 => uuid::Uuid::nil().to_string(),
        9 => own().to_uppercase(),
        10 => format!("{{{}}}", own()),
        11 => format!("urn:uuid:{}", own()),
        12 => own().replace('-', ""),
        _ => string(c),
    }
}

/// The numbers a mutated cursor carries in place of its own.
const CURSOR_NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "2147483647",
    "2147483648",
    "-2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "1e3",
    "+5",
    " 5",
    "0005",
    "NaN",
    "",
    "1.2.3",
];
/// The integer extremes, which most often break cursor arithmetic.
const CURSOR_EXTREMES: [&str; 6] = [
    "2147483647",
    "-2147483648",
    "9223372036854775807",
    "-9223372036854775808",
    "-1",
    "0",
];

/// A number for a mutated cursor, half the time an extreme.
fn cursor_number(c: &mut Choices) -> &'static str {
    let numbers: &[&'static str] = if c.chance(50) {
        &CURSOR_EXTREMES
    } else {
        &CURSOR_NUMBERS
    };
    numbers[c.pick(numbers.len())]
}

const CURSOR_TAGS: [&str; 8] = ["n", "seq", "tl", "id", "cpn", "contract", "checkpoint", ""];

/// A cursor: a valid one, one with its number(s) or tag replaced, base64 of random
/// bytes, or a random string.
pub fn cursor(c: &mut Choices, pool: &Pool) -> String {
    let valid = if pool.cursors.is_empty() {
        URL_SAFE_NO_PAD.encode("n:0")
    } else {
        c.one(&pool.cursors).clone()
    };
    match c.pick(6) {
        0 => valid,
        1 | 2 => {
            let text = URL_SAFE_NO_PAD
                .decode(&valid)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (tag, value) = text.split_once(':').unwrap_or(("n", "0"));
            let tag = if c.chance(20) {
                c.one(&CURSOR_TAGS)
            } else {
                tag
            };
            let value = match value.split_once('.') {
                Some((tx, _)) => {
                    let tx = if c.chance(50) { cursor_number(c) } else { tx };
                    format!("{tx}.{}", cursor_number(c))
                }
                None if uuid::Uuid::parse_str(value).is_ok() && c.chance(50) => id(c, pool),
                None => cursor_number(c).to_string(),
            };
            URL_SAFE_NO_PAD.encode(format!("{tag}:{value}"))
        }
        3 => {
            let bytes: Vec<u8> = (0..c.pick(40)).map(|_| c.raw() as u8).collect();
            if c.chance(50) {
                URL_SAFE_NO_PAD.encode(bytes)
            } else {
                STANDARD.encode(bytes)
            }
        }
        4 => format!("{valid}{}", c.one(&["=", "==", "!", " ", "%3D", "A"])),
        _ => string(c),
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A random JSON text: scalars of every kind, strings with NUL and unicode, huge
/// numbers, and nesting up to `MAX_GENERATED_NESTING`.
pub fn json(c: &mut Choices, depth: usize) -> String {
    match c.pick(10) {
        0 => "{\"type\":\"text\",\"text\":\"hi\"}".into(),
        1 => "null".into(),
        2 => c.one(&["true", "false"]).to_string(),
        3 => int(c),
        4 => float(c),
        5 => quote_json(&string(c)),
        6 | 7 if depth < 4 => {
            let items: Vec<String> = (0..c.pick(4)).map(|_| json(c, depth + 1)).collect();
            format!("[{}]", items.join(","))
        }
        8 if depth < 4 => {
            let fields: Vec<String> = (0..c.pick(4))
                .map(|_| format!("{}:{}", quote_json(&string(c)), json(c, depth + 1)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        _ => deep_json(c),
    }
}

/// JSON nested `nesting(c)` levels deep.
pub fn deep_json(c: &mut Choices) -> String {
    let n = nesting(c);
    if c.chance(50) {
        format!("{}1{}", "[".repeat(n), "]".repeat(n))
    } else {
        format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
    }
}

pub fn quote_json(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A GraphQL string literal (escapes as the spec allows, NUL as `\u0000`).
pub fn quote_graphql(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON text as a GraphQL value literal (object keys become names).
fn json_to_graphql(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => quote_graphql(s),
        J::Array(a) => format!(
            "[{}]",
            a.iter().map(json_to_graphql).collect::<Vec<_>>().join(", ")
        ),
        J::Object(o) => {
            let fields: Vec<String> = o
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let name: String = k.chars().filter(char::is_ascii_alphanumeric).collect();
                    let name = if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit())
                    {
                        format!("k{i}{name}")
                    } else {
                        name
                    };
                    format!("{name}: {}", json_to_graphql(v))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

// ---------------------------------------------------------------------------
// The schema and documents
// ---------------------------------------------------------------------------

pub enum Kind {
    Scalar,
    Object(Vec<FieldDef>),
    Enum(Vec<String>),
    Input(Vec<ArgDef>),
}

pub struct FieldDef {
    pub name: String,
    pub args: Vec<ArgDef>,
    pub ty: Type,
}

pub struct ArgDef {
    pub name: String,
    pub ty: Type,
}

/// The types of `schema.graphql`, by name.
pub struct Schema {
    pub types: HashMap<String, Kind>,
}

fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

impl Schema {
    /// Reads the committed SDL (which a test keeps equal to the code).
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let sdl = std::fs::read_to_string(path).expect("read schema.graphql");
        let doc = async_graphql::parser::parse_schema(&sdl).expect("parse schema.graphql");
        let arg = |a: &async_graphql::parser::Positioned<
            async_graphql::parser::types::InputValueDefinition,
        >| ArgDef {
            name: a.node.name.node.to_string(),
            ty: a.node.ty.node.clone(),
        };
        let mut types = HashMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let kind = match t.node.kind {
                TypeKind::Object(o) => Kind::Object(
                    o.fields
                        .iter()
                        .map(|f| FieldDef {
                            name: f.node.name.node.to_string(),
                            args: f.node.arguments.iter().map(arg).collect(),
                            ty: f.node.ty.node.clone(),
                        })
                        .collect(),
                ),
                TypeKind::Enum(e) => Kind::Enum(
                    e.values
                        .iter()
                        .map(|v| v.node.value.node.to_string())
                        .collect(),
                ),
                TypeKind::InputObject(i) => Kind::Input(i.fields.iter().map(arg).collect()),
                _ => Kind::Scalar,
            };
            types.insert(t.node.name.node.to_string(), kind);
        }
        for root in ["Query", "Mutation", "Subscription"] {
            assert!(types.contains_key(root), "schema.graphql defines {root}");
        }
        Self { types }
    }

    fn fields(&self, ty: &str) -> &[FieldDef] {
        match self.types.get(ty) {
            Some(Kind::Object(f)) => f,
            _ => &[],
        }
    }
}

/// A document and its variables (a JSON object text).
#[derive(Clone, Debug)]
pub struct Operation {
    pub query: String,
    pub variables: String,
    pub operation_name: Option<String>,
}

/// Builds one valid-ish document from the schema.
pub struct DocBuilder<'a> {
    schema: &'a Schema,
    pool: &'a Pool,
    vars: Vec<(String, String, String)>,
}

impl<'a> DocBuilder<'a> {
    pub fn new(schema: &'a Schema, pool: &'a Pool) -> Self {
        Self {
            schema,
            pool,
            vars: vec![],
        }
    }

    /// A whole operation: a root, a selection, maybe variables, fragments and a
    /// syntax mutation.
    pub fn operation(mut self, c: &mut Choices) -> Operation {
        let (keyword, root) = *c.one(&[
            ("query", "Query"),
            ("mutation", "Mutation"),
            ("", "Query"),
            ("mutation", "Mutation"),
            ("query", "Query"),
            ("subscription", "Subscription"),
        ]);
        let selection = self.selection(c, root, 0);
        let name = c.chance(20).then(|| "Op".to_owned());
        let header = if self.vars.is_empty() {
            String::new()
        } else {
            let decls: Vec<String> = self
                .vars
                .iter()
                .map(|(n, ty, _)| format!("${n}: {ty}"))
                .collect();
            format!("({})", decls.join(", "))
        };
        let mut query = if keyword.is_empty() && header.is_empty() && name.is_none() {
            selection
        } else {
            let kw = if keyword.is_empty() { "query" } else { keyword };
            format!("{kw} {}{header} {selection}", name.as_deref().unwrap_or(""))
        };
        if c.chance(3) {
            query.push_str(" fragment F on Task { id name ...F }");
        }
        if c.chance(5) {
            query = mutate_syntax(c, &query);
        }
        let variables: Vec<String> = self
            .vars
            .iter()
            .map(|(n, _, v)| format!("{}:{v}", quote_json(n)))
            .collect();
        let operation_name = match c.pick(8) {
            0 => name,
            1 => Some(string(c)),
            _ => None,
        };
        Operation {
            query,
            variables: format!("{{{}}}", variables.join(",")),
            operation_name,
        }
    }

    fn selection(&mut self, c: &mut Choices, ty: &str, depth: usize) -> String {
        let fields = self.schema.fields(ty);
        if fields.is_empty() || depth > 7 {
            return "{ __typename }".into();
        }
        let mut items = vec![];
        for i in 0..1 + c.pick(3) {
            let f = c.one(fields);
            let mut item = String::new();
            if c.chance(10) {
                item.push_str(&format!("a{i}: "));
            }
            item.push_str(&f.name);
            let mut args = vec![];
            for a in &f.args {
                let required = !a.ty.nullable;
                if (required && !c.chance(5)) || c.chance(40) {
                    args.push(format!(
                        "{}: {}",
                        a.name,
                        self.argument(c, &a.name, &a.ty, 0)
                    ));
                }
            }
            if c.chance(2) {
                args.push(format!("bogus: {}", Self::literal(c, 0)));
            }
            if !args.is_empty() {
                item.push_str(&format!("({})", args.join(", ")));
            }
            if c.chance(3) {
                let directive = c.one(&[" @skip(if: true)", " @include(if: false)", " @nope"]);
                item.push_str(directive);
            }
            let inner = named(&f.ty);
            if matches!(self.schema.types.get(inner), Some(Kind::Object(_))) && !c.chance(3) {
                item.push(' ');
                item.push_str(&self.selection(c, inner, depth + 1));
            }
            if c.chance(5) {
                item = format!("... on {ty} {{ {item} }}");
            }
            items.push(item);
        }
        format!("{{ {} }}", items.join(" "))
    }

    /// An argument: a literal of roughly its type, or a variable.
    fn argument(&mut self, c: &mut Choices, name: &str, ty: &Type, depth: usize) -> String {
        if depth == 0 && c.chance(25) {
            let var = format!("v{}", self.vars.len());
            let declared = if c.chance(95) {
                ty.to_string()
            } else {
                c.one(&["String", "Int!", "[ID!]!", "JSON", "Bogus"])
                    .to_string()
            };
            let value = self.json_value(c, name, ty);
            self.vars.push((var.clone(), declared, value));
            return format!("${var}");
        }
        if !c.chance(4) {
            return self.typed(c, name, ty, depth);
        }
        Self::literal(c, depth)
    }

    /// A literal of type `ty` (mostly well-typed values with hostile contents).
    fn typed(&mut self, c: &mut Choices, name: &str, ty: &Type, depth: usize) -> String {
        if ty.nullable && c.chance(5) {
            return "null".into();
        }
        if let BaseType::List(inner) = &ty.base {
            let items: Vec<String> = (0..c.pick(4))
                .map(|_| self.typed(c, name, inner, depth + 1))
                .collect();
            return format!("[{}]", items.join(", "));
        }
        let tn = named(ty);
        match (tn, self.schema.types.get(tn)) {
            (_, Some(Kind::Enum(values))) => {
                if c.chance(4) {
                    "NOT_A_VALUE".into()
                } else {
                    c.one(values).clone()
                }
            }
            (_, Some(Kind::Input(fields))) if depth < 6 => {
                let mut parts = vec![];
                for f in fields {
                    if !f.ty.nullable || c.chance(50) {
                        parts.push(format!(
                            "{}: {}",
                            f.name,
                            self.argument(c, &f.name, &f.ty, depth + 1)
                        ));
                    }
                }
                format!("{{{}}}", parts.join(", "))
            }
            ("ID", _) => quote_graphql(&id(c, self.pool)),
            ("Int", _) => int(c),
            ("Float", _) => float(c),
            ("Boolean", _) => c.one(&["true", "false"]).to_string(),
            ("DateTime", _) => quote_graphql(&datetime(c)),
            ("JSON", _) => {
                let text = json(c, 0);
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => json_to_graphql(&v),
                    Err(_) => text,
                }
            }
            ("String", _) => quote_graphql(&self.string_for(c, name)),
            _ => Self::literal(c, depth),
        }
    }

    fn string_for(&self, c: &mut Choices, name: &str) -> String {
        match name {
            "after" | "before" => cursor(c, self.pool),
            "commitSha" if c.chance(70) => c.one(&["3f2a9c1", "0000000", "abcdef1234"]).to_string(),
            "phase" if c.chance(60) => c.one(&["research", "plan", "execute"]).to_string(),
            _ if c.chance(30) => "ok".into(),
            _ => string(c),
        }
    }

    /// Any literal at all, whatever the type: the wrong-type and deep-nesting cases.
    fn literal(c: &mut Choices, depth: usize) -> String {
        match c.pick(9) {
            0 => int(c),
            1 => quote_graphql(&string(c)),
            2 => float(c),
            3 => "null".into(),
            4 => c.one(&["true", "ENUM_VALUE", "$undeclared"]).to_string(),
            5 if depth < 4 => format!("[{}]", Self::literal(c, depth + 1)),
            6 if depth < 4 => format!("{{x: {}}}", Self::literal(c, depth + 1)),
            7 => {
                let n = nesting(c);
                format!("{}1{}", "[".repeat(n), "]".repeat(n))
            }
            _ => {
                let n = nesting(c);
                format!("{}1{}", "{a: ".repeat(n), "}".repeat(n))
            }
        }
    }

    /// A variable's value as JSON text, mostly of roughly the declared type.
    fn json_value(&mut self, c: &mut Choices, name: &str, ty: &Type) -> String {
        if c.chance(5) {
            return json(c, 0);
        }
        if let BaseType::List(inner) = &ty.base {
            let items: Vec<String> = (0..c.pick(4))
                .map(|_| self.json_value(c, name, inner))
                .collect();
            return format!("[{}]", items.join(","));
        }
        let tn = named(ty);
        match (tn, self.schema.types.get(tn)) {
            (_, Some(Kind::Enum(values))) => quote_json(c.one::<String>(values)),
            (_, Some(Kind::Input(fields))) => {
                let mut parts = vec![];
                for f in fields {
                    if !f.ty.nullable || c.chance(50) {
                        let value = self.json_value(c, &f.name, &f.ty);
                        parts.push(format!("{}:{value}", quote_json(&f.name)));
                    }
                }
                format!("{{{}}}", parts.join(","))
            }
            ("ID", _) => quote_json(&id(c, self.pool)),
            ("Int", _) => int(c),
            ("Float", _) => float(c),
            ("Boolean", _) => c.one(&["true", "false"]).to_string(),
            ("DateTime", _) => quote_json(&datetime(c)),
            ("String", _) => quote_json(&self.string_for(c, name)),
            _ => json(c, 0),
        }
    }
}

/// Breaks a document's syntax: a deleted span, an inserted token or a repeated span.
pub fn mutate_syntax(c: &mut Choices, query: &str) -> String {
    let chars: Vec<char> = query.chars().collect();
    let at = c.pick(chars.len() + 1);
    let len = c.pick(8);
    let end = (at + len).min(chars.len());
    let head: String = chars[..at].iter().collect();
    let span: String = chars[at..end].iter().collect();
    let tail: String = chars[end..].iter().collect();
    const TOKENS: [&str; 14] = [
        "{", "}", "(", ")", "[", "\"", "\"\"\"", "$", "...", "#", ":", "\u{0}", "é", "@",
    ];
    match c.pick(3) {
        0 => format!("{head}{tail}"),
        1 => format!("{head}{}{span}{tail}", c.one(&TOKENS)),
        _ => format!("{head}{span}{span}{tail}"),
    }
}

// ---------------------------------------------------------------------------
// The README's examples
// ---------------------------------------------------------------------------

/// Every operation in the README's ```graphql blocks, split at top-level braces,
/// with its operation name when it has one.
pub fn readme_operations() -> Vec<(String, Option<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let mut out = vec![];
    for block in readme.split("```graphql").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        let mut depth = 0usize;
        let mut current = String::new();
        for ch in block.chars() {
            if depth == 0 && current.trim().is_empty() && ch.is_whitespace() {
                continue;
            }
            current.push(ch);
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let name = current
                            .split(['(', '{', ' '])
                            .nth(1)
                            .filter(|n| !n.is_empty() && current.starts_with("query "))
                            .map(str::to_owned);
                        out.push((current.trim().to_owned(), name));
                        current.clear();
                    }
                }
                _ => {}
            }
        }
    }
    assert!(out.len() >= 20, "the README's examples were found");
    out
}

/// The variable names an operation declares (`$x` before a colon).
pub fn declared_variables(query: &str) -> Vec<String> {
    let Some(open) = query.find('(') else {
        return vec![];
    };
    let Some(close) = query[open..].find(')') else {
        return vec![];
    };
    let header = &query[open..open + close];
    if query[..open].contains('{') {
        return vec![];
    }
    header
        .split('$')
        .skip(1)
        .filter_map(|s| s.split(':').next())
        .map(|s| s.trim().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// WebSocket frames
// ---------------------------------------------------------------------------

/// One frame a client sends.
#[derive(Clone, Debug)]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
}

/// A message for the GraphQL WebSocket protocols: right, wrong-typed or unknown.
pub fn ws_frame(c: &mut Choices, pool: &Pool, key: &str, schema: &Schema) -> WsFrame {
    let sub = "subscription($t: ID!, $a: Int) { taskEvents(taskId: $t, after: $a) { sequence type data } }";
    let hist = "subscription($a: String) { historyEvents(after: $a) { cursor type data } }";
    let text = match c.pick(16) {
        0 => r#"{"type":"subscribe","id":"9","payload":{"query":"{ viewer { owner } }"}}"#.into(),
        1 => {
            let payload = match c.pick(6) {
                0 => json(c, 0),
                1 => format!(r#"{{"apiKey":{}}}"#, json(c, 0)),
                2 => format!(r#"{{"authorization":{}}}"#, quote_json(&string(c))),
                3 => format!(r#"{{"headers":{{"x-api-key":"{key}"}}}}"#),
                4 => deep_json(c),
                _ => format!(r#"{{"Authorization":"Bearer {key}x"}}"#),
            };
            format!(r#"{{"type":"connection_init","payload":{payload}}}"#)
        }
        2 | 3 => {
            let kind = c.one(&["subscribe", "start"]);
            let op_id = match c.pick(5) {
                0 => quote_json(&c.pick(4).to_string()),
                1 => json(c, 0),
                2 => quote_json(&string(c)),
                _ => "\"1\"".into(),
            };
            let (query, vars) = match c.pick(4) {
                0 => (
                    sub.to_owned(),
                    format!(r#"{{"t":{},"a":{}}}"#, quote_json(&id(c, pool)), int(c)),
                ),
                1 => (
                    hist.to_owned(),
                    format!(r#"{{"a":{}}}"#, quote_json(&cursor(c, pool))),
                ),
                2 => {
                    let op = DocBuilder::new(schema, pool).operation(c);
                    (op.query, op.variables)
                }
                _ => (string(c), json(c, 0)),
            };
            let payload = if c.chance(10) {
                json(c, 0)
            } else {
                format!(r#"{{"query":{},"variables":{vars}}}"#, quote_json(&query))
            };
            format!(r#"{{"type":"{kind}","id":{op_id},"payload":{payload}}}"#)
        }
        4 => format!(
            r#"{{"type":"{}","id":{}}}"#,
            c.one(&["complete", "stop"]),
            quote_json(&c.pick(4).to_string())
        ),
        5 => format!(r#"{{"type":"ping","payload":{}}}"#, json(c, 0)),
        6 => r#"{"type":"pong"}"#.into(),
        7 => format!(r#"{{"type":{}}}"#, quote_json(&string(c))),
        8 => format!(r#"{{"type":{}}}"#, json(c, 0)),
        9 => r#"{"id":"1"}"#.into(),
        10 => json(c, 0),
        11 => string(c),
        12 => r#"{"type":"connection_terminate"}"#.into(),
        13 if c.chance(20) => {
            // Larger than the 1 MiB message limit.
            format!(
                r#"{{"type":"ping","payload":"{}"}}"#,
                "x".repeat(1024 * 1024 + 1)
            )
        }
        14 => return WsFrame::Binary((0..c.pick(64)).map(|_| c.raw() as u8).collect()),
        _ => {
            format!(r#"{{"type":"connection_init","payload":{{"Authorization":"Bearer {key}"}}}}"#)
        }
    };
    WsFrame::Text(text)
}

// ---------------------------------------------------------------------------
// Known open bugs
// ---------------------------------------------------------------------------

/// The deepest nesting of brackets in `text`, outside string literals.
pub fn max_nesting(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for ch in text.chars() {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_string = true,
            '[' | '{' | '(' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
