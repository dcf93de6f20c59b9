//! A local, stateful Microsoft Graph workbook session server on real `.xlsx` files.
//!
//! The emulator serves the Excel workbook session protocol of Microsoft Graph on loopback:
//! createSession (201, or 202 with a long-running operation for `Prefer: respond-async`),
//! refreshSession, closeSession, inactivity expiry, the per-workbook session cap, bearer
//! checks and Graph's error bodies. Worksheets and range values are read from and written to
//! real `.xlsx` files: a persistent session saves its edits when it closes or expires, a
//! non-persistent session discards them, and a write without a session saves at once.
//!
//! Tests drive it with any HTTP client, inject faults (429 with `Retry-After`, 503, 504,
//! delays, dropped connections, seeded random faults) and assert on its [`Counters`].
//!
//! Time is measured with [`tokio::time::Instant`], so a test on a paused clock
//! (`#[tokio::test(start_paused = true)]` with `tokio::time::advance`) expires sessions
//! without waiting.
//!
//! # Quick start
//! ```no_run
//! use workbook_emulator::{Emulator, Fault, FaultRule, RetryAfter, Route};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = Emulator::builder()
//!     .workbook("item-1", "/tmp/Book.xlsx")
//!     .token("test-token")
//!     .start()
//!     .await?;
//!
//! // The next createSession gets 429 with Retry-After: 2.
//! emulator.inject(FaultRule::new(
//!     Route::CreateSession,
//!     Fault::Status { status: 429, retry_after: Some(RetryAfter::Seconds(2)) },
//! ));
//!
//! let url = format!("{}/me/drive/items/item-1/workbook/createSession", emulator.base_url());
//! // ... send requests to `url` with `Authorization: Bearer test-token` ...
//!
//! assert_eq!(emulator.open_sessions(), 0);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//! Every addressing form maps to a registered workbook, under `/v1.0` or `/beta`. The forms
//! are `/me/drive/items/{id}`, `/me/drive/root:/{path}:`, `/drives/{drive}/items/{id}`,
//! `/sites/{site}/drive/items/{id}` and `/users/{user}/drive/items/{id}`. Each is followed by
//! `/workbook` and one of `createSession`, `refreshSession`, `closeSession` (each also with a
//! `microsoft.graph.` prefix), `operations/{id}`, `sessionInfoResource(key='...')`,
//! `worksheets`, `worksheets('Name')` or `worksheets/{name-or-id}`, and, below a worksheet,
//! `range(address='A1:C3')` (GET, PATCH) or `usedRange` (GET).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod address;
mod book;
mod builder;
mod content;
mod counters;
mod faults;
mod graph_error;
mod handler;
mod path;
mod server;
mod session_api;
mod shared;
mod state;

pub use builder::{AsyncCreate, EmulatorBuilder};
pub use counters::Counters;
pub use faults::{Fault, FaultRule, RandomFaults, RetryAfter, Route};
pub use server::Emulator;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<crate::Emulator>();
        assert_send_sync::<crate::EmulatorBuilder>();
        assert_send_sync::<crate::Counters>();
        assert_send_sync::<crate::FaultRule>();
    }
}
