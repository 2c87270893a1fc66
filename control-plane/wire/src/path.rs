//! Names in URL paths: every API path segment that carries a name (actor type, key, method,
//! module id, region, node id, token id) is percent-encoded by the sender and decoded by the
//! receiver, so names may hold `/`, spaces, `?` or `%` and still reach their own route.

use std::borrow::Cow;

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// `name` as one path segment: everything but ASCII letters and digits escaped (so neither `.`
/// nor `..` can appear as a segment a proxy would normalise away).
pub fn segment(name: &str) -> String {
    utf8_percent_encode(name, NON_ALPHANUMERIC).to_string()
}

/// `name` as a query value (the same escaping: `+` and `&` are escaped too).
pub fn query_value(name: &str) -> String {
    segment(name)
}

/// A segment (or query value) decoded, borrowed when it holds no escapes: `None` if its escapes
/// do not decode to UTF-8.
pub fn decode(segment: &str) -> Option<Cow<'_, str>> {
    percent_decode_str(segment).decode_utf8().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_survives_a_round_trip_as_one_segment() {
        for name in [
            "plain",
            "a/b",
            "with space",
            "q?x=1&y",
            "100%",
            "ünï",
            "a.b-c_d~e",
            "..",
        ] {
            let encoded = segment(name);
            assert!(!encoded.contains(['/', '.', ' ', '?', '&']), "{encoded}");
            assert_eq!(decode(&encoded).as_deref(), Some(name));
        }
        assert_eq!(segment("counter42"), "counter42", "letters and digits stay");
    }

    #[test]
    fn escapes_that_are_not_utf8_are_refused() {
        assert_eq!(decode("%FF%FE"), None);
    }
}
