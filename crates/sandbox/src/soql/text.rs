//! Case-insensitive text comparison as SOQL does it. Literals are folded once at bind
//! time; row values are folded on the fly, character by character, without allocating.
//! Every function here folds with [`fold`], so equality, ordering, IN and LIKE agree.

use std::cmp::Ordering;

/// Lower-cases one character. Characters whose lower case is several characters
/// (rare) stay as they are, so folding never changes a string's character count.
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// `s` folded with [`fold`].
pub(crate) fn fold_str(s: &str) -> String {
    if s.is_ascii() { s.to_ascii_lowercase() } else { s.chars().map(fold).collect() }
}

/// Whether `s` equals the already folded `folded`, ignoring case.
pub(crate) fn eq_ci(s: &str, folded: &str) -> bool {
    if s.is_ascii() && folded.is_ascii() {
        s.eq_ignore_ascii_case(folded)
    } else {
        s.chars().map(fold).eq(folded.chars())
    }
}

/// Orders `s` against the already folded `folded`, ignoring case.
pub(crate) fn cmp_ci(s: &str, folded: &str) -> Ordering {
    if s.is_ascii() && folded.is_ascii() {
        s.bytes().map(|b| b.to_ascii_lowercase()).cmp(folded.bytes())
    } else {
        s.chars().map(fold).cmp(folded.chars())
    }
}

/// Orders two row values, ignoring case.
pub(crate) fn cmp_fold(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.bytes().map(|x| x.to_ascii_lowercase()).cmp(b.bytes().map(|x| x.to_ascii_lowercase()))
    } else {
        a.chars().map(fold).cmp(b.chars().map(fold))
    }
}

/// Calls `f` with `s` folded. Short ASCII values (Ids, codes, names) are folded into
/// a stack buffer; only long or non-ASCII ones allocate.
pub(crate) fn with_folded<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    const CAP: usize = 64;
    if s.len() <= CAP && s.is_ascii() {
        let mut buf = [0u8; CAP];
        let out = &mut buf[..s.len()];
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b.to_ascii_lowercase();
        }
        // ASCII in, ASCII out: always valid UTF-8.
        if let Ok(folded) = std::str::from_utf8(out) {
            return f(folded);
        }
    }
    f(&fold_str(s))
}
