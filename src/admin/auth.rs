//! The admin API's token check, apart from the routes so the rule is one function: with a
//! token configured, a request passes only with `Authorization: Bearer <token>`, or, for
//! the AWS SDKs and the aws CLI calling the Lambda API, a SigV4 `Authorization` header
//! whose access key id is the token (`AWS4-HMAC-SHA256 Credential=<token>/...`: the SDK
//! signs every request itself, so the token travels as the access key; the signature is
//! not checked, esm-sim has no secret to check it with). Compared in constant time (no
//! early exit on the first differing byte, so the time taken says nothing about how much
//! of a guess was right).

/// Whether the `Authorization` header value carries `expected` as a bearer token or as
/// the access key id of a SigV4 signature.
pub fn authorized(header: Option<&[u8]>, expected: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    if let Some(token) = after_prefix(header, b"Bearer ") {
        return constant_time_eq(token, expected.as_bytes());
    }
    let Some(signature) = after_prefix(header, b"AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let Some(at) = find(signature, b"Credential=") else {
        return false;
    };
    let credential = &signature[at + b"Credential=".len()..];
    let access_key = credential.split(|&b| b == b'/').next().unwrap_or_default();
    constant_time_eq(access_key, expected.as_bytes())
}

/// What follows `prefix` (compared without case) in `header`.
fn after_prefix<'a>(header: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (header.len() >= prefix.len() && header[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &header[prefix.len()..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
    fn an_sdk_signature_passes_when_its_access_key_id_is_the_token() {
        let signed = |key: &str| {
            format!("AWS4-HMAC-SHA256 Credential={key}/20261205/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
        };
        assert!(authorized(Some(signed("s3cret").as_bytes()), "s3cret"));
        for key in ["s3cre", "s3cret2", "test", ""] {
            assert!(!authorized(Some(signed(key).as_bytes()), "s3cret"), "{key}");
        }
        assert!(!authorized(
            Some(b"AWS4-HMAC-SHA256 SignedHeaders=host"),
            "s3cret"
        ));
        assert!(!authorized(Some(b"AWS4-HMAC-SHA256 s3cret"), "s3cret"));
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
