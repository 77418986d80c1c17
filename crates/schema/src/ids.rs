//! User and group ids as images and flags give them. `(uid_t)-1`, 4294967295, is not an
//! id: setresuid, setresgid and chown read it as "leave this one unchanged", so an app
//! asked to run as it would keep the root identity it started with. It is refused
//! wherever an id is read (flags, appc manifests, OCI configs, the image's /etc/passwd and
//! /etc/group, and the executor before it switches), as are ids a pod's user namespace
//! does not map.

use crate::error::SchemaError;

/// `(uid_t)-1` and `(gid_t)-1`: the "no change" value of the id system calls.
pub const NO_ID: u32 = u32::MAX;

/// Checks a numeric id: anything but [`NO_ID`], and below `limit` when one is given (the
/// size of a user namespace's mapping, whose ids run from 0).
pub fn check_id(what: &'static str, id: u32, limit: Option<u32>) -> Result<(), SchemaError> {
    if id == NO_ID {
        return Err(SchemaError::invalid_because(
            what,
            id.to_string(),
            "4294967295 is (uid_t)-1, which the kernel reads as \"unchanged\", not an id",
        ));
    }
    if let Some(limit) = limit {
        if id >= limit {
            return Err(SchemaError::invalid_because(
                what,
                id.to_string(),
                format!("the pod's user namespace maps ids 0 to {}", limit - 1),
            ));
        }
    }
    Ok(())
}

/// Checks a user or group as written (a name, or a number): a number must be an id that
/// [`check_id`] accepts. Something that looks like a number but is not one (negative, or
/// beyond 32 bits) is refused rather than looked up as a name.
pub fn check_user_or_group(
    what: &'static str,
    value: &str,
    limit: Option<u32>,
) -> Result<(), SchemaError> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(()); // a name, resolved in the image
    }
    match value.parse::<u32>() {
        Ok(id) if !value.starts_with('+') => check_id(what, id, limit),
        _ if value == "-1" => check_id(what, NO_ID, limit),
        _ => Err(SchemaError::invalid_because(
            what,
            value,
            "not an id (0 to 4294967294)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_is_refused_in_every_spelling() {
        assert!(check_id("user", NO_ID, None).is_err());
        for v in [
            "4294967295",
            "-1",
            "4294967296",
            "+0",
            "99999999999999999999",
        ] {
            let e = check_user_or_group("user", v, None).unwrap_err();
            assert!(e.to_string().contains(v), "{e}");
        }
    }

    #[test]
    fn ids_and_names_pass() {
        for v in [
            "0",
            "1000",
            "4294967294",
            "nobody",
            "www-data",
            "1000a",
            "-",
            "x-1",
        ] {
            check_user_or_group("user", v, None).unwrap();
        }
    }

    #[test]
    fn a_mapping_bounds_numbers() {
        check_user_or_group("group", "65535", Some(65536)).unwrap();
        let e = check_user_or_group("group", "65536", Some(65536)).unwrap_err();
        assert!(e.to_string().contains("maps ids 0 to 65535"), "{e}");
        // Names are resolved (and checked) inside the image.
        check_user_or_group("group", "staff", Some(65536)).unwrap();
    }
}
