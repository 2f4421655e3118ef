//! Keeping AWS credentials out of the logs, at every level.
//!
//! The AWS SDK logs the resolved credentials' access key id (`access_key_id: "AKIA..."` in
//! its TRACE lines `resolved identity` and `signing request`), and requests could carry
//! `Credential=AKIA.../...`, `Authorization` or `X-Amz-Security-Token` in debug output. This
//! module owns the one filter every log line goes through (`RedactingMakeWriter`, wrapped
//! around the log output by the binary): it replaces with `<redacted>`
//!
//! - the values of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
//!   when set (16 characters or more, AWS's shortest key id: `test` is left alone);
//! - whatever follows `Credential=` up to the `/`;
//! - every access key id shape: `AKIA`, `ASIA`, `AIDA`, `AROA`, `AGPA`, `ANPA`, `ANVA`,
//!   `AIPA`, `ABIA` or `ACCA` and 16 capital letters or digits;
//! - the value after `authorization`, `x-amz-security-token`, `security_token`,
//!   `access_key_id`, `secret_access_key`, `session_token`, `AccessKeyId`,
//!   `SecretAccessKey` and `SessionToken` (any case) followed by `:` or `=`, or by `,` in a
//!   pair (`name: "value"`, `("name", "value")`, `name:value`, `NAME=value`), unless it is
//!   a placeholder (`Bearer <token>`).
//!
//! It is cheap on the hot path: a few `memchr`/`memmem` scans of each line (and of a
//! lower-case copy kept in a per-thread buffer), and a new line only when something is
//! redacted.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};
use std::ops::Range;

use memchr::memmem;
use tracing_subscriber::fmt::MakeWriter;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Environment variables whose values are secrets.
pub const SECRET_VARIABLES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Shortest value of `SECRET_VARIABLES` that is redacted wherever it appears (AWS's
/// shortest access key id). Shorter ones (`test`) are too likely to be ordinary words.
pub const MIN_SECRET_LEN: usize = 16;

/// The first four characters of AWS's unique ids for access keys and principals.
const KEY_ID_PREFIXES: [&[u8; 4]; 10] = [
    b"AKIA", b"ASIA", b"AIDA", b"AROA", b"AGPA", b"ANPA", b"ANVA", b"AIPA", b"ABIA", b"ACCA",
];
/// Length of an access key id.
const KEY_ID_LEN: usize = 20;

/// What precedes the key id in a SigV4 credential scope (lower case).
const CREDENTIAL: &[u8] = b"credential=";

/// Names whose value is a secret, lower case; `true`: the value may hold spaces (an
/// `Authorization` header) and runs to the end of the line when not quoted.
const SECRET_NAMES: [(&str, bool); 9] = [
    ("authorization", true),
    ("x-amz-security-token", false),
    ("security_token", false),
    ("access_key_id", false),
    ("secret_access_key", false),
    ("session_token", false),
    ("accesskeyid", false),
    ("secretaccesskey", false),
    ("sessiontoken", false),
];

/// The redaction rules, with the secret values known at start (searchers built once).
#[derive(Clone, Debug)]
pub struct Redactor {
    secrets: Vec<memmem::Finder<'static>>,
    credential: memmem::Finder<'static>,
    names: Vec<(memmem::Finder<'static>, bool)>,
}

impl Redactor {
    /// Redacts `secrets` (those of `MIN_SECRET_LEN` or more) besides the fixed rules.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Redactor {
        let mut values: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().trim().as_bytes().to_vec())
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        values.sort();
        values.dedup();
        Redactor {
            secrets: values
                .iter()
                .map(|v| memmem::Finder::new(v).into_owned())
                .collect(),
            credential: memmem::Finder::new(CREDENTIAL).into_owned(),
            names: SECRET_NAMES
                .iter()
                .map(|(name, spaces)| (memmem::Finder::new(name).into_owned(), *spaces))
                .collect(),
        }
    }

    /// The values of `SECRET_VARIABLES` in this process's environment.
    pub fn from_env() -> Redactor {
        Redactor::new(
            SECRET_VARIABLES
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        )
    }

    /// `text` with every secret replaced by `<redacted>`; borrowed when there is none.
    pub fn redact<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        let mut spans: Vec<Range<usize>> = Vec::new();
        for secret in &self.secrets {
            let len = secret.needle().len();
            spans.extend(secret.find_iter(text).map(|at| at..at + len));
        }
        key_id_shapes(text, &mut spans);
        self.named_values(text, &mut spans);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_by_key(|s| s.start);
        let mut out = Vec::with_capacity(text.len());
        let mut done = 0;
        for span in spans {
            if span.end <= done {
                continue;
            }
            let start = span.start.max(done);
            out.extend_from_slice(&text[done..start]);
            if start == span.start {
                out.extend_from_slice(REDACTED.as_bytes());
            }
            done = span.end;
        }
        out.extend_from_slice(&text[done..]);
        Cow::Owned(out)
    }

    /// `redact` for text.
    pub fn redact_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }
}

