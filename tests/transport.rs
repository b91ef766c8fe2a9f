//! GraphQL over HTTP: methods, media types, status codes, auth, limits, GraphiQL and
//! the health endpoints.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use common::{TestApp, url_encode};
use serde_json::{Value, json};

const GQL: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

fn content_type(reply: &common::Reply) -> &str {
    reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn post_with(t: &TestApp, accept: &str, body: &str) -> common::Reply {
    let auth = format!("Bearer {}", t.key);
    t.raw(
        Method::POST,
        "/graphql",
        &[
            ("content-type", "application/json"),
            ("accept", accept),
            ("authorization", &auth),
        ],
        body.to_owned(),
    )
    .await
}

#[tokio::test]
async fn post_and_get_under_both_media_types() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    let query = "query($id: ID!) { viewer { owner } contract(id: $id) { name } }";
    let vars = json!({ "id": contract });
    let expected = json!({ "viewer": { "owner": "alice" }, "contract": { "name": "c" } });
    for accept in [GQL, JSON] {
        let body = json!({ "query": query, "variables": vars }).to_string();
        let reply = post_with(&t, accept, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(content_type(&reply).starts_with(accept), "{accept}");
        assert_eq!(reply.body["data"], expected);

        let reply = t.get(query, Some(vars.clone()), accept).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(content_type(&reply).starts_with(accept), "{accept}");
        assert_eq!(reply.body["data"], expected);
    }
    // GET with an operation name picks that operation.
    let doc = "query A { viewer { owner } } query B { __typename }";
    let auth = format!("Bearer {}", t.key);
    let uri = format!("/graphql?query={}&operationName=B", url_encode(doc));
    let reply = t
        .raw(
            Method::GET,
            &uri,
            &[("accept", GQL), ("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.body["data"], json!({ "__typename": "Query" }));
}

#[tokio::test]
async fn a_mutation_by_get_is_405_and_changes_nothing() {
    let t = TestApp::new().await;
    let m = "mutation { createContract(input: {name: \"x\"}) { contract { id } } }";
    for accept in [GQL, JSON] {
        let reply = t.get(m, None, accept).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    // Also when the mutation is picked by operationName out of several operations.
    let doc = format!(
        "query Q {{ __typename }} {}",
        m.replacen("mutation", "mutation M", 1)
    );
    let auth = format!("Bearer {}", t.key);
    let uri = format!("/graphql?query={}&operationName=M", url_encode(&doc));
    let reply = t
        .raw(
            Method::GET,
            &uri,
            &[("accept", GQL), ("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let data = t.ok("{ contracts { totalCount } }", json!({})).await;
    assert_eq!(data["contracts"]["totalCount"], 0);
    assert!(t.timeline().await.is_empty());
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let t = TestApp::new().await;
    let big = "x".repeat(1024 * 1024 + 16);
    let body = json!({ "query": "{ viewer { owner } }", "variables": { "pad": big } }).to_string();
    let reply = post_with(&t, GQL, &body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is served.
    let pad = "x".repeat(1024 * 1024 - 200);
    let body = json!({ "query": "{ viewer { owner } }", "variables": { "pad": pad } }).to_string();
    assert!(body.len() <= 1024 * 1024);
    let reply = post_with(&t, GQL, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["data"]["viewer"]["owner"], "alice");
}

#[tokio::test]
async fn missing_or_wrong_keys_are_401_unauthenticated() {
    let t = TestApp::new().await;
    let body = json!({ "query": "{ viewer { owner } }" }).to_string();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("authorization", "Bearer mk_wrong".into())],
        vec![("authorization", "Bearer ".into())],
        vec![("authorization", t.key.clone())], // no scheme
        vec![("authorization", format!("Basic {}", t.key))],
        vec![("x-api-key", "mk_wrong".into())],
        vec![("x-api-key", "".into())],
    ];
    for headers in cases {
        for accept in [GQL, JSON] {
            let mut h: Vec<(&str, &str)> =
                vec![("content-type", "application/json"), ("accept", accept)];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            let reply = t.raw(Method::POST, "/graphql", &h, body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{headers:?}");
            assert!(reply.body.get("data").is_none_or(Value::is_null));
            // And by GET.
            let mut h: Vec<(&str, &str)> = vec![("accept", accept)];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            let uri = format!("/graphql?query={}", url_encode("{ viewer { owner } }"));
            let reply = t.raw(Method::GET, &uri, &h, Body::empty()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "GET {headers:?}");
            assert_eq!(reply.code(), Some("UNAUTHENTICATED"));
        }
    }
    // Both headers work with a valid key (and the scheme is case-insensitive).
    let bob = t.key_for("bob").await;
    for (name, value) in [
        ("authorization", format!("Bearer {bob}")),
        ("authorization", format!("bearer {bob}")),
        ("x-api-key", bob.clone()),
    ] {
        let reply = t
            .raw(
                Method::POST,
                "/graphql",
                &[("content-type", "application/json"), (name, &value)],
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
        assert_eq!(reply.body["data"]["viewer"]["owner"], "bob");
    }
    // A mutation without a key writes nothing.
    let m =
        json!({ "query": "mutation { createContract(input: {name: \"x\"}) { contract { id } } }" });
    let reply = t
        .raw(
            Method::POST,
            "/graphql",
            &[("content-type", "application/json")],
            m.to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(t.timeline().await.is_empty());
}

#[tokio::test]
async fn a_batch_is_refused_and_runs_nothing() {
    let t = TestApp::new().await;
    let one =
        json!({ "query": "mutation { createContract(input: {name: \"x\"}) { contract { id } } }" });
    for body in [json!([one, one]).to_string(), format!("  \n[{one}]")] {
        for accept in [GQL, JSON] {
            let reply = post_with(&t, accept, &body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
            assert!(reply.body["errors"][0]["message"].is_string());
            assert!(reply.body.get("data").is_none_or(Value::is_null));
        }
    }
    assert!(t.timeline().await.is_empty());
}

#[tokio::test]
async fn parse_and_validation_errors_by_media_type() {
    let t = TestApp::new().await;
    let cases = [
        ("{ viewer { owner }", "GRAPHQL_PARSE_FAILED"),
        ("query {", "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ contract { id } }", "GRAPHQL_VALIDATION_FAILED"), // missing argument
        (
            "query($x: Int) { viewer { owner } }",
            "GRAPHQL_VALIDATION_FAILED",
        ), // unused variable
        (
            "{ tasks(first: \"ten\") { nodes { id } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (query, code) in cases {
        for (accept, status) in [(GQL, StatusCode::BAD_REQUEST), (JSON, StatusCode::OK)] {
            let body = json!({ "query": query }).to_string();
            let reply = post_with(&t, accept, &body).await;
            assert_eq!(reply.status, status, "POST {query} as {accept}");
            assert_eq!(reply.code(), Some(code), "{query}: {}", reply.body);
            assert!(reply.body.get("data").is_none_or(Value::is_null));
            let reply = t.get(query, None, accept).await;
            assert_eq!(reply.status, status, "GET {query} as {accept}");
            assert_eq!(reply.code(), Some(code), "{query}: {}", reply.body);
        }
    }
    // An error while running (data present) stays 200 under either media type.
    for accept in [GQL, JSON] {
        let body = json!({ "query": "{ task(id: \"nope\") { id } }" }).to_string();
        let reply = post_with(&t, accept, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.code(), Some("BAD_USER_INPUT"));
    }
}

/// `{ task(id:) { contract { supervisor { task { contract … { id } } } } } }` with
/// `depth` levels of fields, every level present in the data.
fn nested(depth: usize) -> String {
    let chain = ["contract", "supervisor", "task"];
    // The leaf is a scalar of the type at level depth - 1 (Supervisor has no id).
    let mut q = if depth >= 3 && (depth - 3) % 3 == 1 {
        "phase"
    } else {
        "id"
    }
    .to_owned();
    for level in (2..depth).rev() {
        q = format!("{} {{ {q} }}", chain[(level - 2) % 3]);
    }
    format!("query($id: ID!) {{ task(id: $id) {{ {q} }} }}")
}

/// How deep the answer to `nested` goes.
fn answer_depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(answer_depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[tokio::test]
async fn depth_alias_and_complexity_limits() {
    let t = TestApp::new().await;
    let (_, sup) = t.create_contract("c").await;
    let vars = json!({ "id": sup });

    // Depth: 20 levels of fields run, 21 are refused.
    let data = t.ok(&nested(20), vars.clone()).await;
    assert_eq!(answer_depth(&data), 20, "{data}");
    let reply = t
        .fails("GRAPHQL_VALIDATION_FAILED", &nested(21), vars.clone())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // However deep: also beyond async-graphql's own nesting limits (32 and 64).
    for depth in [40, 70, 200] {
        let reply = t
            .fails("GRAPHQL_VALIDATION_FAILED", &nested(depth), vars.clone())
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }

    // Aliases: 30 run, 31 are refused (also when hidden in a fragment).
    let aliases = |n: usize| {
        (0..n)
            .map(|i| format!("a{i}: owner"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let data = t
        .ok(&format!("{{ viewer {{ {} }} }}", aliases(30)), json!({}))
        .await;
    assert_eq!(data["viewer"]["a29"], "alice");
    let reply = t
        .fails(
            "GRAPHQL_VALIDATION_FAILED",
            &format!("{{ viewer {{ {} }} }}", aliases(31)),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    t.fails(
        "GRAPHQL_VALIDATION_FAILED",
        &format!(
            "{{ viewer {{ ...F }} x: viewer {{ owner }} }} fragment F on Viewer {{ {} }}",
            aliases(30)
        ),
        json!({}),
    )
    .await;

    // Complexity: a document of 1,000 fields runs, 1,001 are refused.
    let fields = |n: usize| vec!["owner"; n].join(" ");
    t.ok(&format!("{{ viewer {{ {} }} }}", fields(999)), json!({}))
        .await;
    let reply = t
        .fails(
            "GRAPHQL_VALIDATION_FAILED",
            &format!("{{ viewer {{ {} }} }}", fields(1000)),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = json!({ "query": format!("{{ viewer {{ {} }} }}", fields(2000)) }).to_string();
    let reply = post_with(&t, JSON, &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.code(), Some("GRAPHQL_VALIDATION_FAILED"));
}

#[tokio::test]
async fn graphiql_and_its_assets() {
    let t = TestApp::new().await;
    let reply = t
        .raw(
            Method::GET,
            "/graphql",
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(content_type(&reply).starts_with("text/html"));
    let html = reply.body.as_str().expect("html text");
    assert!(html.to_lowercase().contains("graphiql"));
    // Every asset the page references is served with its content type.
    let mut referenced = 0;
    for (name, mime) in [
        ("react.production.min.js", "text/javascript"),
        ("react-dom.production.min.js", "text/javascript"),
        ("graphiql.min.js", "text/javascript"),
        ("graphiql.min.css", "text/css"),
    ] {
        if html.contains(&format!("/graphiql/{name}")) {
            referenced += 1;
        }
        let reply = t
            .raw(
                Method::GET,
                &format!("/graphiql/{name}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert!(content_type(&reply).starts_with(mime), "{name}");
        assert!(
            reply.body.as_str().is_some_and(|b| b.len() > 1000),
            "{name}"
        );
    }
    assert_eq!(referenced, 4, "the page loads its assets from /graphiql/");
    let reply = t
        .raw(Method::GET, "/graphiql/nope.js", &[], Body::empty())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // A GET with a query but an HTML Accept is still a GraphQL request.
    let uri = format!("/graphql?query={}", url_encode("{ viewer { owner } }"));
    let reply = t
        .raw(Method::GET, &uri, &[("accept", "text/html")], Body::empty())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn health_endpoints() {
    let t = TestApp::new().await;
    for path in ["/healthz", "/readyz"] {
        let reply = t.raw(Method::GET, path, &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}
