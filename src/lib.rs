//! Microsoft Graph Excel workbook sessions that are closed exactly once, however the code
//! holding them ends.
//!
//! Graph edits a workbook inside a session: createSession returns an id, every call sends it
//! in the `workbook-session-id` header, and closeSession ends it. A session that is never
//! closed lingers on the server and counts against a small per-workbook cap; one left idle
//! expires and, when non-persistent, loses its edits.
//!
//! A [`SessionGuard`] owns one session. Every request made through it carries the header,
//! and the session is closed exactly once: by [`SessionGuard::close`], or, when the guard is
//! dropped, by a background close queue. Idle sessions are refreshed, expired persistent
//! sessions are recreated, throttling is retried with `Retry-After`, and
//! [`WorkbookClient::shutdown`] closes whatever is still open.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use workbook_session::{SessionOptions, Workbook, WorkbookClient};
//!
//! # async fn run(base_url: String) -> Result<(), Box<dyn std::error::Error>> {
//! let client = WorkbookClient::builder()
//!     .base_url(base_url) // default: https://graph.microsoft.com/v1.0
//!     .bearer_token("token")
//!     .build()?;
//! let workbook = Workbook::me_item("item-1")?;
//!
//! let session = client.create_session(&workbook, SessionOptions::persistent()).await?;
//! session
//!     .patch("worksheets('Notes')/range(address='A1:B1')")
//!     .json(&serde_json::json!({ "values": [[1, "two"]] }))
//!     .send()
//!     .await?;
//! let range: serde_json::Value = session
//!     .get("worksheets('Notes')/range(address='A1:B1')")
//!     .send_json()
//!     .await?;
//! assert_eq!(range["values"], serde_json::json!([[1, "two"]]));
//! session.close().await?;
//!
//! let report = client.shutdown(Duration::from_secs(10)).await;
//! assert_eq!(report.failed, 0);
//! # Ok(())
//! # }
//! # let rt = tokio::runtime::Runtime::new().unwrap();
//! # rt.block_on(async {
//! #     let dir = tempfile::tempdir().unwrap();
//! #     let path = dir.path().join("sample.xlsx");
//! #     std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample.xlsx"), &path).unwrap();
//! #     let emulator = workbook_emulator::Emulator::builder()
//! #         .workbook("item-1", &path)
//! #         .token("token")
//! #         .start()
//! #         .await
//! #         .unwrap();
//! #     run(emulator.base_url()).await.unwrap();
//! # });
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod auth;
mod client;
mod close_queue;
mod create;
mod error;
mod keep_alive;
mod request;
mod response;
mod retry;
mod session;
mod session_id;
mod shutdown;
mod state;
mod stats;
mod transport;
mod workbook;

pub use auth::{AccessToken, TokenFuture, TokenProvider};
pub use client::{DEFAULT_BASE_URL, WorkbookClient, WorkbookClientBuilder};
pub use close_queue::CloseOutcome;
pub use error::{BoxError, Error, GraphError, GraphErrorBody};
pub use request::SessionRequest;
pub use response::Response;
pub use retry::RetryPolicy;
pub use session::{SessionGuard, SessionOptions};
pub use session_id::Fingerprint;
pub use shutdown::ShutdownReport;
pub use stats::Stats;
pub use transport::SESSION_HEADER;
pub use workbook::Workbook;

/// Re-exported so callers can name methods, headers and status codes without a direct
/// dependency on the same `reqwest` version.
pub use reqwest::{Method, StatusCode, header};

/// Runs the README's examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod assertions {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<WorkbookClient>();
        send_sync::<SessionGuard>();
        send_sync::<Error>();
        send_sync::<Workbook>();
        send_sync::<Response>();
        send_sync::<SessionRequest<'static>>();
    }

    #[allow(dead_code, unused_must_use, clippy::let_underscore_future)]
    fn futures_are_send(client: WorkbookClient, workbook: Workbook, guard: SessionGuard) {
        send(&client.create_session(&workbook, SessionOptions::persistent()));
        send(&client.shutdown(std::time::Duration::ZERO));
        send(&guard.get("x").send());
        send(&guard.get("x").send_json::<serde_json::Value>());
        send(&guard.refresh());
        send(&guard.close());
    }
}

/// Entry points for the fuzz targets in `fuzz/`; not part of the public API.
///
/// Each function parses untrusted input the way the client does and panics only when an
/// invariant the client relies on is broken, which is what the fuzzer looks for.
#[doc(hidden)]
pub mod fuzzing {
    use std::time::SystemTime;

    use reqwest::header::HeaderValue;
    use url::Url;

    /// Parses a createSession or sessionInfoResource body.
    pub fn session_info(body: &[u8]) {
        if let Ok(created) = crate::create::parse_session_info("createSession", body) {
            let id = created.id.header().as_bytes();
            assert!(!id.is_empty(), "an accepted id is not empty");
            assert!(
                id.len() <= crate::session_id::MAX_SESSION_ID_LEN,
                "an accepted id is bounded"
            );
            assert!(
                id.iter().all(u8::is_ascii_graphic),
                "an accepted id is visible ASCII"
            );
        }
    }

    /// Parses a workbookOperation body and formats any error.
    pub fn operation(body: &[u8]) {
        match crate::create::parse_operation(body) {
            Ok(operation) => drop(format!("{operation:?}")),
            Err(error) => drop(error.to_string()),
        }
    }

    /// Parses a Graph error body and formats it.
    pub fn error_body(body: &[u8]) {
        if let Some(parsed) = crate::error::GraphErrorBody::parse(body) {
            let shown = parsed.to_string();
            assert!(
                !shown.contains('\n') && !shown.contains('\r'),
                "no line breaks from the server"
            );
        }
    }

    /// Parses a `Retry-After` header value.
    pub fn retry_after(value: &[u8]) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let _ = crate::retry::parse_retry_after(&value, SystemTime::now());
        }
    }

    /// Resolves a server-sent URL and a caller's path against the Graph base URL, checking
    /// that whatever is accepted stays on the origin and below the workbook root.
    pub fn urls(text: &str) {
        let base = Url::parse(crate::DEFAULT_BASE_URL).expect("the default base URL parses");
        if let Ok(url) = crate::transport::same_origin_url(&base, "fuzz", text) {
            assert_eq!(
                url.origin(),
                base.origin(),
                "accepted URL on another origin"
            );
        }
        let workbook = crate::Workbook::me_item("item").expect("a valid id");
        if let Ok(url) = crate::transport::workbook_url(&base, &workbook, text) {
            assert_eq!(url.origin(), base.origin(), "request URL on another origin");
            assert!(
                url.path().starts_with("/v1.0/me/drive/items/item/workbook"),
                "request URL left the root"
            );
        }
        if let Ok(workbook) = crate::Workbook::me_path(text) {
            assert!(
                !workbook.root().contains("/../"),
                "a dot segment survived encoding"
            );
        }
    }
}
