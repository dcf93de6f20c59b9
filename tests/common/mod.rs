//! Shared set-up for the integration tests: a wiremock Graph stand-in and a client for it.

#![allow(dead_code)]

pub mod emulated;

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{header_exists, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};
use workbook_session::{RetryPolicy, Workbook, WorkbookClient, WorkbookClientBuilder};

pub const TOKEN: &str = "secret-test-token-5f2a";
pub const SESSION_ID: &str = "cluster=PS1&session=15.SN3PEPF00000123.A82.1.V24.7a4b2c1d.WOPI";
pub const ROOT: &str = "/v1.0/drives/d1/items/i1/workbook";

pub fn workbook() -> Workbook {
    Workbook::drive_item("d1", "i1").expect("valid ids")
}

/// Returns a builder aimed at `server`, with short retry waits so failure tests stay fast.
pub fn builder(server: &MockServer) -> WorkbookClientBuilder {
    WorkbookClient::builder()
        .base_url(format!("{}/v1.0", server.uri()))
        .bearer_token(TOKEN)
        .respond_async(false)
        .keep_alive(None)
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50))
                .max_elapsed(Duration::from_secs(5)),
        )
}

pub fn client(server: &MockServer) -> WorkbookClient {
    builder(server).build().expect("a valid client")
}

/// Mounts a createSession that responds 201 with `id`.
pub async fn mount_create(server: &MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": id, "persistChanges": true })),
        )
        .mount(server)
        .await;
}

/// Mounts a createSession that responds to each call with a new id `session-N`.
pub async fn mount_create_unique(server: &MockServer) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let counter = std::sync::Arc::new(AtomicU64::new(0));
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/createSession")))
        .respond_with(move |_: &wiremock::Request| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": format!("session-{n}"), "persistChanges": true }))
        })
        .mount(server)
        .await;
}

/// Mounts a closeSession that responds 204.
pub async fn mount_close(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("{ROOT}/closeSession")))
        .and(header_exists("workbook-session-id"))
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
}

/// Mounts any other workbook request answering 200 with `{"ok": true}`.
pub async fn mount_any_ok(server: &MockServer) {
    Mock::given(path_regex(format!("^{ROOT}/worksheets.*")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(server)
        .await;
}

/// Returns the session ids of every closeSession the server received.
pub async fn closes(server: &MockServer) -> Vec<String> {
    requests_to(server, "/closeSession")
        .await
        .iter()
        .map(|request| session_header(request).unwrap_or_default())
        .collect()
}

pub async fn requests_to(server: &MockServer, suffix: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|request| request.url.path().ends_with(suffix))
        .collect()
}

pub fn session_header(request: &wiremock::Request) -> Option<String> {
    request
        .headers
        .get("workbook-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Waits (in real time, bounded) until `condition` holds; returns whether it did.
pub async fn eventually<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
