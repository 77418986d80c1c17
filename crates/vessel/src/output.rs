//! Tables and JSON for listing commands, and the one way messages reach the terminal.

use crate::cli::Format;

/// Prints `vessel: <message>` on stderr with control characters escaped: messages quote
/// image content (paths, names, labels, key user IDs), which must never drive the
/// operator's terminal (`schema::text`).
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("vessel: {}", schema::text::escape_controls(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// A line of text for stdout, with control characters escaped.
pub fn line(s: &str) -> std::borrow::Cow<'_, str> {
    schema::text::escape_controls(s)
}

/// A table printed with columns padded to their widest cell, as rkt prints them.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Cells may quote image content: control characters are escaped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| schema::text::escape_controls(&c).into_owned())
                .collect(),
        );
    }

    pub fn render(&self, legend: bool) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: Vec<String>| {
            let last = cells.len() - 1;
            for (i, c) in cells.iter().enumerate() {
                out.push_str(c);
                if i < last {
                    out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
                }
            }
            out.push('\n');
        };
        if legend {
            line(self.header.iter().map(|h| h.to_string()).collect());
        }
        for r in &self.rows {
            line(r.clone());
        }
        out
    }
}

/// JSON on one line, or indented with tabs as rkt's `json-pretty` is.
pub fn json<T: serde::Serialize>(value: &T, format: Format) -> String {
    match format {
        Format::JsonPretty => pretty(value),
        _ => serde_json::to_string(value).expect("serialisable") + "\n",
    }
}

/// Indented with tabs, as rkt (Go's json.MarshalIndent with "\t") writes.
pub fn pretty<T: serde::Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).expect("serialisable");
    String::from_utf8(out).expect("JSON is UTF-8") + "\n"
}

/// "3 minutes ago", as rkt lists times; exact RFC 3339 with --full.
pub fn when(t: Option<chrono::DateTime<chrono::Utc>>, full: bool) -> String {
    let Some(t) = t else { return "-".into() };
    if full {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let secs = (chrono::Utc::now() - t).num_seconds().max(0);
    let (n, unit) = match secs {
        0..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86399 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Bytes as KiB/MiB/GiB with one decimal.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["abc".into(), "x".into()]);
        assert_eq!(t.render(true), "ID   NAME\nabc  x\n");
        assert_eq!(t.render(false), "abc  x\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(12), "12 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
