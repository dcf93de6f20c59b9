//! The Graph URL parser: from a raw request path to the workbook item and the endpoint.
//!
//! Graph paths hold colons (`root:/a.xlsx:`), parentheses and quoted OData literals
//! (`worksheets('Q1 ''26')/range(address='A1:B2')`), so they are parsed here by hand rather
//! than by router patterns. The raw path is split on `/` first and each segment is then
//! percent-decoded, so an encoded `%2F` never splits a segment.

use crate::faults::Route;
use percent_encoding::percent_decode_str;

/// The drive item that contains the workbook, as the request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemRef {
    /// An item id (`.../items/{id}`).
    Id(String),
    /// A path from the drive root (`.../root:/{path}:`), decoded, without leading slash.
    Path(String),
}

/// A worksheet named in the path: by `worksheets('Name')` or by `worksheets/{name-or-id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SheetRef(pub(crate) String);

/// The workbook endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    CreateSession,
    RefreshSession,
    CloseSession,
    Operation(String),
    SessionInfo(String),
    Worksheets,
    Worksheet(SheetRef),
    Range { sheet: SheetRef, address: String },
    UsedRange { sheet: SheetRef, values_only: bool },
}

impl Endpoint {
    /// Returns the fault-injection route of the endpoint.
    pub(crate) fn route(&self) -> Route {
        match self {
            Endpoint::CreateSession => Route::CreateSession,
            Endpoint::RefreshSession => Route::RefreshSession,
            Endpoint::CloseSession => Route::CloseSession,
            Endpoint::Operation(_) => Route::Operation,
            Endpoint::SessionInfo(_) => Route::SessionInfo,
            Endpoint::Worksheets | Endpoint::Worksheet(_) => Route::Worksheets,
            Endpoint::Range { .. } | Endpoint::UsedRange { .. } => Route::Range,
        }
    }
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedPath {
    pub(crate) item: ItemRef,
    /// The raw path up to and including `/workbook`, used to build absolute locations.
    pub(crate) workbook_prefix: String,
    pub(crate) endpoint: Endpoint,
}

/// Why a path was not accepted: the HTTP status and a message for the error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError {
    pub(crate) status: u16,
    pub(crate) message: String,
}

fn bad(message: impl Into<String>) -> PathError {
    PathError {
        status: 400,
        message: message.into(),
    }
}

fn unknown_resource(path: &str) -> PathError {
    PathError {
        status: 404,
        message: format!("resource not found for the segment path '{path}'"),
    }
}

/// Parses a raw (still percent-encoded) request path such as
/// `/v1.0/me/drive/items/01AB/workbook/worksheets('Sheet1')/range(address='A1')`.
pub(crate) fn parse_path(raw: &str) -> Result<ParsedPath, PathError> {
    let after_version = raw
        .strip_prefix("/v1.0/")
        .or_else(|| raw.strip_prefix("/beta/"))
        .ok_or_else(|| bad("invalid version: paths start with /v1.0/ or /beta/"))?;
    let (drive_relative, drive_prefix_len) = strip_drive(after_version).ok_or_else(|| {
        bad("invalid drive: expected me/drive, drives/{id}, sites/{id}/drive or users/{id}/drive")
    })?;

    let (item, after_item) = parse_item(drive_relative)?;
    let workbook_rest = after_item
        .strip_prefix("/workbook")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| unknown_resource(raw))?;

    let prefix_len = raw.len() - after_version.len()
        + drive_prefix_len
        + (drive_relative.len() - after_item.len())
        + "/workbook".len();
    let endpoint = parse_endpoint(workbook_rest.trim_start_matches('/'), raw)?;
    Ok(ParsedPath {
        item,
        workbook_prefix: raw[..prefix_len].to_owned(),
        endpoint,
    })
}

/// Strips the drive part (`me/drive/`, `drives/{id}/`, ...) and returns the rest and the
/// length of what was stripped.
fn strip_drive(path: &str) -> Option<(&str, usize)> {
    let rest = if let Some(rest) = path.strip_prefix("me/drive/") {
        rest
    } else if let Some(rest) = path.strip_prefix("drives/") {
        skip_segment(rest)?
    } else if let Some(rest) = path.strip_prefix("sites/") {
        skip_segment(rest)?.strip_prefix("drive/")?
    } else if let Some(rest) = path.strip_prefix("users/") {
        skip_segment(rest)?.strip_prefix("drive/")?
    } else {
        return None;
    };
    Some((rest, path.len() - rest.len()))
}

