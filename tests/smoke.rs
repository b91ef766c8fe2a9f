mod common;

use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn create_contract_writes_contract_and_supervisor_events() {
    let t = TestApp::new().await;
    let (contract, supervisor) = t.create_contract("c1").await;
    let data = t
        .ok(
            "query($id: ID!) { contract(id: $id) { name phase status phases supervisor { status phase messageCount task { id isSupervisor } } } }",
            json!({ "id": contract }),
        )
        .await;
    let c = &data["contract"];
    assert_eq!(c["phase"], "research");
    assert_eq!(c["status"], "ACTIVE");
    assert_eq!(c["supervisor"]["status"], "PENDING");
    assert_eq!(c["supervisor"]["task"]["id"], supervisor);
    assert_eq!(c["supervisor"]["task"]["isSupervisor"], true);
    assert_eq!(
        t.timeline_types().await,
        ["CONTRACT_CREATED", "TASK_CREATED"]
    );
}
