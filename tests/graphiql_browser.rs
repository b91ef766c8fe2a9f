//! End to end in a real browser: headless Chromium opens GraphiQL from the server, runs
//! a query, starts a subscription (graphql-transport-ws, with the header editor's
//! headers as the connection_init payload) and sees the event a mutation then writes.

mod common;

use common::TestApp;
use common::browser::{Browser, chromium};
use serde_json::json;

/// Waits (in the page) until `cond` returns something truthy; fails after 20 s with
/// what the response pane shows.
const HELPERS: &str = r#"
const editor = sel => document.querySelector(sel + ' .CodeMirror').CodeMirror;
const response = () => editor('.graphiql-response').getValue();
const until = async (cond, what) => {
  for (let i = 0; i < 400; i++) {
    const v = cond();
    if (v) return v;
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for ' + what + '; response pane: ' + response());
};
const run = query => {
  editor('.graphiql-query-editor').setValue(query);
  document.querySelector('.graphiql-execute-button').click();
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_runs_a_query_and_a_subscription_in_chromium() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var_os("MAKIMA_REQUIRE_BROWSER").is_none(),
            "Chromium is required (MAKIMA_REQUIRE_BROWSER) but not installed"
        );
        eprintln!("note: skipped; install Debian's `chromium` to run this test");
        return;
    };
    let app = TestApp::new().await;
    let server = app.serve().await;
    let mut browser = Browser::launch(binary).await;
    browser
        .open(&format!("http://{}/graphql", server.addr))
        .await;

    // The header editor carries the key; a query runs over HTTP.
    let headers = json!({ "Authorization": format!("Bearer {}", app.key) }).to_string();
    let owner = browser
        .eval(&format!(
            r#"(async () => {{ {HELPERS}
            await until(() => document.querySelector('.graphiql-query-editor .CodeMirror'), 'GraphiQL');
            const headers = Array.from(document.querySelectorAll('.graphiql-editor-tool .CodeMirror'))
              .map(e => e.CodeMirror).find(cm => cm.getValue().includes('Authorization'));
            headers.setValue({headers});
            // GraphiQL takes the edited headers over asynchronously: run until the
            // request carries them.
            for (let attempt = 0; attempt < 40; attempt++) {{
              editor('.graphiql-response').setValue('');
              run('{{ viewer {{ owner }} }}');
              await until(() => response(), 'the query result');
              if (response().includes('owner')) break;
              await new Promise(r => setTimeout(r, 250));
            }}
            return JSON.parse(response()).data.viewer.owner;
        }})()"#,
            headers = serde_json::to_string(&headers).unwrap()
        ))
        .await;
    assert_eq!(owner, "alice");

    // A subscription over WebSocket, then a mutation that it must show.
    browser
        .eval(&format!(
            r#"(async () => {{ {HELPERS}
            // GraphiQL parses the edited query asynchronously, and sends it over HTTP
            // while it still holds the previous (non-subscription) document: run until
            // it goes over the WebSocket.
            for (let attempt = 0; attempt < 40; attempt++) {{
              editor('.graphiql-response').setValue('');
              run('subscription {{ historyEvents {{ type task {{ name }} }} }}');
              await new Promise(r => setTimeout(r, 300));
              if (!response().includes('not supported on this transport')) return true;
            }}
            throw new Error('GraphiQL never used the WebSocket');
        }})()"#
        ))
        .await;
    server.subscribers_at_least(1).await;
    app.create_task("made while GraphiQL watched", None).await;
    let event = browser
        .eval(&format!(
            r#"(async () => {{ {HELPERS}
            await until(() => response().includes('made while GraphiQL watched'), 'the subscription event');
            return JSON.parse(response()).data.historyEvents;
        }})()"#
        ))
        .await;
    assert_eq!(
        event,
        json!({ "type": "TASK_CREATED", "task": { "name": "made while GraphiQL watched" } })
    );
}
