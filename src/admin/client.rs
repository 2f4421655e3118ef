//! The admin API as the terminal commands call it, and as a worker forwards an operator
//! action to the worker holding the shard: a small HTTP/1 JSON client (hyper, as the HTTP
//! function uses, so no second HTTP stack), with errors that say what failed and what to
//! check (the daemon not running, a missing token, the API's own message). `exchange` is
//! the raw request under `get` and `post`: any status comes back as it was sent.

use std::time::Duration;

use anyhow::anyhow;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Longest wait for an answer: a skip or rewind waits up to 60 s for the shard task.
const TIMEOUT: Duration = Duration::from_secs(70);

pub struct AdminClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// A client of the API at `base` (`http://HOST:PORT`).
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<AdminClient> {
        let base = base.trim().trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| anyhow!("admin URL {base:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            anyhow::bail!("admin URL {base:?}: must be http://HOST:PORT");
        }
        Ok(AdminClient {
            base,
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call(Method::POST, path, body).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| anyhow!("the admin token cannot be sent in a header: {e}"))?;
            headers.insert(AUTHORIZATION, value);
        }
        let payload = match body {
            Some(body) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(serde_json::to_vec(body)?)
            }
            None => Bytes::new(),
        };
        let url = format!("{}{path}", self.base);
        let answer = self
            .exchange(method.clone(), path, headers, payload)
            .await
            .map_err(|cause| {
                anyhow!(
                    "cannot reach the admin API at {}: {cause} — is `esm-sim run` running? (--admin URL, ESM_SIM_ADMIN_URL or <state_dir>/admin.addr say where)",
                    self.base
                )
            })?;
        let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if answer.status.is_success() {
            return json.ok_or_else(|| anyhow!("{method} {url}: the answer is not JSON"));
        }
        let message = json.as_ref().and_then(|v| v["error"].as_str()).map_or_else(
            || String::from_utf8_lossy(&answer.body).into_owned(),
            str::to_string,
        );
        let hint = if answer.status == StatusCode::UNAUTHORIZED {
            " (give the token with --token or ESM_SIM_ADMIN_TOKEN)"
        } else {
            ""
        };
        Err(anyhow!(
            "{method} {path}: {}: {message}{hint}",
            answer.status
        ))
    }

    /// One request with exactly `headers` (no token added) and `body`, answered as the
    /// server answered, whatever the status: what forwarding an action to the worker
    /// holding a shard needs. `Err` says why no answer came (refused, timed out, cut off).
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Exchange, String> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if let Some(all) = request.headers_mut() {
            all.extend(headers);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request {method} {url}: {e}"))?;
        let response = match tokio::time::timeout(TIMEOUT, self.client.request(request)).await {
            Err(_) => return Err(format!("no answer within {} s", TIMEOUT.as_secs())),
            Ok(Err(error)) => return Err(root_cause(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the answer broke off: {e}"))?
            .to_bytes();
        Ok(Exchange {
            status,
            headers,
            body,
        })
    }
}

/// An answer as the server gave it.
#[derive(Debug)]
pub struct Exchange {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The innermost cause ("Connection refused (os error 111)"): what a person can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_accepted() {
        assert!(AdminClient::new("http://127.0.0.1:9400/", None).is_ok());
        for bad in ["127.0.0.1:9400", "https://x:1", "not a url", ""] {
            assert!(AdminClient::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("shardId-000000000001"), "shardId-000000000001");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[tokio::test]
    async fn an_unreachable_api_is_named_with_the_cause_and_what_to_check() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = AdminClient::new(&format!("http://127.0.0.1:{port}"), None).expect("client");
        let error = client
            .get("/shards")
            .await
            .expect_err("nothing listens")
            .to_string();
        assert!(
            error.starts_with(&format!(
                "cannot reach the admin API at http://127.0.0.1:{port}: "
            )),
            "{error}"
        );
        assert!(error.contains("refused"), "{error}");
        assert!(error.contains("is `esm-sim run` running?"), "{error}");
    }
}
