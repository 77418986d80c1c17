//! Text from images (names, paths, labels, error details quoting them) made safe to print
//! on a terminal. An image is hostile: a WorkingDir or file name holding escape sequences
//! could retitle the operator's terminal, clear it, move the cursor over an earlier line
//! or, on some terminals, answer back into its input. Every message Vessel prints goes
//! through [`escape_controls`] on its way out.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1; tab aside) and every Unicode
/// bidirectional override or isolate written as a Rust escape (`\u{1b}`, `\n`, `\r`), so
/// what reaches the terminal is inert text that still shows what was there.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let escaped: String = c.escape_debug().collect();
            if escaped.starts_with('\\') {
                out.push_str(&escaped);
            } else {
                // Characters escape_debug would leave as they are.
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_controls("image example.com/app: entry \"a b\"\tok"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            escape_controls("/\u{1b}]0;owned\u{7}\u{1b}[2J\r\nx\u{7f}\u{9b}"),
            "/\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\r\\nx\\u{7f}\\u{9b}"
        );
    }

    #[test]
    fn bidi_overrides_are_escaped() {
        assert_eq!(
            escape_controls("a\u{202e}b\u{2066}c"),
            "a\\u{202e}b\\u{2066}c"
        );
        // Other non-ASCII text is left alone.
        assert_eq!(escape_controls("café ☕"), "café ☕");
    }

    #[test]
    fn no_escape_survives() {
        for c in (0u32..0x110000).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = escape_controls(&s);
            assert!(
                !e.chars().any(needs_escape),
                "{c:?} became {e:?}, which still holds a control"
            );
        }
    }
}
