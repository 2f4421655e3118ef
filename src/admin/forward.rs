//! Operator actions on a shard that another worker holds (issue 12), by forwarding: the
//! worker asked sends the request, body and `Authorization` header as they came, to the
//! admin API of the lease's owner (`owner_admin_url` in the lease row) and answers with
//! the owner's status and body, plus `x-esm-sim-forwarded-to: <owner>`.
//!
//! Forwarding rather than writing the action into the lease row: skip and rewind act on
//! the batch in flight and must answer with what the shard task did, which only the
//! holder knows, so one path serves all four actions and every answer is the holder's
//! own. The row is used only when nobody holds the lease: a pause or resume is written
//! there (`keeper.set_paused`; whoever takes the lease next applies it), a skip or rewind
//! is refused until a worker holds the shard.
//!
//! A forwarded request carries `x-esm-sim-forwarded: 1`; a worker receiving one for a
//! shard it does not hold answers 409 instead of forwarding again, so views that disagree
//! for a moment (a lease just stolen) cannot bounce a request between workers.
//! `route` is the pure decision; `forward` is the one HTTP call, through the CLI's client.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::client::AdminClient;
use crate::coordination::lease::Lease;

/// Marks a request one worker forwarded to another.
pub const FORWARDED: &str = "x-esm-sim-forwarded";
/// Names, on an answer, the worker the request was forwarded to.
pub const FORWARDED_TO: &str = "x-esm-sim-forwarded-to";

/// Where an action on a shard is carried out.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// This worker holds the shard's lease (or there is no lease table): act here.
    Here,
    /// Nobody holds the lease now.
    Unheld,
    /// Another worker holds it: send the request there.
    Forward { owner: String, url: String },
    /// Neither here nor forwardable: 409 with this message.
    Refuse(String),
}

/// Where an action on `shard` goes, from this worker's view of its lease. `held_here`:
/// the keeper holds the lease now; `forwarded`: the request came from another worker.
pub fn route(
    shard: &str,
    lease: Option<&Lease>,
    held_here: bool,
    worker_id: &str,
    forwarded: bool,
) -> Route {
    if held_here {
        return Route::Here;
    }
    // A row naming this worker that it does not hold is a previous run's: it expires.
    let Some(owner) = lease
        .and_then(|l| l.owner.as_deref())
        .filter(|owner| *owner != worker_id)
    else {
        return Route::Unheld;
    };
    if forwarded {
        return Route::Refuse(format!(
            "shard {shard} is not held by worker {worker_id} (lease owner: {owner})"
        ));
    }
    match lease.and_then(|l| l.owner_admin_url.as_deref()) {
        Some(url) => Route::Forward {
            owner: owner.to_string(),
            url: url.to_string(),
        },
        None => Route::Refuse(format!(
            "shard {shard} is held by worker {owner}, which gave no admin URL ([admin] disabled there?): act on it through that worker"
        )),
    }
}

/// The 409 message of a skip or rewind on a shard nobody holds.
pub fn unheld(shard: &str) -> String {
    format!("no worker holds shard {shard}'s lease now: try again once one does")
}

/// Sends `path` (with `body` and the caller's `authorization`) to `owner`'s admin API at
/// `url`; its answer as it came, or 502 naming the owner, its URL and what failed.
pub async fn forward(
    owner: &str,
    url: &str,
    path: &str,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Response, (StatusCode, String)> {
    let unreachable = |cause: String| {
        (
            StatusCode::BAD_GATEWAY,
            format!("the lease owner, worker {owner}, did not answer at {url}: {cause}"),
        )
    };
    let client = AdminClient::new(url, None).map_err(|e| unreachable(e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(FORWARDED, HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = authorization {
        headers.insert(header::AUTHORIZATION, value.clone());
    }
    let answer = client
        .exchange(Method::POST, path, headers, body)
        .await
        .map_err(unreachable)?;
    tracing::info!(path, owner, url, status = %answer.status, "admin action forwarded to the lease owner");
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    if let Some(content_type) = answer.headers.get(header::CONTENT_TYPE).cloned() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    // Worker ids are checked printable; one that is not a header value goes unnamed.
    if let Ok(value) = HeaderValue::from_str(owner) {
        response.headers_mut().insert(FORWARDED_TO, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ShardId;

    fn lease(owner: Option<&str>, url: Option<&str>) -> Lease {
        let mut lease = Lease::new("m", ShardId("s-1".into()), vec![]);
        lease.owner = owner.map(str::to_string);
        lease.owner_admin_url = url.map(str::to_string);
        lease
    }

    #[test]
    fn a_shard_held_here_is_acted_on_here_whatever_the_row_says() {
        let row = lease(Some("b"), Some("http://b"));
        assert_eq!(route("s-1", Some(&row), true, "a", false), Route::Here);
        assert_eq!(route("s-1", Some(&row), true, "a", true), Route::Here);
    }

    #[test]
    fn a_shard_another_worker_holds_is_forwarded_to_its_url_once() {
        let row = lease(Some("b"), Some("http://127.0.0.1:9401"));
        assert_eq!(
            route("s-1", Some(&row), false, "a", false),
            Route::Forward {
                owner: "b".into(),
                url: "http://127.0.0.1:9401".into()
            }
        );
        assert_eq!(
            route("s-1", Some(&row), false, "a", true),
            Route::Refuse("shard s-1 is not held by worker a (lease owner: b)".into())
        );
        let Route::Refuse(message) = route("s-1", Some(&lease(Some("b"), None)), false, "a", false)
        else {
            panic!("no URL: nowhere to forward");
        };
        assert!(
            message.starts_with("shard s-1 is held by worker b, which gave no admin URL"),
            "{message}"
        );
    }

    #[test]
    fn a_free_lease_an_unknown_one_and_a_stale_row_of_this_worker_are_unheld() {
        for row in [
            None,
            Some(lease(None, None)),
            Some(lease(Some("a"), Some("http://old"))),
        ] {
            for forwarded in [false, true] {
                assert_eq!(
                    route("s-1", row.as_ref(), false, "a", forwarded),
                    Route::Unheld,
                    "{row:?}"
                );
            }
        }
        assert_eq!(
            unheld("s-1"),
            "no worker holds shard s-1's lease now: try again once one does"
        );
    }

    #[tokio::test]
    async fn an_owner_that_does_not_answer_is_a_502_naming_it_its_url_and_why() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let (status, message) = forward("b", &url, "/shards/m/s-1/skip", None, Bytes::new())
            .await
            .expect_err("nothing listens");
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(
            message.starts_with(&format!(
                "the lease owner, worker b, did not answer at {url}: "
            )),
            "{message}"
        );
        assert!(message.contains("refused"), "{message}");
        let (status, message) = forward("b", "not a url", "/x", None, Bytes::new())
            .await
            .expect_err("a bad URL in the row");
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(message.contains("not a url"), "{message}");
    }
}
