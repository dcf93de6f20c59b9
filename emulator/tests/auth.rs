//! Bearer token checks.

mod common;

use common::{ITEM, TOKEN, client, fixture};
use reqwest::StatusCode;
use serde_json::Value;
use workbook_emulator::Emulator;

async fn worksheets_with(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("answered")
}

#[tokio::test]
async fn bad_authorization_returns_401() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!("{}/worksheets", common::workbook_url(&emulator));
    let cases = [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer    "),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer wrong-token"),
    ];

    for authorization in cases {
        let response = worksheets_with(&client, &url, authorization).await;

        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "status for {authorization:?}"
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body["error"]["code"], "InvalidAuthenticationToken",
            "code for {authorization:?}"
        );
    }
}

#[tokio::test]
async fn configured_token_is_accepted_with_any_scheme_case() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!("{}/worksheets", common::workbook_url(&emulator));

    let response = worksheets_with(&client, &url, Some(&format!("bearer {TOKEN}"))).await;

    assert_eq!(response.status(), StatusCode::OK, "lower-case scheme");
}

#[tokio::test]
async fn without_configured_token_any_bearer_token_is_accepted() {
    let fixture = fixture();
    let emulator = Emulator::builder()
        .workbook(ITEM, &fixture.file)
        .start()
        .await
        .expect("starts");
    let client = client();
    let url = format!("{}/worksheets", common::workbook_url(&emulator));

    let accepted = worksheets_with(&client, &url, Some("Bearer anything")).await;
    let missing = worksheets_with(&client, &url, None).await;

    assert_eq!(accepted.status(), StatusCode::OK, "any token");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED, "no header");
}
