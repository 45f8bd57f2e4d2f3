//! The API versions the org serves ([`VERSIONS`]) and how they are named and written in
//! URLs.

/// Oldest and newest API versions the org serves.
pub const VERSIONS: std::ops::RangeInclusive<u32> = 20..=66;

/// The release label of an API version (`62` → `Winter '25`).
pub fn version_label(v: u32) -> String {
    let i = v - 20;
    let season = ["Winter", "Spring", "Summer"][(i % 3) as usize];
    format!("{season} '{:02}", 11 + i / 3)
}

/// Parses `v62.0` into 62 if the org serves that version.
pub fn parse_version(segment: &str) -> Option<u32> {
    let n: u32 = segment.strip_prefix('v')?.strip_suffix(".0")?.parse().ok()?;
    VERSIONS.contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_labelled_like_salesforce() {
        assert_eq!(version_label(20), "Winter '11");
        assert_eq!(version_label(62), "Winter '25");
        assert_eq!(version_label(66), "Spring '26");
        assert_eq!(parse_version("v62.0"), Some(62));
        assert_eq!(parse_version("v19.0"), None);
        assert_eq!(parse_version("62.0"), None);
    }
}
