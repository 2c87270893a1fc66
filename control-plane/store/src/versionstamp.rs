//! Versionstamps: 10 bytes, an 8-byte big-endian commit version then a 2-byte big-endian order of
//! the transaction within that commit batch. Byte order is commit order, as in FoundationDB.

use std::fmt;

/// The placeholder written where a versionstamp will be substituted at commit.
pub const INCOMPLETE_VERSIONSTAMP: [u8; 10] = [0xff; 10];

/// A committed transaction's position in the store's total order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Versionstamp([u8; 10]);

impl Versionstamp {
    /// From a commit version and the transaction's order within it.
    pub fn new(version: u64, order: u16) -> Self {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&version.to_be_bytes());
        b[8..].copy_from_slice(&order.to_be_bytes());
        Versionstamp(b)
    }

    /// From its 10 bytes.
    pub fn from_bytes(bytes: [u8; 10]) -> Self {
        Versionstamp(bytes)
    }

    /// Reads a versionstamp from the first 10 bytes of `bytes`.
    pub fn read(bytes: &[u8]) -> Option<Self> {
        Some(Versionstamp(bytes.get(..10)?.try_into().ok()?))
    }

    /// The 10 bytes.
    pub fn to_bytes(self) -> [u8; 10] {
        self.0
    }

    /// The commit version.
    pub fn version(self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    /// The order within the commit.
    pub fn order(self) -> u16 {
        u16::from_be_bytes([self.0[8], self.0[9]])
    }
}

impl fmt::Display for Versionstamp {
    /// `version.order`, e.g. `1732150000123456.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.version(), self.order())
    }
}

impl fmt::Debug for Versionstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Versionstamp({self})")
    }
}

impl std::str::FromStr for Versionstamp {
    type Err = String;

    /// Parses `version.order`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("a versionstamp is `<version>.<order>`, got `{s}`");
        let (v, o) = s.split_once('.').ok_or_else(bad)?;
        Ok(Versionstamp::new(
            v.parse().map_err(|_| bad())?,
            o.parse().map_err(|_| bad())?,
        ))
    }
}

/// Replaces the 10 bytes at `offset` in `bytes` with `stamp`.
pub(crate) fn substitute(bytes: &mut [u8], offset: usize, stamp: Versionstamp) {
    bytes[offset..offset + 10].copy_from_slice(&stamp.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_commit_order() {
        let a = Versionstamp::new(5, 9);
        let b = Versionstamp::new(6, 0);
        assert!(a < b && a.to_bytes() < b.to_bytes());
        assert_eq!((b.version(), b.order()), (6, 0));
        assert_eq!(a.to_string().parse::<Versionstamp>(), Ok(a));
    }
}
