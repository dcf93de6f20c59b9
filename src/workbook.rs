//! The address of a workbook: the path of its `/workbook` root below the Graph base URL.

use std::fmt;
use std::sync::Arc;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::error::Error;

/// Characters encoded in one path segment: everything except RFC 3986 unreserved characters
/// and `!`, `(`, `)`, `*`, which Graph ids use (drive ids start with `b!`). `'` is encoded
/// because OData gives it meaning inside parentheses, and `:` because path addressing uses it
/// to end the item path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'$')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b',')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A workbook on OneDrive or SharePoint, addressed by its drive item.
///
/// The constructors percent-encode ids and path segments, so names with spaces, `#`, `?`, `%`,
/// `'` or non-ASCII characters are safe to pass as they are.
///
/// # Examples
///
/// ```
/// use workbook_session::Workbook;
///
/// let by_id = Workbook::drive_item("b!drive", "01ITEM")?;
/// assert_eq!(by_id.root(), "/drives/b!drive/items/01ITEM/workbook");
///
/// let by_path = Workbook::me_path("Reports/Q1 #1.xlsx")?;
/// assert_eq!(by_path.root(), "/me/drive/root:/Reports/Q1%20%231.xlsx:/workbook");
/// # Ok::<(), workbook_session::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Workbook {
    root: Arc<str>,
}

impl Workbook {
    /// Addresses `/drives/{drive-id}/items/{item-id}/workbook`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidArgument`] when an id is empty, `.` or `..`.
    pub fn drive_item(drive_id: &str, item_id: &str) -> Result<Workbook, Error> {
        let drive = segment("drive id", drive_id)?;
        let item = segment("item id", item_id)?;
        Ok(Workbook::from_item(format!("/drives/{drive}/items/{item}")))
    }

    /// Addresses `/me/drive/items/{item-id}/workbook`, in the signed-in user's drive.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidArgument`] when the id is empty, `.` or `..`.
    pub fn me_item(item_id: &str) -> Result<Workbook, Error> {
        let item = segment("item id", item_id)?;
        Ok(Workbook::from_item(format!("/me/drive/items/{item}")))
    }

    /// Addresses `/me/drive/root:/{path}:/workbook`, a file by its path in the signed-in user's
    /// drive. Each segment of `path` is encoded; the `/` between segments are kept.
    ///
    /// Graph has been reported to reject some workbook calls on path addresses with 403 where
    /// the item id works; prefer ids for long-lived services.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidArgument`] when the path is empty or has an empty, `.` or `..`
    /// segment.
    pub fn me_path(path: &str) -> Result<Workbook, Error> {
        let trimmed = path.trim_start_matches('/');
        if trimmed.is_empty() {
            return Err(Error::invalid_argument(
                "item path",
                path,
                "the path is empty",
            ));
        }
        let segments = trimmed
            .split('/')
            .map(|part| segment("item path segment", part))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workbook::from_item(format!(
            "/me/drive/root:/{}:",
            segments.join("/")
        )))
    }

    /// Addresses `/sites/{site-id}/drive/items/{item-id}/workbook`, in a SharePoint site's
    /// default drive.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidArgument`] when an id is empty, `.` or `..`.
    pub fn site_item(site_id: &str, item_id: &str) -> Result<Workbook, Error> {
        let site = segment("site id", site_id)?;
        let item = segment("item id", item_id)?;
        Ok(Workbook::from_item(format!(
            "/sites/{site}/drive/items/{item}"
        )))
    }

    /// Addresses `/users/{user-id-or-upn}/drive/items/{item-id}/workbook`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::InvalidArgument`] when an id is empty, `.` or `..`.
    pub fn user_item(user: &str, item_id: &str) -> Result<Workbook, Error> {
        let user = segment("user id", user)?;
        let item = segment("item id", item_id)?;
        Ok(Workbook::from_item(format!(
            "/users/{user}/drive/items/{item}"
        )))
    }

    /// Returns the encoded path of the workbook root, relative to the base URL.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn from_item(item: String) -> Workbook {
        Workbook {
            root: format!("{item}/workbook").into(),
        }
    }
}

/// Encodes one path segment, rejecting the values a URL parser would treat as navigation.
fn segment(what: &'static str, value: &str) -> Result<String, Error> {
    match value {
        "" => Err(Error::invalid_argument(what, value, "it is empty")),
        "." | ".." => Err(Error::invalid_argument(
            what,
            value,
            "a dot segment would change the URL's path",
        )),
        _ => Ok(utf8_percent_encode(value, SEGMENT).to_string()),
    }
}

impl fmt::Debug for Workbook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Workbook").field(&self.root()).finish()
    }
}

impl fmt::Display for Workbook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_builds_its_root() {
        let cases = [
            (Workbook::me_item("I"), "/me/drive/items/I/workbook"),
            (Workbook::drive_item("D", "I"), "/drives/D/items/I/workbook"),
            (
                Workbook::site_item("S", "I"),
                "/sites/S/drive/items/I/workbook",
            ),
            (
                Workbook::user_item("a@b.c", "I"),
                "/users/a%40b.c/drive/items/I/workbook",
            ),
            (
                Workbook::me_path("/a/b.xlsx"),
                "/me/drive/root:/a/b.xlsx:/workbook",
            ),
        ];

        for (built, expected) in cases {
            assert_eq!(built.expect("a valid workbook").root(), expected);
        }
    }

    #[test]
    fn special_characters_are_encoded() {
        let workbook = Workbook::me_path("Q1 #2?/50% l'été.xlsx").expect("a valid path");

        assert_eq!(
            workbook.root(),
            "/me/drive/root:/Q1%20%232%3F/50%25%20l%27%C3%A9t%C3%A9.xlsx:/workbook"
        );
    }

    #[test]
    fn dot_and_empty_segments_are_rejected() {
        for bad in ["", "/", "a//b", "../x", "a/./b"] {
            assert!(Workbook::me_path(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(Workbook::drive_item("..", "x").is_err());
        assert!(Workbook::me_item("").is_err());
    }
}
