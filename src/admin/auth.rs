//! The admin API's bearer token check, apart from the routes so the rule is one function:
//! with a token configured, a request passes only with `Authorization: Bearer <token>`,
//! compared in constant time (no early exit on the first differing byte, so the time
//! taken says nothing about how much of a guess was right).

/// Whether the `Authorization` header value carries `expected` as a bearer token.
pub fn authorized(header: Option<&[u8]>, expected: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    let prefix = b"Bearer ";
    if header.len() < prefix.len() || !header[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return false;
    }
    constant_time_eq(&header[prefix.len()..], expected.as_bytes())
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(!e);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(authorized(Some(b"Bearer s3cret"), "s3cret"));
        assert!(
            authorized(Some(b"bearer s3cret"), "s3cret"),
            "the scheme is case-insensitive"
        );
        for header in [
            None,
            Some(&b""[..]),
            Some(b"Bearer"),
            Some(b"Bearer "),
            Some(b"Bearer s3cre"),
            Some(b"Bearer s3cret2"),
            Some(b"Bearer S3cret"),
            Some(b"Basic s3cret"),
            Some(b"s3cret"),
        ] {
            assert!(!authorized(header, "s3cret"), "{header:?}");
        }
    }

    #[test]
    fn a_prefix_or_an_extension_of_the_token_is_not_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
