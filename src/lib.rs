//! Microsoft Graph Excel workbook sessions that cannot leak.
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
