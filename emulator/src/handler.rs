//! The request pipeline: ids, bearer check, path parse, fault decision, body, dispatch and
//! the rendering of the response.

use crate::content::{self, enter_session};
use crate::faults::{Decision, Fault};
use crate::graph_error::{ApiError, RequestIds, iso8601_utc};
use crate::path::{Endpoint, ParsedPath, parse_path};
use crate::session_api;
use crate::shared::{Reply, RequestContext, Shared};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The largest request body the emulator reads, in bytes. A bigger one gets 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The header that carries the session id.
const SESSION_HEADER: &str = "workbook-session-id";

/// The service error that makes hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose")]
pub(crate) struct ConnectionDropped;

enum Failure {
    Api(ApiError),
    Drop,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::Api(error)
    }
}

/// Serves one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let ids = request_ids(request.headers());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    shared.state.lock().counters.requests_total += 1;

    let result = match process(&shared, request).await {
        Ok(reply) => Ok(reply),
        Err(Failure::Api(error)) => Err(error),
        Err(Failure::Drop) => {
            tracing::debug!(%method, path = %path, request_id = %ids.request_id, "connection dropped");
            return Err(ConnectionDropped);
        }
    };

    let response = render(result, &ids);
    tracing::debug!(%method, path = %path, status = response.status().as_u16(), request_id = %ids.request_id, "request served");
    Ok(response)
}

async fn process(shared: &Arc<Shared>, request: Request<Incoming>) -> Result<Reply, Failure> {
    check_bearer(shared, request.headers())?;
    let parsed = parse_path(request.uri().path())
        .map_err(|error| ApiError::new(error.status, error.message))?;
    let book = shared
        .find_book(&parsed.item)
        .ok_or_else(|| ApiError::not_found(format!("item {} not found", describe_item(&parsed))))?;
    let session_id = session_header(request.headers());
    count_sessionless(shared, &parsed, book, session_id.is_none());
    let _in_flight = session_id
        .as_deref()
        .map(|id| InFlight::enter(Arc::clone(shared), id));

    let response_delay = apply_fault(shared, &parsed).await?;
    let ctx = RequestContext {
        method: request.method().clone(),
        session_id,
        prefer_async: prefers_async(request.headers()),
        body: read_body(request.into_body()).await?,
    };
    let result = dispatch(shared, &parsed, book, &ctx).await;

    if let Some(delay) = response_delay {
        tokio::time::sleep(delay).await;
    }
    Ok(result?)
}

/// A request in flight in a session, from arrival to response. Dropping it ends the count.
/// The drop only locks the state mutex, which is never held across an `.await`.
struct InFlight {
    shared: Arc<Shared>,
    id: String,
}