/// Skips one non-empty path segment and the slash after it.
fn skip_segment(path: &str) -> Option<&str> {
    let (segment, rest) = path.split_once('/')?;
    (!segment.is_empty()).then_some(rest)
}

/// Parses `items/{id}` or `root:/{path}:` and returns the item and what follows it.
fn parse_item(path: &str) -> Result<(ItemRef, &str), PathError> {
    if let Some(rest) = path.strip_prefix("items/") {
        let end = rest.find('/').unwrap_or(rest.len());
        let id = decode(&rest[..end])?;
        if id.is_empty() {
            return Err(bad("the item id is empty"));
        }
        return Ok((ItemRef::Id(id), &rest[end..]));
    }

    let rest = path
        .strip_prefix("root:/")
        .ok_or_else(|| bad("expected items/{id} or root:/{path}: after the drive"))?;
    let end = rest
        .rfind(":/workbook")
        .ok_or_else(|| bad("a drive path must end with ':' before /workbook"))?;
    let segments: Result<Vec<String>, PathError> = rest[..end]
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(decode)
        .collect();
    let item_path = segments?.join("/");
    if item_path.is_empty() {
        return Err(bad("the drive path is empty"));
    }
    Ok((ItemRef::Path(item_path), &rest[end + 1..]))
}

/// Parses what follows `/workbook/`.
fn parse_endpoint(rest: &str, raw: &str) -> Result<Endpoint, PathError> {
    let raw_segments: Vec<&str> = rest.split('/').collect();
    let segments: Result<Vec<Segment>, PathError> = raw_segments
        .iter()
        .map(|segment| Segment::parse(&decode(segment)?))
        .collect();
    let segments = segments?;

    match segments.as_slice() {
        [only] => parse_workbook_action(only, raw),
        [first, second] if first.is("operations") && first.args.is_none() => {
            let id = second.plain_name().ok_or_else(|| unknown_resource(raw))?;
            Ok(Endpoint::Operation(id.to_owned()))
        }
        [first, rest @ ..] if first.is("worksheets") => parse_worksheet_path(first, rest, raw),
        _ => Err(unknown_resource(raw)),
    }
}

fn parse_workbook_action(segment: &Segment, raw: &str) -> Result<Endpoint, PathError> {
    let name = segment
        .name
        .strip_prefix("microsoft.graph.")
        .unwrap_or(&segment.name);
    let endpoint = match name {
        "createSession" => Endpoint::CreateSession,
        "refreshSession" => Endpoint::RefreshSession,
        "closeSession" => Endpoint::CloseSession,
        "worksheets" => Endpoint::Worksheets,
        "sessionInfoResource" => {
            let key = segment.named_arg("key").ok_or_else(|| {
                bad("sessionInfoResource needs a key, as in sessionInfoResource(key='...')")
            })?;
            return Ok(Endpoint::SessionInfo(key.to_owned()));
        }
        _ => return Err(unknown_resource(raw)),
    };

    let takes_no_args = segment.args.as_ref().is_none_or(|args| args.is_empty());
    if name != "worksheets" && !takes_no_args {
        return Err(bad(format!("{name} takes no parameters")));
    }
    match (&endpoint, &segment.args) {
        (Endpoint::Worksheets, Some(_)) => {
            let sheet = segment
                .single_arg()
                .ok_or_else(|| bad("worksheets(...) takes one quoted name"))?;
            Ok(Endpoint::Worksheet(SheetRef(sheet.to_owned())))
        }
        _ => Ok(endpoint),
    }
}

