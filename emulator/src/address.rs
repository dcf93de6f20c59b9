//! A1-style cell and range addresses: `B7`, `A1:C3`, `$A$1`, `Sheet1!A1:B2`, `'My sheet'!C4`.

/// The highest column Excel allows (XFD).
pub(crate) const MAX_COLUMN: u32 = 16_384;
/// The highest row Excel allows.
pub(crate) const MAX_ROW: u32 = 1_048_576;

/// A rectangle of cells, 1-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellRange {
    pub(crate) first_row: u32,
    pub(crate) first_column: u32,
    pub(crate) last_row: u32,
    pub(crate) last_column: u32,
}

impl CellRange {
    pub(crate) fn single(row: u32, column: u32) -> Self {
        CellRange {
            first_row: row,
            first_column: column,
            last_row: row,
            last_column: column,
        }
    }

    pub(crate) fn row_count(&self) -> u32 {
        self.last_row - self.first_row + 1
    }

    pub(crate) fn column_count(&self) -> u32 {
        self.last_column - self.first_column + 1
    }

    pub(crate) fn cell_count(&self) -> u64 {
        u64::from(self.row_count()) * u64::from(self.column_count())
    }

    /// Formats the range without a sheet name: `B2` for one cell, `A1:C3` otherwise.
    pub(crate) fn to_a1(self) -> String {
        let first = format!("{}{}", column_letters(self.first_column), self.first_row);
        if self.first_row == self.last_row && self.first_column == self.last_column {
            return first;
        }
        format!(
            "{first}:{}{}",
            column_letters(self.last_column),
            self.last_row
        )
    }
}

/// An address from a request: an optional sheet name and the range it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) sheet: Option<String>,
    pub(crate) range: CellRange,
}

/// Parses an address such as `A1`, `$B$2:C3` or `'Sheet 1'!A1:B2`.
///
/// Returns a lower-case message naming the address when it is not valid.
pub(crate) fn parse_address(text: &str) -> Result<Address, String> {
    let invalid = || format!("invalid range address '{text}'");
    let (sheet, cells) = split_sheet(text).ok_or_else(invalid)?;
    let (first, last) = match cells.split_once(':') {
        Some((first, last)) => (first, last),
        None => (cells, cells),
    };
    let (first_row, first_column) = parse_cell(first).ok_or_else(invalid)?;
    let (last_row, last_column) = parse_cell(last).ok_or_else(invalid)?;

    let range = CellRange {
        first_row: first_row.min(last_row),
        first_column: first_column.min(last_column),
        last_row: first_row.max(last_row),
        last_column: first_column.max(last_column),
    };
    Ok(Address { sheet, range })
}

/// Splits `Sheet!A1` into the sheet name and the cell part. A quoted name may contain `!`
/// and doubles its own quotes (`'It''s'!A1`).
fn split_sheet(text: &str) -> Option<(Option<String>, &str)> {
    if let Some(quoted) = text.strip_prefix('\'') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((index, ch)) = chars.next() {
            if ch != '\'' {
                name.push(ch);
                continue;
            }
            if quoted[index + 1..].starts_with('\'') {
                name.push('\'');
                chars.next();
                continue;
            }
            let rest = quoted[index + 1..].strip_prefix('!')?;
            return Some((Some(name), rest));
        }
        return None;
    }

    match text.rsplit_once('!') {
        Some((name, rest)) if !name.is_empty() => Some((Some(name.to_owned()), rest)),
        Some(_) => None,
        None => Some((None, text)),
    }
}

/// Parses one cell reference such as `B7` or `$AA$10` into (row, column).
fn parse_cell(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text);
    let letters_end = text
        .find(|ch: char| !ch.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (letters, rest) = text.split_at(letters_end);
    let digits = rest.strip_prefix('$').unwrap_or(rest);

    if letters.is_empty() || letters.len() > 3 || digits.is_empty() {
        return None;
    }
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) || digits.len() > 7 {
        return None;
    }

    let column = letters.bytes().fold(0u32, |acc, byte| {
        acc * 26 + u32::from(byte.to_ascii_uppercase() - b'A' + 1)
    });
    let row: u32 = digits.parse().ok()?;
    let in_bounds = (1..=MAX_COLUMN).contains(&column) && (1..=MAX_ROW).contains(&row);
    in_bounds.then_some((row, column))
}

/// Returns the letters of a 1-based column number: 1 is A, 27 is AA, 16384 is XFD.
pub(crate) fn column_letters(mut column: u32) -> String {
    let mut letters = Vec::new();
    while column > 0 {
        let remainder = (column - 1) % 26;
        letters.push(b'A' + remainder as u8);
        column = (column - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Formats a sheet name for an address, quoting it when it contains anything but letters,
/// digits, underscores and dots.
pub(crate) fn quote_sheet_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '.');
    if plain {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_address_reads_single_cells_and_ranges() {
        let cases = [
            ("A1", None, CellRange::single(1, 1)),
            ("$B$2", None, CellRange::single(2, 2)),
            ("XFD1048576", None, CellRange::single(MAX_ROW, MAX_COLUMN)),
            (
                "C3:A1",
                None,
                CellRange {
                    first_row: 1,
                    first_column: 1,
                    last_row: 3,
                    last_column: 3,
                },
            ),
            ("Data!AA10", Some("Data"), CellRange::single(10, 27)),
            (
                "'It''s here'!B1",
                Some("It's here"),
                CellRange::single(1, 2),
            ),
        ];

        for (text, sheet, range) in cases {
            let address = parse_address(text).expect(text);

            assert_eq!(address.sheet.as_deref(), sheet, "sheet of {text}");
            assert_eq!(address.range, range, "range of {text}");
        }
    }

    #[test]
    fn parse_address_rejects_nonsense() {
        for text in [
            "",
            "A",
            "1",
            "A0",
            "XFE1",
            "A1048577",
            "A1:",
            "!A1",
            "'open!A1",
            "A1B",
            "ÄÖ1",
            "A99999999999",
        ] {
            assert!(parse_address(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn column_letters_round_trip() {
        for (column, letters) in [
            (1, "A"),
            (26, "Z"),
            (27, "AA"),
            (702, "ZZ"),
            (16_384, "XFD"),
        ] {
            assert_eq!(column_letters(column), letters, "column {column}");
        }
    }
}
