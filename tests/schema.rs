//! `schema.graphql` is the exported SDL; this fails when the code and the file differ.
//! Regenerate with `cargo run -- export-schema > schema.graphql`.

#[test]
fn schema_file_matches_the_code() {
    let sdl = makima::graphql::sdl();
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    assert!(
        sdl == file,
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}

#[test]
fn every_type_and_field_is_documented() {
    let sdl = makima::graphql::sdl();
    let mut undocumented = vec![];
    let lines: Vec<&str> = sdl.lines().collect();
    // Inside a multi-line description a line is text, whatever it contains.
    let mut in_description = false;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.starts_with("schema {") {
            break;
        }
        if t == "\"\"\"" {
            in_description = !in_description;
            continue;
        }
        if in_description {
            continue;
        }
        let is_def = t.starts_with("type ") || t.starts_with("input ") || t.starts_with("enum ");
        let is_field =
            line.starts_with('\t') && t.contains(':') && !t.starts_with('"') && !t.starts_with('#');
        if (is_def || is_field)
            && !["type Query", "type Mutation"]
                .iter()
                .any(|r| t.starts_with(r))
        {
            let prev = i.checked_sub(1).map(|j| lines[j].trim()).unwrap_or("");
            if !prev.ends_with('"') {
                undocumented.push(t.to_owned());
            }
        }
    }
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
}