/// Every `AKIA` + 16 `[A-Z0-9]` (and the other prefixes), wherever it is: a key id inside
/// a URL or a longer word is still a key id.
fn key_id_shapes(text: &[u8], spans: &mut Vec<Range<usize>>) {
    for at in memchr::memchr_iter(b'A', text) {
        let Some(candidate) = text.get(at..at + KEY_ID_LEN) else {
            break;
        };
        if KEY_ID_PREFIXES.iter().any(|p| candidate.starts_with(*p))
            && candidate[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            spans.push(at..at + KEY_ID_LEN);
        }
    }
}

impl Redactor {
    /// The values after `Credential=` and after the `SECRET_NAMES`, in any case.
    fn named_values(&self, text: &[u8], spans: &mut Vec<Range<usize>>) {
        thread_local! {
            /// The lower-case copy of the line, kept between lines.
            static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LOWER.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut lower) => {
                lower.clear();
                lower.extend(text.iter().map(u8::to_ascii_lowercase));
                self.named_values_in(text, &lower, spans);
            }
            Err(_) => self.named_values_in(text, &text.to_ascii_lowercase(), spans),
        });
    }

    fn named_values_in(&self, text: &[u8], lower: &[u8], spans: &mut Vec<Range<usize>>) {
        for at in self.credential.find_iter(lower) {
            let start = at + CREDENTIAL.len();
            let end = start
                + text[start..]
                    .iter()
                    .position(|b| {
                        matches!(
                            b,
                            b'/' | b'%'
                                | b' '
                                | b'\t'
                                | b'\r'
                                | b'\n'
                                | b','
                                | b'"'
                                | b'\''
                                | b'&'
                                | b';'
                        )
                    })
                    .unwrap_or(text.len() - start);
            if end > start && !text[start..end].starts_with(REDACTED.as_bytes()) {
                spans.push(start..end);
            }
        }
        for (name, spaces) in &self.names {
            let len = name.needle().len();
            for at in name.find_iter(lower) {
                // `("name", "value")` (a header as a pair): the comma separates the value;
                // elsewhere (`["authorization", "user-agent"]`) it separates names.
                let pair = at >= 2 && matches!(&text[at - 2..at], b"(\"" | b"('");
                if let Some(value) = value_after(text, at + len, *spaces, pair) {
                    spans.push(value);
                }
            }
        }
    }
}

/// The value after a name ending at `at`: after separators holding `:`, `=` or (in a
/// `pair`) `,`, a quoted value (without its quotes) or a bare one (to a delimiter, or to
/// the end of the line when it may hold spaces). None when the name goes on
/// (`session_token_mode`), no separator follows, or the value is empty or already redacted.
fn value_after(text: &[u8], at: usize, spaces: bool, pair: bool) -> Option<Range<usize>> {
    if text
        .get(at)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return None;
    }
    let mut i = at;
    let mut separated = false;
    let mut skipped = 0;
    while i < text.len() && skipped < 6 && i - at < 40 {
        if text[i] == 0x1b {
            // A colour (`ESC [ ... m`) between a field's name and its value.
            match text[i..].iter().take(12).position(|b| *b == b'm') {
                Some(m) => {
                    i += m + 1;
                    continue;
                }
                None => break,
            }
        }
        skipped += 1;
        match text[i] {
            b':' | b'=' => separated = true,
            b',' if pair => separated = true,
            b'"' | b'\'' if separated => break,
            b'"' | b'\'' | b' ' | b'\t' => {}
            _ => break,
        }
        i += 1;
    }
    if !separated || i >= text.len() {
        return None;
    }
    let (start, end) = match text[i] {
        quote @ (b'"' | b'\'') => {
            let start = i + 1;
            let mut j = start;
            while j < text.len() && text[j] != quote && text[j] != b'\n' {
                j += if text[j] == b'\\' { 2 } else { 1 };
            }
            (start, j.min(text.len()))
        }
        _ => {
            let end = i + text[i..]
                .iter()
                .position(|b| match b {
                    b'\r' | b'\n' => true,
                    b' ' | b'\t' | b',' | b';' | b'&' | b'"' | b'\'' | b')' | b'}' | b']' => {
                        !spaces
                    }
                    _ => false,
                })
                .unwrap_or(text.len() - i);
            (i, end)
        }
    };
    let value = &text[start..end];
    // A placeholder (`Bearer <token>` in a hint) is not a secret.
    let scheme_end = value
        .iter()
        .position(|b| !b.is_ascii_alphanumeric() && *b != b'-')
        .unwrap_or(value.len());
    let secret_part = match value.get(scheme_end) {
        Some(b' ') => &value[scheme_end + 1..],
        _ => value,
    };
    if value.is_empty()
        || value.starts_with(b"**")
        || value.starts_with(REDACTED.as_bytes())
        || secret_part.starts_with(b"<")
    {
        return None;
    }
    Some(start..end)
}

