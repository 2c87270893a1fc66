//! How the CLI prints: human text by default (tables for lists, dates and ages instead of store
//! versions, short content ids), JSON with `--json` for scripts. Text that an actor or another
//! client chose (log lines, reasons, keys) is printed with control characters escaped, so it
//! cannot move the cursor, recolour or retitle the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{ContentArrangement, Table, presets};
use latchkey_wire::admin::ClockInfo;
use serde::Serialize;

/// Characters of a content id shown in tables (commands accept any unique prefix).
pub(crate) const SHORT_ID: usize = 12;

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `text` with control characters (and other invisible format characters) escaped as `\u{..}`.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || ('\u{200b}'..='\u{200f}').contains(&c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The first [`SHORT_ID`] characters of a content id.
pub(crate) fn short(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// `n` bytes, e.g. `43.1 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in the largest unit that keeps it readable: `0.4 s`, `12 s`, `3 min`, `5 h`, `2 d`.
pub(crate) fn span(micros: u64) -> String {
    let secs = micros as f64 / 1e6;
    match micros {
        0..1_000 => format!("{micros} µs"),
        1_000..10_000 => format!("{:.1} ms", micros as f64 / 1e3),
        10_000..1_000_000 => format!("{:.0} ms", micros as f64 / 1e3),
        1_000_000..10_000_000 => format!("{secs:.1} s"),
        10_000_000..120_000_000 => format!("{secs:.0} s"),
        120_000_000..7_200_000_000 => format!("{:.0} min", secs / 60.0),
        7_200_000_000..172_800_000_000 => format!("{:.0} h", secs / 3600.0),
        _ => format!("{:.0} d", secs / 86_400.0),
    }
}

/// Unix microseconds as an RFC 3339 date to the second (UTC).
pub(crate) fn date(unix_micros: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(unix_micros)).to_string()
}

/// Store versions shown as dates and ages, against the control plane's clock.
pub(crate) struct Times(pub(crate) ClockInfo);

impl Times {
    /// The date of version `v`.
    pub(crate) fn date(&self, v: u64) -> String {
        date(self.0.unix_micros_at(v))
    }

    /// How long ago version `v` was: `3 s ago`.
    pub(crate) fn ago(&self, v: u64) -> String {
        format!("{} ago", span(self.0.age_micros(v)))
    }
}

/// A table with a header row, no borders, never wrapped (so that `grep` and `awk` see one row
/// per line).
pub(crate) fn table<const N: usize>(header: [&str; N], rows: Vec<[String; N]>) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    for row in rows {
        table.add_row(row);
    }
    // Cells start with one space of padding: trim it off each line.
    table
        .lines()
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `yes` / `no`.
pub(crate) fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// An optional value, or `-`.
pub(crate) fn or_dash(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| clean(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert!(matches!(clean("plain é 日本"), Cow::Borrowed(_)));
        assert_eq!(
            clean("a\x1b]0;pwned\x07b\nc"),
            "a\\u{1b}]0;pwned\\u{7}b\\u{a}c"
        );
        assert_eq!(clean("zero\u{200b}width"), "zero\\u{200b}width");
    }

    #[test]
    fn sizes_and_spans_read_like_a_person_would_say_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(44_134), "43.1 KiB");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
        assert_eq!(span(450), "450 µs");
        assert_eq!(span(1_250), "1.2 ms");
        assert_eq!(span(400_000), "400 ms");
        assert_eq!(span(1_400_000), "1.4 s");
        assert_eq!(span(42_000_000), "42 s");
        assert_eq!(span(600_000_000), "10 min");
        assert_eq!(span(3 * 86_400_000_000), "3 d");
    }

    #[test]
    fn versions_become_dates_and_ages() {
        let times = Times(ClockInfo {
            version: 10_000_000,
            unix_micros: 1_764_600_000_000_000,
        });
        assert_eq!(times.date(10_000_000), "2025-12-01T14:40:00Z");
        assert_eq!(times.ago(7_000_000), "3.0 s ago");
        assert_eq!(short(&"ab".repeat(32)), "abababababab");
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn tables_have_one_row_per_line_and_aligned_columns() {
        let t = table(
            ["ID", "REGION"],
            vec![
                ["a".into(), "eu-west-1".into()],
                ["longer-id".into(), "us".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("ID "), "{t}");
        let column = lines[0].find("REGION").unwrap();
        assert_eq!(lines[1].find("eu-west-1"), Some(column), "{t}");
        assert_eq!(lines[2].find("us"), Some(column), "{t}");
    }
}
