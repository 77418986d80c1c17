//! The OCI `User` field: `uid`, `uid:gid`, `name`, `name:group`, or empty.

use crate::error::SchemaError;

/// The appc user and group for an OCI `User`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user: String,
    pub group: String,
    /// No group was given. Docker then uses the user's primary group from
    /// the image's /etc/passwd, which only the executor can read: it is
    /// told so by the `vessel/oci/group-from-passwd` annotation, and `group`
    /// holds the fallback, "0", that Docker uses when the user has no entry.
    pub group_from_passwd: bool,
}

const ROOT: &str = "0";

/// Splits an OCI `User`; empty parts default to root.
pub fn parse(value: &str) -> Result<User, SchemaError> {
    if value.contains('\0') {
        return Err(SchemaError::invalid_because(
            "user",
            value,
            "contains a NUL byte",
        ));
    }
    let (user, group) = match value.split_once(':') {
        Some((_, g)) if g.contains(':') => {
            return Err(SchemaError::invalid_because(
                "user",
                value,
                "expected user[:group]",
            ));
        }
        Some((u, g)) => (u, g),
        None => (value, ""),
    };
    let user = if user.is_empty() { ROOT } else { user };
    crate::ids::check_user_or_group("user", user, None)?;
    crate::ids::check_user_or_group("group", group, None)?;
    Ok(User {
        user: user.to_owned(),
        group: if group.is_empty() { ROOT } else { group }.to_owned(),
        // An empty User means root:root, whose group is known.
        group_from_passwd: group.is_empty() && !value.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String, bool) {
        let u = parse(s).unwrap();
        (u.user, u.group, u.group_from_passwd)
    }

    #[test]
    fn forms() {
        let t = |u: &str, g: &str, f| (u.to_string(), g.to_string(), f);
        assert_eq!(p(""), t("0", "0", false));
        assert_eq!(p("1000"), t("1000", "0", true));
        assert_eq!(p("1000:100"), t("1000", "100", false));
        assert_eq!(p("nginx"), t("nginx", "0", true));
        assert_eq!(p("nginx:www-data"), t("nginx", "www-data", false));
        assert_eq!(p("nginx:"), t("nginx", "0", true));
        assert_eq!(p(":100"), t("0", "100", false));
        assert!(parse("a:b:c").is_err());
        // (uid_t)-1 would leave the app root.
        assert!(parse("4294967295").is_err());
        assert!(parse("4294967295:4294967295").is_err());
        assert!(parse("1000:4294967295").is_err());
        assert!(parse("-1:-1").is_err());
        assert!(parse("a\0").is_err());
    }
}
