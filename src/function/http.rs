//! The HTTP function type: each invocation POSTs the event JSON to a URL and reads the answer as
//! Lambda's synchronous Invoke would report it.
//!
//! The request is `POST <url>` with the exact event bytes, `Content-Type: application/json`
//! and the configured `headers` (which may override the content type). Plain `http://`
//! and `https://` (Lambda function URLs; native root certificates) both work; the function
//! keeps one pooled HTTP/1.1 client, so connections are reused between invocations. The
//! Lambda Runtime Interface Emulator works as is (`.../2015-03-31/functions/function/invocations`).
//!
//! How an answer is read, in this order:
//! - The connection cannot be made (refused, DNS failure, TLS handshake failure, connect
//!   timeout): the invocation never reached the function, `NotReached`.
//! - No complete answer within `timeout_seconds` (counted from the start of the request,
//!   body included): a timeout, function error `Unhandled` with `timed_out`, and Lambda's
//!   `Sandbox.Timedout` body.
//! - A body over Lambda's response limit (6,291,556 bytes): function error `Unhandled` with Lambda's
//!   `Function.ResponseSizeTooLarge` body. At most 6 MB + 1 byte is ever read.
//! - A header `X-Amz-Function-Error` (as Lambda and the emulator set it), whatever the
//!   status: function error, with the header's value (`Unhandled` when it is empty).
//! - 429: throttled, `NotReached` (not counted as an attempt).
//! - 2xx: the function's response, its body as is.
//! - 5xx: function error `Unhandled`.
//! - Any other status (other 4xx, and 1xx/3xx, redirects are not followed): function error
//!   `Unhandled` [decision: the function was reached and did not succeed; a retry
//!   counts as an attempt, so a misconfigured URL ends in the on-failure destination rather
//!   than blocking the shard forever].
//! - The connection breaks after the request went out (reset, truncated answer): function
//!   error `Unhandled` [decision: the function may have run, as a crashed runtime].
//!
//! A response always has `statusCode` 200 and `executedVersion` `$LATEST`, as Lambda reports
//! a synchronous invoke that ran. Connect timeout [decision]: 90 % of the function timeout,
//! at most 5 s, so that a host that does not answer is `NotReached` rather than a timeout.

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{
    error_body, response_too_large_body, Function, FunctionResponse, Invocation, InvokeResult,
};
use crate::config::schema::{AwsIdentity, FunctionConfig};

/// Lambda's limit on a synchronous response payload.
pub const MAX_RESPONSE_BYTES: usize = crate::limits::LAMBDA_RESPONSE_PAYLOAD_BYTES;

const FUNCTION_ERROR_HEADER: &str = "x-amz-function-error";

pub struct HttpFunction {
    arn: String,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpFunction {
    pub fn new(cfg: &FunctionConfig, aws: &AwsIdentity) -> anyhow::Result<HttpFunction> {
        let what = || format!("function {:?}", cfg.name);
        let url = cfg
            .url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("{}: type = \"http\" needs a url", what()))?;
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: url = {url:?}: {e}", what()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!(
                "{}: url = {url:?}: must start with http:// or https://",
                what()
            ),
        };
        if uri.host().is_none_or(str::is_empty) {
            anyhow::bail!("{}: url = {url:?}: has no host", what());
        }

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: header {name:?}: {e}", what()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| anyhow::anyhow!("{}: header {name:?}: value: {e}", what()))?;
            headers.insert(header, value);
        }

        let timeout = Duration::from_secs(cfg.timeout_seconds.max(1));
        let connect_timeout = (timeout.mul_f64(0.9)).min(Duration::from_secs(5));
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));

        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let builder = if https {
            HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(provider)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: url = {url:?}: cannot load the system's root certificates: {e}",
                        what()
                    )
                })?
        } else {
            // Never used for http:// URLs, but the connector wants one.
            let tls = rustls::ClientConfig::builder_with_provider(provider.into())
                .with_safe_default_protocol_versions()
                .map_err(|e| anyhow::anyhow!("{}: TLS setup: {e}", what()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(tls)
        };
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);

        Ok(HttpFunction {
            arn: cfg.arn(aws),
            uri,
            headers,
            timeout,
            client,
        })
    }

    /// The request and the bounded read of its answer, without the overall timeout.
    async fn exchange(&self, payload: &[u8]) -> InvokeResult {
        let mut request = Request::new(Full::new(Bytes::copy_from_slice(payload)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(e) if e.is_connect() => {
                return InvokeResult::NotReached(format!(
                    "cannot connect to {}: {}",
                    self.uri,
                    error_chain(&e)
                ))
            }
            Err(e) => {
                return function_error(
                    "Unhandled",
                    error_body(
                        &format!("the connection to {} failed: {}", self.uri, error_chain(&e)),
                        "Runtime.ConnectionError",
                    ),
                )
            }
        };
        let status = response.status();
        let declared_error = response
            .headers()
            .get(FUNCTION_ERROR_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .map(|v| if v.is_empty() { "Unhandled".into() } else { v });
        if declared_error.is_none() && status == StatusCode::TOO_MANY_REQUESTS {
            return InvokeResult::NotReached(format!(
                "TooManyRequestsException: {} answered 429",
                self.uri
            ));
        }
        let body = match read_bounded(response).await {
            Ok(Some(body)) => body,
            Ok(None) => return function_error("Unhandled", response_too_large_body()),
            Err(e) => {
                return function_error(
                    "Unhandled",
                    error_body(
                        &format!("reading the response of {} failed: {e}", self.uri),
                        "Runtime.ConnectionError",
                    ),
                )
            }
        };
        if let Some(error) = declared_error {
            return function_error(&error, body);
        }
        if status.is_success() {
            return InvokeResult::Response(FunctionResponse::answered(None, body));
        }
        function_error("Unhandled", body)
    }
}

/// The whole body, or `None` when it is over `MAX_RESPONSE_BYTES` (never reading more
/// than one byte past the limit).
async fn read_bounded(response: Response<Incoming>) -> Result<Option<Vec<u8>>, hyper::Error> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Ok(None);
    }
    let capacity = declared.map_or(0, |n| n as usize);
    let mut body = response.into_body();
    let mut buffer: Vec<u8> = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let room = MAX_RESPONSE_BYTES + 1 - buffer.len();
        buffer.extend_from_slice(&data[..data.len().min(room)]);
        if buffer.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(buffer))
}

fn function_error(error: &str, body: Vec<u8>) -> InvokeResult {
    InvokeResult::Response(FunctionResponse::answered(Some(error), body))
}

/// An error and its sources, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl Function for HttpFunction {
    fn function_arn(&self) -> &str {
        &self.arn
    }

    async fn invoke(&self, invocation: Invocation<'_>) -> InvokeResult {
        match tokio::time::timeout(self.timeout, self.exchange(invocation.payload)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                InvokeResult::Response(FunctionResponse::timed_out(self.timeout.as_secs_f64()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> FunctionConfig {
        FunctionConfig {
            name: "f".into(),
            function_type: "http".into(),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn bad_urls_and_headers_are_refused_when_built() {
        let aws = AwsIdentity::default();
        assert!(HttpFunction::new(&config("ftp://x/"), &aws).is_err());
        assert!(HttpFunction::new(&config("not a url"), &aws).is_err());
        let mut bad_header = config("http://127.0.0.1:1/");
        bad_header.headers.insert("bad header".into(), "v".into());
        assert!(HttpFunction::new(&bad_header, &aws).is_err());
        let ok = HttpFunction::new(&config("http://127.0.0.1:1/"), &aws).expect("valid");
        assert_eq!(
            ok.function_arn(),
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
    }
}
