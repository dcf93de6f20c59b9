//! Hostile URLs, bodies and headers get error responses, and the emulator keeps serving.

mod common;

use common::{ITEM, TOKEN, authed, client, create_session, fixture, with_session, workbook_url};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn still_serving(emulator: &workbook_emulator::Emulator) -> bool {
    let response = authed(client().get(format!("{}/worksheets", workbook_url(emulator))))
        .send()
        .await;
    matches!(response, Ok(response) if response.status() == StatusCode::OK)
}

#[tokio::test]
async fn hostile_paths_get_client_errors() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let base = emulator.base_url();
    let workbook = format!("{base}/me/drive/items/{ITEM}/workbook");
    let paths = [
        format!("{base}/me/drive/items/{ITEM}/workbook/worksheets('''''')/range(address='A1')"),
        format!("{workbook}/worksheets('a')/range(address='''A1')"),
        format!("{workbook}/worksheets('a')/range(address='A1',address='B2')"),
        format!(
            "{workbook}/worksheets('Data')/range(address='{}')",
            "A".repeat(5000)
        ),
        format!("{workbook}/worksheets('Data')/range(address='A1:B2:C3')"),
        format!("{workbook}/worksheets('Data')/range(address='%00')"),
        format!("{workbook}/worksheets('Data')/range(address='Data!')"),
        format!("{workbook}/worksheets('Data')/range(address='''Data''A1')"),
        format!("{workbook}/worksheets('Data')/usedRange(valuesOnly=maybe)"),
        format!("{workbook}/worksheets({})", "(".repeat(200)),
        format!("{workbook}/sessionInfoResource"),
        format!("{workbook}/operations/%E2%82"),
        format!("{base}/me/drive/root:%2F..%2F..%2Fetc%2Fpasswd:/workbook/worksheets"),
        format!("{base}/me/drive/root:/:/workbook"),
        format!(
            "{base}/me/drive/items/{}/workbook/worksheets",
            "x".repeat(10_000)
        ),
        format!("{base}/sites//drive/items/{ITEM}/workbook/worksheets"),
    ];

    for path in &paths {
        let response = authed(client.get(path)).send().await.expect("answered");

        let status = response.status();
        assert!(
            status.is_client_error(),
            "status {status} for {}",
            &path[..path.len().min(120)]
        );
    }
    assert!(still_serving(&emulator).await, "still serving");
}

#[tokio::test]
async fn hostile_bodies_get_400() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let range = format!("{workbook}/worksheets('Data')/range(address='A1:B2')");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies = [
        deep.clone(),
        "{\"values\": 5}".to_owned(),
        "{\"values\": [1, 2]}".to_owned(),
        "{\"values\": [[1, 2], [3]]}".to_owned(),
        "{\"values\": [[{}, 2], [3, 4]]}".to_owned(),
        "{\"values\": [[1e999, 2], [3, 4]]}".to_owned(),
        "\u{0}\u{1}".to_owned(),
    ];

    for body in &bodies {
        let response = authed(client.patch(&range))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("answered");

        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "status for body {}",
            &body[..body.len().min(40)]
        );
    }
    let create = authed(client.post(format!("{workbook}/createSession")))
        .body(deep)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        create.status(),
        StatusCode::BAD_REQUEST,
        "deep createSession body"
    );
    assert!(still_serving(&emulator).await, "still serving");
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let url = format!(
        "{}/worksheets('Data')/range(address='A1')",
        workbook_url(&emulator)
    );

    let response = authed(client.patch(&url))
        .body(vec![b' '; 17 * 1024 * 1024])
        .send()
        .await;

    match response {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "status"),
        Err(error) => assert!(!error.is_status(), "the server may close early: {error}"),
    }
    assert!(still_serving(&emulator).await, "still serving");
}

#[tokio::test]
async fn hostile_headers_do_not_break_sessions() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let client = client();
    let workbook = workbook_url(&emulator);
    let session = create_session(&client, &workbook, false).await;
    let long_session = "s".repeat(60_000);
    let headers: [(&str, &[u8]); 4] = [
        ("workbook-session-id", b"\xff\xfe"),
        ("workbook-session-id", long_session.as_bytes()),
        ("client-request-id", b"\xff"),
        ("prefer", b"respond-async;;;,,\xff"),
    ];

    for (name, value) in headers {
        let value = reqwest::header::HeaderValue::from_bytes(value).expect("a legal header value");
        let response = authed(client.get(format!("{workbook}/worksheets")))
            .header(name, value)
            .send()
            .await
            .expect("answered");

        assert!(
            response.status().is_success() || response.status().is_client_error(),
            "status {} for header {name}",
            response.status()
        );
    }
    let own = with_session(client.get(format!("{workbook}/worksheets")), &session)
        .send()
        .await
        .expect("answered");
    assert_eq!(own.status(), StatusCode::OK, "the real session still works");
}

#[tokio::test]
async fn socket_garbage_does_not_stop_server() {
    let fixture = fixture();
    let emulator = common::start(&fixture).await;
    let requests: [&[u8]; 4] = [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET /v1.0/me/drive/items/item-1/workbook/worksheets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET \xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1.0/me/drive/items/item-1/workbook/createSession HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];

    for request in requests {
        let mut stream = TcpStream::connect(emulator.addr()).await.expect("connects");
        stream.write_all(request).await.expect("writes");
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await;
    }

    assert!(still_serving(&emulator).await, "still serving");
    assert!(!TOKEN.is_empty(), "the token constant is used");
}
