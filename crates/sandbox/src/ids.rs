//! Salesforce record Ids: 15-character case-sensitive bodies with the 3-character
//! checksum suffix that makes them 18 characters and case-insensitive-safe.
//!
//! Layout of the body: key prefix (3) + pod (2) + reserved `0` (1) + base-62 record
//! number (9). The sandbox numbers records per object, so an Id is a pure function of
//! (prefix, number): the generator can point a Contact at Account number 17 without
//! looking anything up, and a lookup by Id decodes the number instead of hashing text.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The pod characters every sandbox Id carries.
pub const POD: &str = "Dn";

/// The 3-character checksum suffix for a 15-character Id body.
pub fn checksum(id15: &[u8; 15]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (chunk, slot) in out.iter_mut().enumerate() {
        let mut bits = 0usize;
        for j in 0..5 {
            if id15[chunk * 5 + j].is_ascii_uppercase() {
                bits |= 1 << j;
            }
        }
        *slot = SUFFIX[bits];
    }
    out
}

/// The 18-character Id of record `number` of the object with `prefix`.
pub fn make(prefix: &str, number: u64) -> String {
    let mut body = [b'0'; 15];
    body[..3].copy_from_slice(&prefix.as_bytes()[..3]);
    body[3..5].copy_from_slice(POD.as_bytes());
    let mut n = number;
    for slot in body[6..].iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let sum = checksum(&body);
    let mut id = String::with_capacity(18);
    id.push_str(std::str::from_utf8(&body).unwrap_or_default());
    id.push_str(std::str::from_utf8(&sum).unwrap_or_default());
    id
}

/// Decodes an Id (15 or 18 characters) into its key prefix (as bytes: lookups on the
/// query path must not allocate) and record number, if it
/// is a well-formed sandbox Id. An 18-character Id must carry the right checksum,
/// though its body may arrive in any case (the suffix restores it, as on Salesforce).
pub fn parse(id: &str) -> Option<([u8; 3], u64)> {
    let bytes = id.as_bytes();
    let body: [u8; 15] = match bytes.len() {
        15 => bytes.try_into().ok()?,
        18 => {
            let mut body: [u8; 15] = bytes[..15].try_into().ok()?;
            restore_case(&mut body, &bytes[15..])?;
            if checksum(&body) != bytes[15..18].to_ascii_uppercase()[..] {
                return None;
            }
            body
        }
        _ => return None,
    };
    if !body.iter().all(u8::is_ascii_alphanumeric) || &body[3..5] != POD.as_bytes() {
        return None;
    }
    let mut number = 0u64;
    for &c in &body[6..] {
        let digit = BASE62.iter().position(|&b| b == c)? as u64;
        number = number.checked_mul(62)?.checked_add(digit)?;
    }
    Some(([body[0], body[1], body[2]], number))
}

/// Uses the checksum suffix to put the letters of a case-folded body back in case.
fn restore_case(body: &mut [u8; 15], suffix: &[u8]) -> Option<()> {
    for (chunk, &s) in suffix.iter().enumerate() {
        let bits = SUFFIX.iter().position(|&b| b == s.to_ascii_uppercase())?;
        for j in 0..5 {
            let c = &mut body[chunk * 5 + j];
            if bits & (1 << j) != 0 {
                *c = c.to_ascii_uppercase();
            } else {
                *c = c.to_ascii_lowercase();
            }
        }
    }
    Some(())
}

/// Expands a valid 15-character Id to 18 characters; returns 18-character Ids as given.
pub fn to18(id: &str) -> Option<String> {
    match id.len() {
        18 => Some(id.to_string()),
        15 => {
            let body: [u8; 15] = id.as_bytes().try_into().ok()?;
            let sum = checksum(&body);
            Some(format!("{id}{}", std::str::from_utf8(&sum).ok()?))
        }
        _ => None,
    }
}

/// A UUID-shaped text (8-4-4-4-12 lower-case hex, version 4 and variant bits set) that is a
/// pure function of `seed`: event ids and transaction keys, the same every time they are
/// rendered.
pub fn uuid_text(seed: u64) -> String {
    let a = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let b = a.rotate_left(31) ^ 0x5bd1_e995_5bd1_e995;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_published_vectors() {
        for (id15, id18) in [
            ("a0BA0000000L2ZC", "a0BA0000000L2ZCMA0"),
            ("0011Y00003HVMu4", "0011Y00003HVMu4QAH"),
            ("70130000001tcyI", "70130000001tcyIAAQ"),
            ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
            ("0012A00001aaAaa", "0012A00001aaAaaQAE"),
            ("0012000001A10aA", "0012000001A10aAAAR"),
            ("0012000001A1AA0", "0012000001A1AA0AAN"),
            ("0012000001AAaa1", "0012000001AAaa1AAD"),
        ] {
            assert_eq!(to18(id15).unwrap(), id18);
        }
    }

    #[test]
    fn make_and_parse_round_trip() {
        for n in [0u64, 1, 61, 62, 3_843, 1_000_000, 13_537_086_546_263_551] {
            let id = make("001", n);
            assert_eq!(id.len(), 18);
            assert_eq!(parse(&id), Some((*b"001", n)));
            assert_eq!(parse(&id[..15]), Some((*b"001", n)));
            assert_eq!(parse(&id.to_lowercase()).map(|(_, n)| n), Some(n));
        }
    }

    #[test]
    fn parse_rejects_bad_ids() {
        let good = make("003", 42);
        let mut bad_sum = good.clone();
        bad_sum.replace_range(17..18, if good.ends_with('A') { "B" } else { "A" });
        for bad in ["", "001", "001Dn0000000000A!", &bad_sum, "001XX000000000AAAA"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
