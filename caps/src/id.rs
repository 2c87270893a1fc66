//! Fixed-size binary identifiers (key ids, revocation ids) shown and parsed as hexadecimal.

/// Why a hexadecimal id could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {what} is {digits} hexadecimal digits")]
pub struct ParseIdError {
    /// Which id was expected.
    pub what: &'static str,
    /// How many hex digits it has.
    pub digits: usize,
}

/// Defines `$name([u8; $len])` with byte conversions and hex `Display`, `Debug` and `FromStr`.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// The raw bytes.
            pub fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// From raw bytes.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&::hex::encode(self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::id::ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut id = [0u8; $len];
                ::hex::decode_to_slice(s, &mut id).map_err(|_| $crate::id::ParseIdError {
                    what: $what,
                    digits: 2 * $len,
                })?;
                Ok($name(id))
            }
        }
    };
}
