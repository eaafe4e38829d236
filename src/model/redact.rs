//! Text as it may be shown, logged or stored: credentials in URLs (`user:pass@`,
//! `?apikey=...`) replaced by `REDACTED`.
//!
//! It lives in the model because every layer needs it: the feed configuration shows its
//! URLs, the poller logs and stores error messages, and the store redacts feed states it
//! loads (a state saved before redaction existed may hold a feed URL with its credentials).

/// What replaces a secret in a shown URL.
pub const REDACTED: &str = "REDACTED";

/// Whether a query parameter of this name carries a secret (`apikey`, `api_key`, `token`,
/// `access_token`, `key`, `secret`, `password`, `sig`, `auth`, `session`, ...).
fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const PARTS: &[&str] = &[
        "key", "token", "secret", "pass", "pwd", "auth", "sig", "cred", "session", "jwt", "bearer",
        "cookie",
    ];
    PARTS.iter().any(|p| n.contains(p))
}

/// A URL as it may be shown: user info and the values of secret query parameters replaced
/// by `REDACTED`. Text that does not parse as a URL is redacted by hand (user info up to the
/// `@` of the authority, secret parameters after `?`), so nothing slips through on a typo.
pub fn redact_url(raw: &str) -> String {
    if let Ok(mut u) = url::Url::parse(raw)
        && u.has_host()
    {
        if !u.username().is_empty() || u.password().is_some() {
            let _ = u.set_username(REDACTED);
            let _ = u.set_password(None);
        }
        if u.query().is_some() {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_secret_param(&k) {
                        REDACTED.to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        if u.fragment().is_some_and(|f| f.contains('=')) {
            u.set_fragment(Some(REDACTED));
        }
        return u.to_string();
    }
    redact_by_hand(raw)
}

fn redact_by_hand(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("{REDACTED}@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, frag) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}={REDACTED}"),
                    _ => pair.to_string(),
                })
                .collect();
            let frag = frag.map_or(String::new(), |_| format!("#{REDACTED}"));
            format!("{path}?{}{frag}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

/// `text` with every `http://` / `https://` URL in it redacted ([`redact_url`]): for error
/// messages that embed a URL (reqwest's do), before they are shown, logged or stored.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let start = ["http://", "https://"]
            .iter()
            .filter_map(|s| find_ascii_ci(rest, s))
            .min();
        let Some(start) = start else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let url_len = rest[start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`')
            })
            .unwrap_or(rest.len() - start);
        out.push_str(&redact_url(&rest[start..start + url_len]));
        rest = &rest[start + url_len..];
    }
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_user_info_and_secret_parameters() {
        let cases = [
            (
                "https://alice:s3cret@feeds.example.org/x.json?apikey=K1&page=2",
                "https://REDACTED@feeds.example.org/x.json?apikey=REDACTED&page=2",
            ),
            (
                "https://feeds.example.org/x?token=T&key=K&secret=S&password=P&api_key=A&access_token=B&Signature=G&format=json",
                "https://feeds.example.org/x?token=REDACTED&key=REDACTED&secret=REDACTED&password=REDACTED&api_key=REDACTED&access_token=REDACTED&Signature=REDACTED&format=json",
            ),
            (
                "https://onlyuser@feeds.example.org/",
                "https://REDACTED@feeds.example.org/",
            ),
            (
                "https://feeds.example.org/plain",
                "https://feeds.example.org/plain",
            ),
            // Not a valid URL (bad port): redacted by hand all the same.
            (
                "https://bob:pw@feeds.example.org:99999/x?apikey=K#t",
                "https://REDACTED@feeds.example.org:99999/x?apikey=REDACTED#REDACTED",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw}");
            for secret in ["s3cret", "K1", "=T&", "pw@"] {
                assert!(!redact_url(raw).contains(secret), "{raw}");
            }
        }
        let text = "error sending request for url (https://u:p@h.example/x?apikey=K1): boom; then HTTP://h.example/?Token=T2 failed";
        let r = redact_text(text);
        assert_eq!(
            r,
            "error sending request for url (https://REDACTED@h.example/x?apikey=REDACTED): boom; then http://h.example/?Token=REDACTED failed"
        );
    }
}
