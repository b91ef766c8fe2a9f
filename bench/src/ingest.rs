//! Ingestion: N clients, each a daemon reporting one task's output with
//! `appendTaskEvents` in batches of 100 events, as fast as the server answers. Each
//! concurrency level gets fresh tasks (in a contract of its own) and is checked
//! afterwards: every task's stream holds exactly the events that were acknowledged.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cpu::CpuSample;
use crate::error::{Error, Result};
use crate::http::{Endpoint, data_str, query_json};
use crate::load::{Budget, closed_loop};
use crate::read::fail_on_errors;
use crate::report::{Latency, Report};
use crate::server::{Memory, RssSampler};

const BATCH: usize = 100;

const CREATE_CONTRACT: &str = "mutation CreateContract($input: CreateContractInput!) { \
    createContract(input: $input) { contract { id } } }";
const CREATE_TASK: &str =
    "mutation CreateTask($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }";
const APPEND: &str = "mutation Append($input: AppendTaskEventsInput!) { \
    appendTaskEvents(input: $input) { events { sequence } } }";
const STREAM_LENGTH: &str =
    "query Length($id: ID!) { task(id: $id) { events(first: 0) { totalCount } } }";

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub clients: Vec<usize>,
    pub secs: u64,
    /// events/s the issue asks for on this backend.
    pub goal: f64,
}

pub async fn run(
    ep: &Endpoint,
    pid: u32,
    config: &IngestConfig,
    report: &mut Report,
) -> Result<()> {
    let created = query_json(
        ep,
        &ep.graphql(
            "CreateContract",
            CREATE_CONTRACT,
            json!({ "input": { "name": "bench ingestion" } }),
        ),
    )
    .await?;
    let contract = data_str(&created, &["createContract", "contract", "id"])?;

    let sampler = RssSampler::start(pid);
    let mut best = (0.0, 0);
    for &clients in &config.clients {
        let mut tasks = Vec::with_capacity(clients);
        for i in 0..clients {
            let input = json!({ "input": {
                "name": format!("ingest {clients}x{i}"),
                "contractId": contract,
            }});
            let made = query_json(ep, &ep.graphql("CreateTask", CREATE_TASK, input)).await?;
            tasks.push(data_str(&made, &["createTask", "task", "id"])?);
        }
        let requests = tasks
            .iter()
            .map(|task| Arc::new(ep.graphql("Append", APPEND, batch(task))))
            .collect();
        let before = CpuSample::take(pid);
        let run = closed_loop(
            ep.addr,
            requests,
            Budget {
                per_client: 1_000_000,
                time: Duration::from_secs(config.secs),
            },
        )
        .await;
        let cpu = CpuSample::take(pid).since(&before);
        fail_on_errors("ingestion", run.failed, &run.first_failure)?;
        let events_per_s = run.per_second() * BATCH as f64;
        let mut micros = run.micros;
        let l = Latency::of(&mut micros);
        println!("ingestion, {clients} clients:");
        let prefix = format!("ingest.{clients}_clients");
        report.metric(format!("{prefix}.events_per_s"), events_per_s, "events/s");
        report.metric(format!("{prefix}.batch_p50_ms"), l.p50, "ms");
        report.metric(format!("{prefix}.batch_p99_ms"), l.p99, "ms");
        report.cpu(&prefix, &cpu, run.ok);
        if events_per_s > best.0 {
            best = (events_per_s, clients);
        }

        // Every acknowledged event is stored, in its task's stream, and nothing else.
        let mut stored = 0;
        for task in &tasks {
            let v = query_json(
                ep,
                &ep.graphql("Length", STREAM_LENGTH, json!({ "id": task })),
            )
            .await?;
            stored += v["data"]["task"]["events"]["totalCount"]
                .as_u64()
                .ok_or_else(|| Error::msg(format!("no totalCount in {v}")))?;
        }
        if stored != run.ok * BATCH as u64 {
            return Err(Error::msg(format!(
                "{clients} clients: {} events acknowledged but {stored} stored",
                run.ok * BATCH as u64
            )));
        }
    }
    let peak = sampler.finish().await;
    println!("ingestion, best:");
    report.metric("ingest.best_events_per_s", best.0, "events/s");
    report.metric("ingest.best_clients", best.1 as f64, "clients");
    report.metric("ingest.server_rss_peak_mib", Memory::mib(peak), "MiB");
    report.target("ingest.best_events_per_s", best.0, true, config.goal);
    let hwm = Memory::of(pid)?.hwm_kib;
    report.target("ingest.server_hwm_mib", Memory::mib(hwm), false, 150.0);
    Ok(())
}

/// The variables of one `appendTaskEvents` call: 100 events like a daemon's output.
fn batch(task: &str) -> Value {
    let events: Vec<Value> = (0..BATCH)
        .map(|i| match i % 6 {
            4 => json!({ "type": "TOOL_CALL", "data": {
                "tool": "bash", "input": { "command": "cargo test" }, "callId": format!("call_{i}")
            }}),
            5 => json!({ "type": "TOOL_RESULT", "data": {
                "callId": format!("call_{}", i - 1), "exitCode": 0, "output": "test result: ok"
            }}),
            _ => json!({ "type": "OUTPUT", "data": {
                "text": format!("line {i}: Compiling crate_{i} v0.1.0 (/work/crate_{i})")
            }}),
        })
        .collect();
    json!({ "input": { "taskId": task, "events": events } })
}
