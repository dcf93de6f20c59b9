//! Graph error responses: the status, the two-level code chain and the JSON body.
//!
//! Every failure a handler can produce is an [`ApiError`]. The server turns it into the body
//! `{"error": {"code", "message", "innerError": {"code"?, "message"?, "request-id", "date",
//! "client-request-id"}}}` and adds a `Retry-After` header when one is set.

use crate::faults::RetryAfter;
use serde_json::{Value, json};

/// A failed request, as the emulator reports it to the client.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) inner_code: Option<String>,
    pub(crate) retry_after: Option<RetryAfter>,
}

impl ApiError {
    /// Builds an error with the top-level code that the Excel API documents for `status`.
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: top_level_code(status).to_owned(),
            message: message.into(),
            inner_code: None,
            retry_after: None,
        }
    }

    /// Builds an error whose second-level code is the documented "uncategorized" code for
    /// `status`, when the documentation lists one.
    pub(crate) fn uncategorized(status: u16, message: impl Into<String>) -> Self {
        let mut error = ApiError::new(status, message);
        error.inner_code = uncategorized_code(status).map(str::to_owned);
        error
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, message)
    }

    pub(crate) fn method_not_allowed(method: &str) -> Self {
        ApiError::new(
            405,
            format!("method {method} is not allowed on this resource"),
        )
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        let mut error = ApiError::new(401, message);
        error.code = "InvalidAuthenticationToken".to_owned();
        error
    }

    /// Builds the error for a session id that is unknown, closed or expired.
    pub(crate) fn invalid_session(status: u16, session_fingerprint: &str) -> Self {
        let mut error = ApiError::new(
            status,
            format!("session {session_fingerprint} does not exist or is no longer valid"),
        );
        error.inner_code = Some("invalidSessionReCreatable".to_owned());
        error
    }

    pub(crate) fn with_inner_code(mut self, code: &str) -> Self {
        self.inner_code = Some(code.to_owned());
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<RetryAfter>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Renders the `error` object, with the request ids of this request.
    pub(crate) fn to_body(&self, ids: &RequestIds) -> Value {
        let mut inner = serde_json::Map::new();
        if let Some(code) = &self.inner_code {
            inner.insert("code".to_owned(), json!(code));
            inner.insert("message".to_owned(), json!(self.message));
        }
        inner.insert("request-id".to_owned(), json!(ids.request_id));
        inner.insert("date".to_owned(), json!(ids.date));
        inner.insert(
            "client-request-id".to_owned(),
            json!(ids.client_request_id.as_deref().unwrap_or(&ids.request_id)),
        );
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": Value::Object(inner),
            }
        })
    }

    /// Renders the `error` object of a failed long-running operation, whose nested
    /// `innerError` carries the second-level code.
    pub(crate) fn to_operation_error(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "innerError": {
                "code": self.inner_code.as_deref().unwrap_or("internalServerErrorUncategorized"),
                "message": self.message,
            }
        })
    }
}

/// The ids that every response of one request carries, in headers and error bodies.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub(crate) request_id: String,
    pub(crate) client_request_id: Option<String>,
    pub(crate) date: String,
}

/// Returns the top-level code of the Excel API error table for an HTTP status.
///
/// 404 uses `itemNotFound`, the code Graph's drive endpoints send for a missing item.
fn top_level_code(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "methodNotAllowed",
        409 => "conflict",
        413 => "payloadTooLarge",
        429 => "tooManyRequests",
        500 => "internalServerError",
        501 => "notImplemented",
        502 => "badGateway",
        503 => "serviceUnavailable",
        504 => "gatewayTimeout",
        _ => "generalException",
    }
}

/// Returns the documented second-level "uncategorized" code for a status. 502 has none.
fn uncategorized_code(status: u16) -> Option<&'static str> {
    let code = match status {
        400 => "badRequestUncategorized",
        401 => "unauthorizedUncategorized",
        403 => "forbiddenUncategorized",
        404 => "notFoundUncategorized",
        405 => "methodNotAllowedUncategorized",
        409 => "conflictUncategorized",
        413 => "payloadTooLargeUncategorized",
        429 => "tooManyRequestsUncategorized",
        500 => "internalServerErrorUncategorized",
        501 => "notImplementedUncategorized",
        503 => "serviceUnavailableUncategorized",
        504 => "gatewayTimeoutUncategorized",
        _ => return None,
    };
    Some(code)
}

/// Formats a UTC time as `YYYY-MM-DDTHH:MM:SS`, the form of the `date` field in Graph errors.
pub(crate) fn iso8601_utc(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), counting in
/// 400-year eras of 146,097 days that start on 1 March.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn iso8601_formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_767_225_599, "2025-12-31T23:59:59"),
        ];

        for (seconds, expected) in cases {
            let formatted = iso8601_utc(UNIX_EPOCH + Duration::from_secs(seconds));

            assert_eq!(formatted, expected, "unix time {seconds}");
        }
    }
}