fn parse_worksheet_path(
    first: &Segment,
    rest: &[Segment],
    raw: &str,
) -> Result<Endpoint, PathError> {
    let (sheet, rest) = match (&first.args, rest) {
        (Some(_), _) => {
            let name = first
                .single_arg()
                .ok_or_else(|| bad("worksheets(...) takes one quoted name"))?;
            (SheetRef(name.to_owned()), rest)
        }
        (None, [id, rest @ ..]) => {
            let name = id.plain_name().ok_or_else(|| unknown_resource(raw))?;
            (SheetRef(name.to_owned()), rest)
        }
        (None, []) => return Ok(Endpoint::Worksheets),
    };

    match rest {
        [] => Ok(Endpoint::Worksheet(sheet)),
        [range] if range.is("range") => {
            let address = range
                .named_arg("address")
                .ok_or_else(|| bad("range needs an address, as in range(address='A1:B2')"))?;
            Ok(Endpoint::Range {
                sheet,
                address: address.to_owned(),
            })
        }
        [used] if used.is("usedRange") => {
            let values_only = match used.named_arg("valuesOnly") {
                None => false,
                Some(value) if value.eq_ignore_ascii_case("true") => true,
                Some(value) if value.eq_ignore_ascii_case("false") => false,
                Some(value) => {
                    return Err(bad(format!(
                        "invalid valuesOnly '{value}': expected true or false"
                    )));
                }
            };
            Ok(Endpoint::UsedRange { sheet, values_only })
        }
        _ => Err(unknown_resource(raw)),
    }
}

/// Percent-decodes one path segment into UTF-8.
fn decode(segment: &str) -> Result<String, PathError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| bad("a path segment is not valid UTF-8 after percent-decoding"))
}

/// One decoded path segment: a name and, when it has parentheses, its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    name: String,
    args: Option<Vec<Arg>>,
}

/// One parameter inside parentheses: `'literal'`, `key='literal'` or `key=token`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arg {
    key: Option<String>,
    value: String,
}

impl Segment {
    fn parse(text: &str) -> Result<Segment, PathError> {
        let Some(open) = text.find('(') else {
            return Ok(Segment {
                name: text.to_owned(),
                args: None,
            });
        };
        let inner = text[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| bad(format!("unbalanced parentheses in '{text}'")))?;
        let args = parse_args(inner).map_err(|reason| bad(format!("{reason} in '{text}'")))?;
        Ok(Segment {
            name: text[..open].to_owned(),
            args: Some(args),
        })
    }

    fn is(&self, name: &str) -> bool {
        self.name == name
    }

    fn plain_name(&self) -> Option<&str> {
        (self.args.is_none() && !self.name.is_empty()).then_some(self.name.as_str())
    }

    fn named_arg(&self, key: &str) -> Option<&str> {
        self.args
            .as_ref()?
            .iter()
            .find(|arg| arg.key.as_deref() == Some(key))
            .map(|arg| arg.value.as_str())
    }

    fn single_arg(&self) -> Option<&str> {
        match self.args.as_deref() {
            Some([arg]) if arg.key.is_none() || arg.key.as_deref() == Some("name") => {
                Some(arg.value.as_str())
            }
            _ => None,
        }
    }
}

/// Parses a comma-separated parameter list whose string literals double their quotes.
fn parse_args(inner: &str) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut chars = inner.chars().peekable();

    loop {
        while chars.next_if(|ch| ch.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }

        let mut key = None;
        let value = if chars.peek() == Some(&'\'') {
            read_literal(&mut chars)?
        } else {
            let token = read_token(&mut chars);
            if chars.next_if_eq(&'=').is_some() {
                key = Some(token.trim().to_owned());
                if chars.peek() == Some(&'\'') {
                    read_literal(&mut chars)?
                } else {
                    read_token(&mut chars).trim().to_owned()
                }
            } else {
                token.trim().to_owned()
            }
        };
        args.push(Arg { key, value });

        while chars.next_if(|ch| ch.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(other) => return Err(format!("unexpected '{other}' after a parameter")),
        }
    }
    Ok(args)
}

fn read_literal(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    chars.next();
    let mut value = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string literal".to_owned()),
            Some('\'') if chars.next_if_eq(&'\'').is_some() => value.push('\''),
            Some('\'') => return Ok(value),
            Some(ch) => value.push(ch),
        }
    }
}