/// A `MakeWriter` whose writers pass every log line through a `Redactor`.
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Redactor) -> RedactingMakeWriter<M> {
        RedactingMakeWriter { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), &self.redactor)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), &self.redactor)
    }
}

/// The writer of one log event. Complete lines are redacted and written at once; a part
/// of a line waits for its end (or for `flush` / drop), so that no secret is split.
pub struct RedactingWriter<'a, W: Write> {
    inner: W,
    redactor: &'a Redactor,
    pending: Vec<u8>,
}

impl<'a, W: Write> RedactingWriter<'a, W> {
    pub fn new(inner: W, redactor: &'a Redactor) -> RedactingWriter<'a, W> {
        RedactingWriter {
            inner,
            redactor,
            pending: Vec::new(),
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.inner.write_all(&self.redactor.redact(&pending))
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match memchr::memrchr(b'\n', data) {
            // The usual case: a whole event, written in one call.
            Some(last) if self.pending.is_empty() && last + 1 == data.len() => {
                self.inner.write_all(&self.redactor.redact(data))?;
            }
            Some(last) => {
                self.pending.extend_from_slice(&data[..=last]);
                self.write_pending()?;
                self.pending.extend_from_slice(&data[last + 1..]);
            }
            None => self.pending.extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<'_, W> {
    fn drop(&mut self) {
        let _ = self.write_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> String {
        Redactor::new(["AKIAENVIRONMENTKEY01", "short", "wJalrXUtnFEMI/K7MDENG"])
            .redact_str(text)
            .into_owned()
    }

    #[test]
    fn the_sdk_identity_and_signing_lines_lose_the_key_id() {
        // As aws-smithy-runtime and aws-sigv4 log them at TRACE (the key is not of the
        // environment here: the rules alone find it).
        let identity = r#"resolved identity identity=Identity { data: Credentials { provider_name: "EnvironmentVariable", access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "** redacted **", expires_after: "never" } }"#;
        assert_eq!(
            redact(identity),
            r#"resolved identity identity=Identity { data: Credentials { provider_name: "EnvironmentVariable", access_key_id: "<redacted>", secret_access_key: "** redacted **", expires_after: "never" } }"#
        );
        let other_provider = r#"Credentials { provider_name: "ProfileFile", access_key_id: "test", secret_access_key: "** redacted **" }"#;
        assert_eq!(
            redact(other_provider),
            r#"Credentials { provider_name: "ProfileFile", access_key_id: "<redacted>", secret_access_key: "** redacted **" }"#
        );
    }

    #[test]
    fn credential_scopes_headers_and_tokens_are_redacted() {
        assert_eq!(
            redact("Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc\nnext line"),
            "Authorization: <redacted>\nnext line"
        );
        assert_eq!(
            redact("url=https://x/?X-Amz-Credential=ASIAQQQQQQQQQQQQQQQQ%2F20260101&X-Amz-Security-Token=FQoGZXIvYXdz&X-Amz-Date=1"),
            "url=https://x/?X-Amz-Credential=<redacted>%2F20260101&X-Amz-Security-Token=<redacted>&X-Amz-Date=1"
        );
        assert_eq!(
            redact(
                r#"headers: [("x-amz-security-token", "FQoGZXIvYXdzEJr"), ("authorization", "AWS4-HMAC-SHA256 Credential=k/1")]"#
            ),
            r#"headers: [("x-amz-security-token", "<redacted>"), ("authorization", "<redacted>")]"#
        );
        assert_eq!(
            redact("x-amz-security-token:FQoGZXIvYXdzEJr\nx-amz-target:Kinesis.GetRecords"),
            "x-amz-security-token:<redacted>\nx-amz-target:Kinesis.GetRecords"
        );
        assert_eq!(
            redact(
                r#"{"AccessKeyId":"ASIA1234567890ABCDEF","SecretAccessKey":"s3cr3t","SessionToken":"tok"}"#
            ),
            r#"{"AccessKeyId":"<redacted>","SecretAccessKey":"<redacted>","SessionToken":"<redacted>"}"#
        );
        assert_eq!(
            redact("AWS_SECRET_ACCESS_KEY=abc AWS_SESSION_TOKEN='x y'"),
            "AWS_SECRET_ACCESS_KEY=<redacted> AWS_SESSION_TOKEN='<redacted>'"
        );
        // A coloured field: the colours between the name and the value do not hide it.
        assert_eq!(
            redact("\x1b[3mauthorization\x1b[0m\x1b[2m=\x1b[0m\"Bearer x\" next"),
            "\x1b[3mauthorization\x1b[0m\x1b[2m=\x1b[0m\"<redacted>\" next"
        );
    }

    #[test]
    fn key_id_shapes_and_environment_values_are_redacted_anywhere() {
        assert_eq!(
            redact("key AKIAIOSFODNN7EXAMPLE and ABIA0123456789ABCDEFG, arn AROAXXXXXXXXXXXXXXXX:session"),
            "key <redacted> and <redacted>G, arn <redacted>:session"
        );
        assert_eq!(
            redact("id=AKIAENVIRONMENTKEY01 secret wJalrXUtnFEMI/K7MDENG!"),
            "id=<redacted> secret <redacted>!"
        );
        // Too short to be a key: an ordinary word.
        assert_eq!(redact("a short test"), "a short test");
    }

    #[test]
    fn ordinary_lines_are_left_alone_and_borrowed() {
        let redactor = Redactor::new(Vec::<String>::new());
        for line in [
            "2026-01-01T00:00:00Z  INFO shard started mapping=orders shard=shardId-000000000000",
            "session_token_mode: Include, session_token_name_override: None",
            "authorization failed for the admin API",
            "sensitive headers: {\"authorization\"}",
            "excluded_headers: Some([\"authorization\", \"user-agent\", \"x-amzn-trace-id\"])",
            "x-amz-security-token;x-amz-target;x-amz-user-agent",
            "AKIA is a prefix, AKIAshort is not a key, AKIAIOSFODNN7EXAMPL is too short",
            "authorization\": ** redacted (length=253) **",
            "missing or wrong bearer token: send Authorization: Bearer <token> ([admin] token)",
            "access_key_id: <redacted>",
            "",
        ] {
            assert!(
                matches!(redactor.redact(line.as_bytes()), Cow::Borrowed(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn the_writer_redacts_lines_split_over_writes() {
        let redactor = Redactor::new(["AKIAENVIRONMENTKEY01"]);
        let mut out = Vec::new();
        {
            let mut writer = RedactingWriter::new(&mut out, &redactor);
            writer.write_all(b"first AKIAENVIR").unwrap();
            writer
                .write_all(b"ONMENTKEY01 line\nsecond access_key_id: \"")
                .unwrap();
            writer
                .write_all(b"k\"\nthird line, no newline AKIAIOSFODNN7")
                .unwrap();
            writer.write_all(b"EXAMPLE").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "first <redacted> line\nsecond access_key_id: \"<redacted>\"\nthird line, no newline <redacted>"
        );
    }

    #[test]
    fn any_input_is_redacted_without_panicking() {
        let redactor = Redactor::new(["AKIAENVIRONMENTKEY01"]);
        for text in [
            &b"authorization"[..],
            b"authorization:",
            b"authorization: \"",
            b"authorization: \"\\",
            b"credential=",
            b"Credential=AKIA",
            b"access_key_id: '",
            b"AKIAENVIRONMENTKEY0",
            b"\xff\xfeAKIAIOSFODNN7EXAMPLE\xff",
        ] {
            let out = redactor.redact(text);
            assert!(memmem::find(&out, b"AKIAIOSFODNN7EXAMPLE").is_none());
        }
    }
}