impl InFlight {
    fn enter(shared: Arc<Shared>, id: &str) -> Self {
        shared.state.lock().enter(id);
        InFlight {
            shared,
            id: id.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.state.lock().leave(&self.id);
    }
}

fn describe_item(parsed: &ParsedPath) -> String {
    match &parsed.item {
        crate::path::ItemRef::Id(id) => format!("'{id}'"),
        crate::path::ItemRef::Path(path) => format!("at path '{path}'"),
    }
}

/// Decides and applies the fault for this request. Returns the response delay, if any.
async fn apply_fault(shared: &Shared, parsed: &ParsedPath) -> Result<Option<Duration>, Failure> {
    let route = parsed.endpoint.route();
    let decision = {
        let mut state = shared.state.lock();
        let decision = state.faults.decide(route);
        if decision != Decision::None {
            state.counters.faults_injected += 1;
        }
        decision
    };

    let Decision::Apply(fault) = decision else {
        return Ok(None);
    };
    tracing::debug!(?route, ?fault, "fault injected");
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => Err(
            ApiError::uncategorized(status, format!("injected fault: status {status}"))
                .with_retry_after(retry_after)
                .into(),
        ),
        Fault::DropConnection => Err(Failure::Drop),
        Fault::DelayRequest(delay) => {
            tokio::time::sleep(delay).await;
            Ok(None)
        }
        Fault::DelayResponse(delay) => Ok(Some(delay)),
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    parsed: &ParsedPath,
    book: usize,
    ctx: &RequestContext,
) -> Result<Reply, ApiError> {
    let method = &ctx.method;
    match &parsed.endpoint {
        Endpoint::CreateSession if method == Method::POST => {
            session_api::create_session(shared, parsed, book, ctx)
        }
        Endpoint::RefreshSession if method == Method::POST => {
            session_api::refresh_session(shared, book, ctx)
        }
        Endpoint::CloseSession if method == Method::POST => {
            session_api::close_session(shared, book, ctx).await
        }
        Endpoint::Operation(id) if method == Method::GET => {
            session_api::poll_operation(shared, book, id)
        }
        Endpoint::SessionInfo(key) if method == Method::GET => {
            session_api::session_info(shared, book, key)
        }
        Endpoint::Worksheets | Endpoint::Worksheet(_) | Endpoint::UsedRange { .. }
            if method == Method::GET =>
        {
            let scope = enter_session(shared, book, ctx)?;
            match &parsed.endpoint {
                Endpoint::Worksheet(sheet) => content::get_worksheet(shared, book, sheet),
                Endpoint::UsedRange { sheet, .. } => {
                    content::get_used_range(shared, book, scope.as_ref(), sheet)
                }
                _ => Ok(content::list_worksheets(shared, book)),
            }
        }
        Endpoint::Range { sheet, address } if method == Method::GET || method == Method::PATCH => {
            let scope = enter_session(shared, book, ctx)?;
            if method == Method::GET {
                content::get_range(shared, book, scope.as_ref(), sheet, address)
            } else {
                content::patch_range(shared, book, scope.as_ref(), sheet, address, &ctx.body).await
            }
        }
        _ => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

fn check_bearer(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated(
            "missing Authorization header: send 'Authorization: Bearer <token>'",
        )
    })?;
    let text = value.to_str().map_err(|_| {
        ApiError::unauthenticated("invalid Authorization header: it is not visible ASCII")
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthenticated(
            "invalid Authorization scheme: expected 'Bearer <token>'",
        ));
    }

    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::unauthenticated("access token is empty"));
    }
    match &shared.config.token {
        Some(expected) if expected != token => Err(ApiError::unauthenticated(
            "invalid access token: it does not match the emulator's token",
        )),
        _ => Ok(()),
    }
}

/// Reads the session header. A value that is not visible ASCII cannot name a session and is
/// kept as text that matches none.
fn session_header(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(SESSION_HEADER)?;
    Some(
        value
            .to_str()
            .map(str::to_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    )
}

fn count_sessionless(shared: &Shared, parsed: &ParsedPath, book: usize, sessionless: bool) {
    let exempt = matches!(
        parsed.endpoint,
        Endpoint::CreateSession | Endpoint::Operation(_) | Endpoint::SessionInfo(_)
    );
    if !sessionless || exempt {
        return;
    }
    let item_id = shared.books[book].item_id.clone();
    *shared
        .state
        .lock()
        .counters
        .requests_without_session
        .entry(item_id)
        .or_default() += 1;
}

/// Returns whether a `Prefer` header requests `respond-async`.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .any(|preference| preference.trim().eq_ignore_ascii_case("respond-async"))
}

async fn read_body(body: Incoming) -> Result<Bytes, Failure> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::uncategorized(
                413,
                format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            )
            .into())
        }
        Err(error) => {
            tracing::debug!(%error, "failed to read the request body");
            Err(Failure::Drop)
        }
    }
}

fn request_ids(headers: &HeaderMap) -> RequestIds {
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 256)
        .map(str::to_owned);
    let random: u128 = rand::random();
    let hex = format!("{random:032x}");
    RequestIds {
        request_id: format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ),
        client_request_id,
        date: iso8601_utc(SystemTime::now()),
    }
}

fn render(result: Result<Reply, ApiError>, ids: &RequestIds) -> Response<Full<Bytes>> {
    let (status, body, location, retry_after) = match result {
        Ok(reply) => (reply.status, reply.body, reply.location, None),
        Err(error) => (
            error.status,
            Some(error.to_body(ids)),
            None,
            error.retry_after.as_ref().map(|value| value.header_value()),
        ),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);

    let mut response = Response::new(Full::new(match &body {
        Some(body) => Bytes::from(body.to_string()),
        None => Bytes::new(),
    }));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if body.is_some() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    insert_header(headers, "request-id", &ids.request_id);
    let client_request_id = ids.client_request_id.as_deref().unwrap_or(&ids.request_id);
    insert_header(headers, "client-request-id", client_request_id);
    if let Some(location) = location {
        insert_header(headers, LOCATION.as_str(), &location);
    }
    if let Some(retry_after) = retry_after {
        insert_header(headers, RETRY_AFTER.as_str(), &retry_after);
    }
    response
}

fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => tracing::warn!(
            header = name,
            value,
            "header value is not legal HTTP and was left out"
        ),
    }
}