fn read_token(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut token = String::new();
    while let Some(ch) = chars.next_if(|ch| !matches!(ch, '=' | ',' | '\'' | '(' | ')')) {
        token.push(ch);
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &str) -> Endpoint {
        parse_path(path).expect(path).endpoint
    }

    #[test]
    fn every_addressing_form_names_the_item() {
        let cases = [
            (
                "/v1.0/me/drive/items/ID1/workbook/createSession",
                ItemRef::Id("ID1".into()),
            ),
            (
                "/v1.0/drives/b!x/items/ID2/workbook/closeSession",
                ItemRef::Id("ID2".into()),
            ),
            (
                "/beta/sites/a,b,c/drive/items/ID3/workbook/worksheets",
                ItemRef::Id("ID3".into()),
            ),
            (
                "/v1.0/users/a@b.c/drive/items/ID4/workbook/worksheets",
                ItemRef::Id("ID4".into()),
            ),
            (
                "/v1.0/me/drive/root:/Reports/Q1%202026%20%23%25%27%C3%A9.xlsx:/workbook/createSession",
                ItemRef::Path("Reports/Q1 2026 #%'é.xlsx".into()),
            ),
        ];

        for (path, item) in cases {
            let parsed = parse_path(path).expect(path);

            assert_eq!(parsed.item, item, "item of {path}");
        }
    }

    #[test]
    fn workbook_prefix_keeps_raw_encoding() {
        let path = "/v1.0/me/drive/root:/A%20B.xlsx:/workbook/createSession";

        let parsed = parse_path(path).expect(path);

        assert_eq!(
            parsed.workbook_prefix, "/v1.0/me/drive/root:/A%20B.xlsx:/workbook",
            "prefix"
        );
    }

    #[test]
    fn worksheet_and_range_forms_are_parsed() {
        let base = "/v1.0/me/drive/items/X/workbook";
        let range = Endpoint::Range {
            sheet: SheetRef("It's 1".into()),
            address: "A1:B2".into(),
        };

        assert_eq!(
            endpoint(&format!("{base}/microsoft.graph.createSession")),
            Endpoint::CreateSession,
            "prefixed action"
        );
        assert_eq!(
            endpoint(&format!(
                "{base}/worksheets('It''s%201')/range(address='A1:B2')"
            )),
            range,
            "quoted sheet and address"
        );
        assert_eq!(
            endpoint(&format!(
                "{base}/worksheets/Sheet1/usedRange(valuesOnly=true)"
            )),
            Endpoint::UsedRange {
                sheet: SheetRef("Sheet1".into()),
                values_only: true
            },
            "sheet by id and usedRange parameters"
        );
        assert_eq!(
            endpoint(&format!("{base}/operations/op1")),
            Endpoint::Operation("op1".into()),
            "operation"
        );
        assert_eq!(
            endpoint(&format!("{base}/sessionInfoResource(key='k%3D1')")),
            Endpoint::SessionInfo("k=1".into()),
            "session info"
        );
    }

    #[test]
    fn nonsense_is_rejected_without_panicking() {
        let cases = [
            "",
            "/",
            "/v2/me/drive/items/X/workbook/createSession",
            "/v1.0/me/drive/items//workbook/createSession",
            "/v1.0/me/drive/root:/:/workbook/createSession",
            "/v1.0/me/drive/root:/a.xlsx/workbook/createSession",
            "/v1.0/me/drive/items/X/workbookx",
            "/v1.0/me/drive/items/X/workbook/worksheets('a",
            "/v1.0/me/drive/items/X/workbook/worksheets('a')/range(address=",
            "/v1.0/me/drive/items/X/workbook/worksheets('a')/range(address='A1'",
            "/v1.0/me/drive/items/X/workbook/worksheets(()",
            "/v1.0/me/drive/items/X/workbook/worksheets('a')/range(x)",
            "/v1.0/me/drive/items/%FF/workbook/createSession",
            "/v1.0/me/drive/items/X/workbook/createSession(1)",
            "/v1.0/drives/x",
            "/v1.0/me/drive/items/X/workbook/operations",
            "/v1.0/me/drive/items/X/workbook/worksheets/a/b/c",
            "/v1.0/me/drive/items/X/workbook/%E2%28",
        ];

        for path in cases {
            assert!(parse_path(path).is_err(), "{path:?} should be rejected");
        }
    }
}
