//! [`DatabaseUrl`]: a connection string that never prints its password.

use std::fmt;

/// A database connection string (`postgres://user:password@host:port/db?…`, libpq's URI form).
///
/// `Debug` and `Display` show it with the password replaced by `***` (both the userinfo
/// password and a `password=` query parameter), so that it can appear in logs, errors and
/// `{:?}` of a configuration; [`expose`](Self::expose) gives the real string to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a connection string (not validated here: the store's `connect` does).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The connection string, password included. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the string starts with `postgres://` or `postgresql://`.
    pub fn is_postgres(&self) -> bool {
        is_postgres_url(&self.0)
    }

    /// The string with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
            return "***".to_owned();
        };
        let rest = &s[scheme_end..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***{host}"),
                    None => authority.to_owned(),
                }
            }
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_owned(),
        };
        format!("{}{authority}{tail}", &s[..scheme_end])
    }

    /// `host:port` of the URL, for error messages (`localhost:5432` when the URL names none;
    /// hosts given only in query parameters are not shown).
    pub fn host_port(&self) -> String {
        let s = &self.0;
        let rest = s.find("://").map_or(s.as_str(), |i| &s[i + 3..]);
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host = authority
            .rfind('@')
            .map_or(authority, |at| &authority[at + 1..]);
        match host {
            "" => "localhost:5432".to_owned(),
            h if h.ends_with(']') || !h.contains(':') => format!("{h}:5432"),
            h => h.to_owned(),
        }
    }
}

/// Whether `s` starts with `postgres://` or `postgresql://` (case-insensitive scheme).
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "postgres://u:s3cret@db:5433/app",
                "postgres://u:***@db:5433/app",
                "db:5433",
            ),
            (
                "postgresql://u:p%40ss@10.0.0.1/app?sslmode=require&password=x",
                "postgresql://u:***@10.0.0.1/app?sslmode=require&password=***",
                "10.0.0.1:5432",
            ),
            ("postgres://u@h/app", "postgres://u@h/app", "h:5432"),
            ("postgres:///app", "postgres:///app", "localhost:5432"),
            (
                "postgres://[::1]:6000/x",
                "postgres://[::1]:6000/x",
                "[::1]:6000",
            ),
            ("postgres://[::1]/x", "postgres://[::1]/x", "[::1]:5432"),
        ];
        for (url, redacted, host) in cases {
            let u = DatabaseUrl::new(url);
            assert_eq!(u.redacted(), redacted);
            assert_eq!(u.to_string(), redacted);
            assert!(!format!("{u:?}").contains("s3cret"));
            assert_eq!(u.host_port(), host, "{url}");
            assert!(u.is_postgres());
        }
        assert!(!DatabaseUrl::new("sqlite:x.db").is_postgres());
        assert_eq!(DatabaseUrl::new("garbage:pw").redacted(), "***");
    }
}
