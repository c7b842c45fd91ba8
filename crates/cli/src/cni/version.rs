//! CNI spec versions: which palisade speaks and how they compare.

/// Every spec version palisade answers in. Before 0.3.0 there was no
/// `prevResult`, so no chaining, which palisade needs.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The version answered when a request names none.
pub const LATEST: &str = "1.1.0";

/// `(major, minor, patch)` of a version string, if it is one.
pub fn parse(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    let out = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(out)
}

pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// Whether `v` is at least `min` (both valid versions).
pub fn at_least(v: &str, min: &str) -> bool {
    match (parse(v), parse(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(at_least("1.1.0", "1.1.0"));
        assert!(at_least("1.10.0", "1.2.0"));
        assert!(!at_least("0.4.0", "1.0.0"));
        assert!(!at_least("1.x", "1.0.0"));
        assert_eq!(parse("0.3.1"), Some((0, 3, 1)));
        assert_eq!(parse("1.0"), None);
        assert_eq!(parse("1.0.0.0"), None);
    }
}
