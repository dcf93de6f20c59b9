//! Every request sent through a guard carries the bearer token and the session id.

mod common;

use common::*;
use serde_json::json;
use workbook_session::{Method, SessionOptions};

#[tokio::test]
async fn every_guarded_request_carries_token_and_session() {
    let server = wiremock::MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close(&server).await;
    mount_any_ok(&server).await;
    let client = client(&server);

    let session = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await
        .expect("session created");
    let sheet = "worksheets('Sheet 1')/range(address='A1:B2')";
    session.get(sheet).send().await.expect("get");
    session
        .patch(sheet)
        .json(&json!({"values": [[1, 2], [3, 4]]}))
        .send()
        .await
        .expect("patch");
    session
        .post("worksheets/add")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("post");
    session.put("worksheets('a')").send().await.expect("put");
    session
        .delete("worksheets('a')")
        .send()
        .await
        .expect("delete");
    session
        .request(Method::GET, "worksheets")
        .send()
        .await
        .expect("request");
    session.close().await.expect("closed");

    let requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests.len(), 8, "create, six calls and close");
    for request in &requests {
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            authorization,
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            request.method,
            request.url
        );
    }
    for request in &requests[1..] {
        assert_eq!(
            session_header(request).as_deref(),
            Some(SESSION_ID),
            "{} {}",
            request.method,
            request.url
        );
    }
}

#[tokio::test]
async fn create_sends_persist_changes_explicitly() {
    let server = wiremock::MockServer::start().await;
    mount_create(&server, SESSION_ID).await;
    mount_close(&server).await;
    let client = client(&server);

    let persistent = client
        .create_session(&workbook(), SessionOptions::persistent())
        .await;
    let non_persistent = client
        .create_session(&workbook(), SessionOptions::non_persistent())
        .await;
    drop(persistent);
    drop(non_persistent);

    let creates = requests_to(&server, "/createSession").await;
    let bodies: Vec<serde_json::Value> = creates
        .iter()
        .map(|request| serde_json::from_slice(&request.body).expect("a JSON body"))
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"persistChanges": true}),
            json!({"persistChanges": false})
        ]
    );
}
