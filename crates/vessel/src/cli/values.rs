//! Flag values written the way rkt (Go's flag and time packages) reads them.

use std::time::Duration;

/// `status --wait` and `--wait-ready`: None means do not wait; `Some(None)` wait for ever;
/// `Some(Some(d))` wait at most `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Option<Option<Duration>>);

/// rkt's `parseDuration`: a boolean (Go's strconv.ParseBool spellings) or a duration;
/// a negative duration waits for ever and a zero one not at all.
pub fn parse_wait(s: &str) -> Result<Wait, String> {
    match s {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => return Ok(Wait(Some(None))),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => return Ok(Wait(None)),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix('-') {
        parse_duration(rest)?;
        return Ok(Wait(Some(None)));
    }
    let d = parse_duration(s)?;
    Ok(Wait(if d.is_zero() { None } else { Some(Some(d)) }))
}

/// A duration as Go writes them (`1m30s`, `500ms`, `2h`) or as humantime does (`1m 30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim().trim_start_matches('+');
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{s:?} is not a duration ({e}); write it as 30s, 1m30s, 500ms or 2h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_values_as_rkt_reads_them() {
        assert_eq!(parse_wait("true").unwrap(), Wait(Some(None)));
        assert_eq!(parse_wait("false").unwrap(), Wait(None));
        assert_eq!(parse_wait("0").unwrap(), Wait(None));
        assert_eq!(parse_wait("0s").unwrap(), Wait(None));
        assert_eq!(parse_wait("-1s").unwrap(), Wait(Some(None)));
        assert_eq!(
            parse_wait("1m30s").unwrap(),
            Wait(Some(Some(Duration::from_secs(90))))
        );
        assert_eq!(
            parse_wait("500ms").unwrap(),
            Wait(Some(Some(Duration::from_millis(500))))
        );
        assert!(parse_wait("soon").unwrap_err().contains("soon"));
    }
}
