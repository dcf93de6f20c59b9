//! Access tokens: a static bearer token or an async [`TokenProvider`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::header::HeaderValue;

use crate::error::{BoxError, Error};

/// An OAuth access token for Microsoft Graph.
///
/// Its `Debug` output is redacted, and it is sent only as a header value marked sensitive.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a bearer token, without the `Bearer ` prefix.
    pub fn new(token: impl Into<String>) -> AccessToken {
        AccessToken(token.into())
    }

    /// Returns the token itself; keep it out of logs.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Builds the `Authorization` header value, marked sensitive.
    pub(crate) fn header_value(&self) -> Result<HeaderValue, Error> {
        let token = self.0.trim();
        if token.is_empty() {
            return Err(Error::Token {
                source: "the access token is empty".into(),
            });
        }
        let mut value =
            HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| Error::Token {
                source: "the access token contains characters not allowed in a header".into(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> AccessToken {
        AccessToken(token)
    }
}

impl From<&str> for AccessToken {
    fn from(token: &str) -> AccessToken {
        AccessToken(token.to_owned())
    }
}

/// The future returned by [`TokenProvider::access_token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, BoxError>> + Send + 'a>>;

/// A source of access tokens, asked before every request.
///
/// Implementations usually cache the token and renew it shortly before it expires. After a
/// `401` response the client asks once more with `force_refresh` set, so a provider can drop a
/// token the server no longer accepts.
///
/// # Examples
///
/// ```
/// use workbook_session::{AccessToken, TokenFuture, TokenProvider};
///
/// struct FromEnvironment;
///
/// impl TokenProvider for FromEnvironment {
///     fn access_token(&self, _force_refresh: bool) -> TokenFuture<'_> {
///         Box::pin(async {
///             let token = std::env::var("GRAPH_TOKEN")?;
///             Ok(AccessToken::new(token))
///         })
///     }
/// }
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// Returns a valid access token; `force_refresh` is set after the server rejected the last one.
    fn access_token(&self, force_refresh: bool) -> TokenFuture<'_>;
}

/// A provider shared with the caller, who keeps a handle to it.
impl<T: TokenProvider + ?Sized> TokenProvider for Arc<T> {
    fn access_token(&self, force_refresh: bool) -> TokenFuture<'_> {
        (**self).access_token(force_refresh)
    }
}

/// The client's authentication.
#[derive(Clone)]
pub(crate) enum Auth {
    Static(HeaderValue),
    Provider(Arc<dyn TokenProvider>),
}

impl Auth {
    /// Returns the `Authorization` header value to send.
    pub(crate) async fn header(&self, force_refresh: bool) -> Result<HeaderValue, Error> {
        match self {
            Auth::Static(value) => Ok(value.clone()),
            Auth::Provider(provider) => {
                let token = provider
                    .access_token(force_refresh)
                    .await
                    .map_err(|source| Error::Token { source })?;
                token.header_value()
            }
        }
    }

    /// Returns `true` when asking again may give a different token.
    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self, Auth::Provider(_))
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Static(_) => f.write_str("StaticToken(<redacted>)"),
            Auth::Provider(_) => f.write_str("TokenProvider"),
        }
    }
}
