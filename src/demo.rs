//! `makima demo`: a small, realistic history so a new user sees real data in GraphiQL
//! at once. Everything goes through the same domain handlers as the API.

use serde_json::json;

use crate::domain::contracts::{self, CreateContract};
use crate::domain::ingest::{self, NewCheckpoint, NewMessage, NewTaskEvent};
use crate::domain::keys;
use crate::domain::tasks::{self, CreateTask};
use crate::domain::{App, Viewer};
use crate::entities::kinds::{MessageRole, TaskEventType, TaskStatus};
use crate::error::AppResult;
use crate::store::owners;

fn text(role: MessageRole, s: &str) -> NewMessage {
    NewMessage {
        role,
        content: json!([{ "type": "text", "text": s }]),
    }
}

/// Loads the demo for a new owner `demo-<n>` and returns its API key.
pub async fn load(app: &App) -> AppResult<String> {
    let mut n = 1;
    while owners::find_by_name(app.store.db(), &format!("demo-{n}"))
        .await?
        .is_some()
    {
        n += 1;
    }
    let name = format!("demo-{n}");
    let key = keys::create(&app.store, &name).await?.key;
    let owner = owners::find_by_name(app.store.db(), &name)
        .await?
        .expect("owner just created");
    let viewer = Viewer::owner(&owner);
    let v = &viewer;

    let contract = contracts::create(
        app,
        v,
        CreateContract {
            name: "Add rate limiting to the public API".into(),
            description: Some("Protect the public endpoints with per-key token buckets.".into()),
            phases: None,
            repository: None,
        },
    )
    .await?;
    let supervisor =
        crate::store::contracts::supervisors_by_contract(v.scope(app.store.db()), &[contract.id])
            .await?
            .remove(0)
            .task_id;
    tasks::update_status(app, v, supervisor, TaskStatus::Running, None).await?;
    ingest::append_messages(
        app,
        v,
        supervisor,
        vec![
            text(
                MessageRole::System,
                "You supervise the contract. Research first, then specify.",
            ),
            text(
                MessageRole::User,
                "Our API has no rate limiting; add it without breaking clients.",
            ),
            text(
                MessageRole::Assistant,
                "Researching: the gateway sees 2k req/s peak, keys are per customer.",
            ),
        ],
        None,
    )
    .await?;
    for (phase, say) in [
        (
            "specify",
            "Spec: token bucket per API key, 100 req/s burst 200, 429 with Retry-After.",
        ),
        (
            "plan",
            "Plan: middleware in the gateway, Redis-free in-memory buckets, a load test.",
        ),
    ] {
        contracts::change_phase(app, v, contract.id, phase.into()).await?;
        ingest::append_messages(
            app,
            v,
            supervisor,
            vec![text(MessageRole::Assistant, say)],
            None,
        )
        .await?;
    }

    for (task_name, plan, outputs) in [
        (
            "Implement token bucket middleware",
            "Write the middleware and unit tests.",
            ["cargo test: 14 passed", "middleware wired into router"],
        ),
        (
            "Load-test the limiter",
            "Run 5k req/s against staging and report p99.",
            ["p99 4.1 ms at 5k req/s", "429s only above the burst"],
        ),
    ] {
        let (task, _) = tasks::create(
            app,
            v,
            CreateTask {
                name: task_name.into(),
                plan: Some(plan.into()),
                contract_id: Some(contract.id),
                parent_task_id: Some(supervisor),
                repository: None,
                worktree_path: None,
                branch: Some(format!(
                    "makima/{}",
                    task_name.to_lowercase().replace(' ', "-")
                )),
                base_branch: Some("main".into()),
                continue_from_task_id: None,
                daemon_id: None,
            },
        )
        .await?;
        tasks::update_status(app, v, task.id, TaskStatus::Running, None).await?;
        ingest::append_messages(
            app,
            v,
            task.id,
            vec![
                text(MessageRole::User, plan),
                text(MessageRole::Assistant, "On it."),
            ],
            None,
        )
        .await?;
        let events = vec![
            NewTaskEvent {
                event_type: TaskEventType::ToolCall,
                data: json!({ "tool": "bash", "input": "cargo test" }),
            },
            NewTaskEvent {
                event_type: TaskEventType::ToolResult,
                data: json!({ "output": outputs[0] }),
            },
            NewTaskEvent {
                event_type: TaskEventType::Output,
                data: json!({ "text": outputs[1] }),
            },
        ];
        ingest::append_task_events(app, v, task.id, events, None).await?;
        for (i, sha) in ["3f2a9c1d", "b71e04aa"].iter().enumerate() {
            ingest::record_checkpoint(
                app,
                v,
                task.id,
                NewCheckpoint {
                    commit_sha: format!("{sha}{i}{}", &task.id.0.simple().to_string()[..8]),
                    message: format!("{task_name}: step {}", i + 1),
                    branch: None,
                    files_changed: Some(json!(["src/limiter.rs"])),
                },
            )
            .await?;
        }
        tasks::update_status(app, v, task.id, TaskStatus::Done, None).await?;
    }
    contracts::change_phase(app, v, contract.id, "execute".into()).await?;
    tasks::update_status(app, v, supervisor, TaskStatus::Interrupted, None).await?;
    Ok(key)
}
