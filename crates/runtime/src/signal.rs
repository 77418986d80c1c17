//! Signals as runc's `kill` takes them: a number, a name (`KILL`, `SIGKILL`, any case),
//! or a real-time signal (`RTMIN+3`).

use std::str::FromStr;

use crate::error::RuntimeError;

/// The signal number for `text`.
pub fn parse(text: &str) -> Result<i32, RuntimeError> {
    let bad = || RuntimeError::Usage(format!("invalid signal {text:?}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = match rest.strip_prefix('+') {
            Some(n) => n.parse().map_err(|_| bad())?,
            None if rest.is_empty() => 0,
            None => return Err(bad()),
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = match rest.strip_prefix('-') {
            Some(n) => n.parse().map_err(|_| bad())?,
            None if rest.is_empty() => 0,
            None => return Err(bad()),
        };
        let n = libc::SIGRTMAX() - off;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("SIGRTMAX").unwrap(), libc::SIGRTMAX());
        for bad in ["0", "65", "-1", "NOPE", "SIG", "RTMIN+99", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("NOPE").unwrap_err().to_string(),
            "invalid signal \"NOPE\""
        );
    }
}
