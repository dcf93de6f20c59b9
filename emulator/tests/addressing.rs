//! Every Graph addressing form reaches the registered workbook.

mod common;

use common::{ITEM, TOKEN, authed, client, fixture};
use reqwest::StatusCode;
use serde_json::{Value, json};
use workbook_emulator::Emulator;

async fn create_status(client: &reqwest::Client, url: &str) -> StatusCode {
    authed(client.post(url))
        .json(&json!({ "persistChanges": false }))
        .send()
        .await
        .expect("createSession is answered")
        .status()
}

#[tokio::test]
async fn every_item_addressing_form_creates_a_session() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let base = emulator.base_url();
    let beta = base.replace("/v1.0", "/beta");
    let urls = [
        format!("{base}/me/drive/items/{ITEM}/workbook/createSession"),
        format!("{base}/me/drive/items/{ITEM}/workbook/microsoft.graph.createSession"),
        format!("{base}/me/drive/root:/Book.xlsx:/workbook/createSession"),
        format!("{base}/drives/b!drive-1/items/{ITEM}/workbook/createSession"),
        format!(
            "{base}/sites/contoso.sharepoint.com,1,2/drive/items/{ITEM}/workbook/createSession"
        ),
        format!("{base}/users/someone@example.com/drive/items/{ITEM}/workbook/createSession"),
        format!("{beta}/me/drive/items/{ITEM}/workbook/createSession"),
    ];

    for url in &urls {
        let status = create_status(&client, url).await;

        assert_eq!(status, StatusCode::CREATED, "createSession on {url}");
    }
    assert_eq!(emulator.open_sessions(), urls.len(), "one session per form");
}

#[tokio::test]
async fn percent_encoded_drive_paths_reach_the_workbook() {
    let fixture = fixture();
    let name = "Q1 #5% l'été.xlsx";
    let emulator = Emulator::builder()
        .workbook_at_path("item-2", format!("Reports/{name}"), &fixture.file)
        .token(TOKEN)
        .start()
        .await
        .expect("the emulator starts");
    let client = client();
    let encoded = "Reports/Q1%20%235%25%20l%27%C3%A9t%C3%A9.xlsx";
    let url = format!(
        "{}/me/drive/root:/{encoded}:/workbook/worksheets",
        emulator.base_url()
    );

    let response = authed(client.get(&url)).send().await.expect("answered");

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "worksheets by drive path"
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["value"][0]["name"], "Data", "first sheet name");
}

#[tokio::test]
async fn drive_path_comparison_ignores_case() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!(
        "{}/me/drive/root:/book.XLSX:/workbook/createSession",
        emulator.base_url()
    );

    let status = create_status(&client, &url).await;

    assert_eq!(
        status,
        StatusCode::CREATED,
        "createSession by lower-case path"
    );
}

#[tokio::test]
async fn unknown_item_returns_404() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let urls = [
        format!(
            "{}/me/drive/items/nope/workbook/createSession",
            emulator.base_url()
        ),
        format!(
            "{}/me/drive/root:/Nope.xlsx:/workbook/createSession",
            emulator.base_url()
        ),
    ];

    for url in &urls {
        let response = authed(client.post(url))
            .json(&json!({ "persistChanges": true }))
            .send()
            .await
            .expect("answered");

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "status for {url}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "itemNotFound", "code for {url}");
    }
}

#[tokio::test]
async fn malformed_paths_return_client_errors() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let origin = emulator.base_url().replace("/v1.0", "");
    let workbook = format!("/v1.0/me/drive/items/{ITEM}/workbook");
    let cases = [
        (
            "/v2/me/drive/items/x/workbook/createSession".to_owned(),
            400,
        ),
        (
            "/v1.0/me/drive/root:/Book.xlsx/workbook/worksheets".to_owned(),
            400,
        ),
        (
            format!("{workbook}/worksheets('Data'/range(address='A1')"),
            400,
        ),
        (
            format!("{workbook}/worksheets('Data')/range(address='A1'"),
            400,
        ),
        (
            format!("{workbook}/worksheets('Data')/range(address='ZZZZ1')"),
            400,
        ),
        (format!("{workbook}/worksheets('Data')/range()"), 400),
        (format!("{workbook}/%FF%FE"), 400),
        (format!("{workbook}/charts"), 404),
        (format!("{workbook}/worksheets('Data')/cells/x"), 404),
    ];

    for (path, expected) in &cases {
        let response = authed(client.get(format!("{origin}{path}")))
            .send()
            .await
            .expect("answered");

        assert_eq!(response.status().as_u16(), *expected, "status for {path}");
        let body: Value = response.json().await.expect("JSON error body");
        assert!(body["error"]["code"].is_string(), "error code for {path}");
        assert!(
            body["error"]["innerError"]["request-id"].is_string(),
            "request id for {path}"
        );
    }
}

#[tokio::test]
async fn wrong_method_returns_405() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();

    let response = authed(client.get(format!("{}/createSession", common::workbook_url(&emulator))))
        .send()
        .await
        .expect("answered");

    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "GET createSession"
    );
}
