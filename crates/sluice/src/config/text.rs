//! The text rules of configuration values, pure: `${VAR}` interpolation, durations
//! (`90s`, `1h`, `7d`), `where` filters and API names.

use std::time::Duration;

use crate::source::salesforce::soql::is_api_name;

/// The longest duration any key accepts (`slice`'s bound, 3650 days): [`parse_duration`]
/// refuses longer ones, whatever the key.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Replaces `${NAME}` with `env(NAME)`; `$${` is a literal `${`. Errors name the
/// variable, never a value.
pub fn interpolate(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    interpolate_as(value, env, true)
}

/// [`interpolate`]; with `quote_invalid` false, the text of a `${…}` that is not a
/// variable name is not quoted either (for secret keys, whose text it is part of).
pub(crate) fn interpolate_as(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    quote_invalid: bool,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or("unterminated `${` (write `$${` for a literal `${`)")?;
            let name = &tail[..end];
            if !is_env_name(name) {
                return Err(if quote_invalid {
                    format!("`${{{name}}}` is not a variable name (letters, digits, `_`)")
                } else {
                    "a `${…}` does not hold a variable name (letters, digits, `_`); write `$${` for a literal `${`"
                        .to_owned()
                });
            }
            out.push_str(&env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a duration like `30s`, `10m`, `2h`, `1d`, `1w` or `1h30m`. Whole seconds are
/// the finest unit because Salesforce timestamps have 1-second resolution. Anything
/// longer than [`MAX_DURATION`] is refused: no key means that much.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "expected a duration like \"30s\", \"10m\", \"2h\", \"1d\" or \"1h30m\" (units s, m, h, d, w)";
    let text = text.trim();
    if text.is_empty() {
        return Err(hint.to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(hint.to_owned()),
        };
        let too_long = || format!("longer than any setting allows ({})", format_duration(MAX_DURATION));
        // Too many digits for a u64 is a number, just too large.
        let n: u64 = match digits.parse() {
            Ok(n) => n,
            Err(_) if !digits.is_empty() => return Err(too_long()),
            Err(_) => return Err(hint.to_owned()),
        };
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(too_long)?;
        if total > MAX_DURATION.as_secs() {
            return Err(too_long());
        }
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(hint.to_owned());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the syntax [`parse_duration`] reads, in its largest whole unit among
/// `d`, `h`, `m` and `s` (`86400s` → `1d`, `90s` → `90s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = [(86_400, 'd'), (3_600, 'h'), (60, 'm')].into_iter().find(|(n, _)| secs > 0 && secs.is_multiple_of(*n));
    match unit {
        Some((n, u)) => format!("{}{u}", secs / n),
        None => format!("{secs}s"),
    }
}

/// Checks that a `where` condition keeps its parentheses and string literals balanced,
/// so that wrapping it in `( )` cannot let an `OR` widen the window.
pub fn check_where(filter: &str) -> Result<(), String> {
    let mut depth: i64 = 0;
    let mut in_string = false;
    let mut chars = filter.chars();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '\'') | (false, '\'') => in_string = !in_string,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth < 0 {
                    return Err("a `)` closes a parenthesis that was never opened".to_owned());
                }
            }
            _ => {}
        }
    }
    if in_string {
        Err("a string literal is not closed (quote with ', escape ' as \\')".to_owned())
    } else if depth != 0 {
        Err("a `(` is never closed".to_owned())
    } else {
        Ok(())
    }
}

/// Whether `name` can be a Salesforce object or field API name.
pub fn is_valid_api_name(name: &str) -> bool {
    is_api_name(name) && name.len() <= 255
}

/// Whether `url` is an `http://` or `https://` URL with a host and no whitespace.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}
