//! Session ids as received from the server, and the short fingerprint that logs and errors show
//! in their place.

use std::fmt;
use std::hash::{Hash, Hasher};

use reqwest::header::HeaderValue;

use crate::error::Error;

/// The maximum length of a session id accepted from the server, in bytes.
///
/// Graph's ids are a few hundred bytes long; anything far longer is a broken or hostile response.
pub(crate) const MAX_SESSION_ID_LEN: usize = 4096;

/// A short, stable stand-in for a session id, safe to log.
///
/// The full id lets anyone with a token act in the session, so this crate never logs or
/// formats it. The fingerprint is a 32-bit hash of the id, enough to correlate log lines.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u32);

impl Fingerprint {
    /// Computes the fingerprint of a session id, to find that session in this crate's logs.
    pub fn of(id: &str) -> Fingerprint {
        // `DefaultHasher::new` uses fixed keys, so an id has the same fingerprint in every
        // process built with the same Rust release, which lets logs of several processes match.
        let mut hasher = std::hash::DefaultHasher::new();
        id.hash(&mut hasher);
        Fingerprint(hasher.finish() as u32)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s-{:08x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A validated session id, ready to send as the `workbook-session-id` header.
#[derive(Clone)]
pub(crate) struct SessionId {
    header: HeaderValue,
    fingerprint: Fingerprint,
}

impl SessionId {
    /// Validates an id received from the server for `operation`.
    pub(crate) fn parse(id: &str, operation: &str) -> Result<SessionId, Error> {
        if id.is_empty() {
            return Err(Error::invalid_response(operation, "session id is empty"));
        }
        if id.len() > MAX_SESSION_ID_LEN {
            return Err(Error::invalid_response(
                operation,
                format!(
                    "session id is {} bytes long, more than the limit of {MAX_SESSION_ID_LEN}",
                    id.len()
                ),
            ));
        }
        // Visible ASCII only: a header value may legally carry more, but an id with spaces,
        // control characters or non-ASCII bytes is not one Graph issues.
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid_response(
                operation,
                "session id contains characters other than visible ASCII",
            ));
        }
        let mut header = HeaderValue::from_str(id)
            .map_err(|_| Error::invalid_response(operation, "session id is not a header value"))?;
        header.set_sensitive(true);
        Ok(SessionId {
            header,
            fingerprint: Fingerprint::of(id),
        })
    }

    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_ids() {
        let long = "a".repeat(MAX_SESSION_ID_LEN + 1);
        for bad in ["", "a\r\nb", "a b", "caf\u{e9}", long.as_str()] {
            assert!(
                SessionId::parse(bad, "createSession").is_err(),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn fingerprint_is_stable_and_hides_the_id() {
        let id = "cluster=PS1&session=15.SN3PEPF000001.A82.1.V24.12345";

        let shown = Fingerprint::of(id).to_string();

        assert_eq!(
            shown,
            Fingerprint::of(id).to_string(),
            "same id, same fingerprint"
        );
        assert!(
            !shown.contains("session"),
            "the fingerprint must not show the id"
        );
    }
}
