//! Redaction of credentials written into URLs (`https://user:password@host`), anywhere in
//! a text: the last line of defence that keeps such a password out of every message and
//! document sluice prints, whichever code path produced the text.
//!
//! [`userinfo`] replaces the whole user-info of every URL by `***`
//! (`postgres://sluice:pw@db:5432/x` → `postgres://***@db:5432/x`, and
//! `https://user@host` → `https://***@host`). A URL is found by its `://`. Its
//! authority runs to the first `/` or the end of the URL (whitespace, a quote, `<`, `>`
//! or `\`), and its user-info is what comes before the authority's last `@`. An `@` in a
//! path (`https://host/a@b`) or in an e-mail address outside a URL is left alone.
//!
//! Passwords are often written without the percent-encoding URLs require, so the scan
//! errs on the side of hiding: `?` and `#` do not end the authority (`u:p#ss@host` is
//! one user-info), and when what precedes the first `/` is not a plausible `host[:port]`
//! (`postgres://u:pa/ss@host`), the user-info runs to the URL's last `@`. The price is
//! that a URL whose query holds an `@` without a path before it (`https://host?to=a@b`)
//! loses its host to `***` too.

use std::borrow::Cow;
use std::ops::Range;

/// What user-info is replaced by.
pub const MASK: &str = "***";

/// `text` with the user-info of every URL in it replaced by [`MASK`]; borrowed when there
/// is none. Idempotent.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    let spans = spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in spans {
        out.push_str(&text[last..span.start]);
        out.push_str(MASK);
        last = span.end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Whether some URL in `text` holds user-info (other than an already redacted `***`).
pub fn has_userinfo(text: &str) -> bool {
    spans(text).iter().any(|s| &text[s.clone()] != MASK)
}

/// The byte ranges of user-info in `text`, in order, not overlapping.
fn spans(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("://") {
        let start = from + i + 3;
        // The URL ends at whitespace or a delimiter; the authority at the first `/` too.
        let end = text[start..].find(ends_url).map_or(text.len(), |j| start + j);
        let url = &text[start..end];
        let authority = &url[..url.find('/').unwrap_or(url.len())];
        let info_end = match authority.rfind('@') {
            Some(at) if plausible_host(&authority[at + 1..]) => Some(at),
            // Not `host[:port]` before the first `/`: a password with a `/` in it, most
            // likely; hide up to the URL's last `@`.
            _ if !plausible_host(authority) => url.rfind('@'),
            Some(at) => Some(at),
            None => None,
        };
        if let Some(at) = info_end {
            out.push(start..start + at);
        }
        from = end.max(start);
    }
    out
}

fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '\\')
}

/// Whether `text` can be an authority's `host[:port]`: a name, an IPv4 address or a
/// bracketed IPv6 address, then digits after a `:`.
fn plausible_host(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                if !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
                    return false;
                }
                match after.strip_prefix(':') {
                    Some(port) => ("", port),
                    None if after.is_empty() => ("", ""),
                    None => return false,
                }
            }
            None => return false,
        },
        None => text.rsplit_once(':').unwrap_or((text, "")),
    };
    host.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '%' | '~'))
        && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_table() {
        let rows = [
            // (text, redacted)
            ("https://user:pass@login.salesforce.com", "https://***@login.salesforce.com"),
            ("http://user@127.0.0.1:8080/services", "http://***@127.0.0.1:8080/services"),
            (
                "postgres://sluice:hunter2@db.example.com:5432/warehouse?sslmode=require",
                "postgres://***@db.example.com:5432/warehouse?sslmode=require",
            ),
            ("s3://AKIA:secret@bucket/prefix", "s3://***@bucket/prefix"),
            (
                "login to https://a:b@x.my.salesforce.com failed; destination postgres://u:p@db/w unreachable",
                "login to https://***@x.my.salesforce.com failed; destination postgres://***@db/w unreachable",
            ),
            // A username that is an e-mail address: everything up to the last `@`.
            ("https://me@corp.com:pw@my.salesforce.com/x", "https://***@my.salesforce.com/x"),
            // Unencoded `#`, `?` and `/` in a password.
            ("postgres://u:p#ss@h/db", "postgres://***@h/db"),
            ("postgres://u:p?ss@h:5432/db", "postgres://***@h:5432/db"),
            ("postgres://u:pa/ss@h/db", "postgres://***@h/db"),
            // Quoted, as `{:?}` and JSON print it.
            ("\"https://u:p@h\" is not valid", "\"https://***@h\" is not valid"),
            ("{\"error\":\"request to https://u:p@h/x failed\"}", "{\"error\":\"request to https://***@h/x failed\"}"),
            ("http://u:p@[::1]:8080/", "http://***@[::1]:8080/"),
            ("user:pw at ://u:p@h", "user:pw at ://***@h"),
            // Nothing to hide.
            ("no URL here, mail bob@example.com", "no URL here, mail bob@example.com"),
            ("https://host/path@v2/x and https://host:443/a/@b", "https://host/path@v2/x and https://host:443/a/@b"),
            (
                "https://login.salesforce.com, then ops@example.com",
                "https://login.salesforce.com, then ops@example.com",
            ),
            ("http://[::1]:8080/x@y", "http://[::1]:8080/x@y"),
            ("https://***@host", "https://***@host"),
            ("", ""),
            ("://", "://"),
            ("https://", "https://"),
            ("ünïcödé https://ü:ß@hôst/ü@x", "ünïcödé https://***@hôst/ü@x"),
        ];
        for (text, want) in rows {
            let got = userinfo(text);
            assert_eq!(got, want, "{text}");
            assert_eq!(userinfo(&got), got, "idempotent: {text}");
            assert_eq!(has_userinfo(text), text != want, "{text}");
        }
    }

    #[test]
    fn text_without_urls_is_borrowed() {
        assert!(matches!(userinfo("a@b c: d"), Cow::Borrowed(_)));
        assert!(matches!(userinfo("see https://example.com/a@b"), Cow::Borrowed(_)));
    }

    #[test]
    fn no_password_survives_anywhere_in_generated_texts() {
        // Every position and neighbour a URL can have in a message.
        let around = ["", " ", "(", "\"", "x=", "\n", "error: "];
        let after = ["", " ", ")", "\"", ".", "/path@x", "?q=a@b", ",", "\n"];
        for a in around {
            for b in after {
                for url in ["https://user:S3CRET@host", "postgres://user:S3CRET@h:5432", "http://S3CRET@h"] {
                    let text = format!("{a}{url}{b} and {a}{url}{b}");
                    assert!(!userinfo(&text).contains("S3CRET"), "{text:?} -> {:?}", userinfo(&text));
                }
            }
        }
    }
}
