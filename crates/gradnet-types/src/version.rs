//! Version numbers as OpenGradient's hub writes them: `major.minor` with a
//! two-digit minor; the first version is `1.00`, a minor release bumps the
//! minor (`1.01`), a major release the major (`2.00`).

use std::cmp::Ordering;

/// A version number, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Bumped by a major release.
    pub major: u32,
    /// Bumped by a minor release (written with two digits).
    pub minor: u32,
}

impl Version {
    /// `1.00`.
    pub const FIRST: Version = Version { major: 1, minor: 0 };

    /// `major.minor` with a minor of two digits or more; `None` otherwise.
    pub fn parse(s: &str) -> Option<Version> {
        let (a, b) = s.split_once('.')?;
        if b.len() < 2
            || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            || (a.len() > 1 && a.starts_with('0'))
        {
            return None;
        }
        Some(Version {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// The version after `prev` (the first when there is none).
    pub fn next(prev: Option<Version>, is_major: bool) -> Version {
        match prev {
            None => Version::FIRST,
            Some(v) if is_major => Version {
                major: v.major + 1,
                minor: 0,
            },
            Some(v) => Version {
                major: v.major,
                minor: v.minor + 1,
            },
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.major, self.minor)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Version {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.major, self.minor).cmp(&(o.major, o.minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering() {
        let v1 = Version::next(None, false);
        assert_eq!(v1.to_string(), "1.00");
        let v2 = Version::next(Some(v1), false);
        assert_eq!(v2.to_string(), "1.01");
        let v3 = Version::next(Some(v2), true);
        assert_eq!(v3.to_string(), "2.00");
        assert_eq!(Version::parse("2.00"), Some(v3));
        assert_eq!(Version::parse("1.100").unwrap().to_string(), "1.100");
        for bad in ["1", "1.0", "a.00", "01.00", "1.-1", ""] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(Version::parse("1.10").unwrap() > Version::parse("1.09").unwrap());
    }
}
