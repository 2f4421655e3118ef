//! The admin API's routes: JSON views of the mappings and shards, the operator actions,
//! the metrics, the dashboard page and its history.
//!
//! Handlers only read the engine's published status and call its shard controls; the
//! stuck rule is the engine's (`ShardSnapshot::stuck`). An action on a shard another
//! worker holds goes to that worker (`forward`). Every error is `{"error": "..."}` with
//! its status (400 bad request, 401 no token, 404 unknown, 409 conflict, 502 the lease
//! owner did not answer), so a script or `esm-sim shards` can always show the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::auth::authorized;
use super::forward::{self, Route};
use super::metrics::{render, MappingShards};
use super::metrics_leases::render_leases;
use super::shard_page::{select_shards, shard_json, shard_page, ShardQuery};
use super::state::AdminState;
use crate::config::StartingPosition;
use crate::coordination::metrics::LeaseCounts;
use crate::engine::context::MappingContext;
use crate::engine::control::{ControlError, RewindTo};
use crate::engine::status::{ShardSnapshot, ShardStatus};
use crate::model::{SequenceNumber, ShardId};

/// An error answer: `{"error": message}` with its status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Answer = Result<Json<Value>, ApiError>;

pub fn router(state: Arc<AdminState>) -> Router {
    let guarded = Router::new()
        .route("/history", get(history))
        .route("/metrics", get(metrics))
        .route("/mappings", get(mappings))
        .route("/shards", get(shards))
        .route("/shards/{mapping}/{shard}", get(shard))
        .route("/shards/{mapping}/{shard}/{action}", post(action))
        .merge(super::lambda_api::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    // The page holds no data (it asks for the token when the API answers 401), so a
    // browser can load it without one; so can a health check.
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .merge(guarded)
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !authorized(header, token) {
            if request
                .uri()
                .path()
                .starts_with(super::lambda_api::API_PREFIX)
            {
                return super::lambda_api::unauthorized().into_response();
            }
            let mut response = ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send Authorization: Bearer <token> ([admin] token)"
                    .into(),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route".into())
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn page() -> Html<&'static str> {
    Html(super::dashboard::PAGE)
}

/// Every series, or with `/shards`' query (`stuck`, `mapping`, `limit`, `after`) the series
/// of that page's shards, with its `total` and `next`.
async fn history(
    State(state): State<Arc<AdminState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Answer {
    if query.is_empty() {
        let history = state.history.lock().unwrap_or_else(|p| p.into_inner());
        return Ok(Json(history.to_json()));
    }
    let query = parse_shard_query(&state, &query)?;
    let now_ms = state.clock.now_ms();
    let contexts = state.mappings.contexts();
    let mappings = snapshots_of(&contexts, &query);
    let selection = select_shards(&mappings, &query, now_ms, state.stuck_after_ms);
    let history = state.history.lock().unwrap_or_else(|p| p.into_inner());
    let mut answer = history.to_json_of(
        selection
            .chosen
            .iter()
            .map(|(mapping, s)| (*mapping, s.shard_id.as_str())),
    );
    answer["total"] = json!(selection.total);
    answer["next"] = json!(selection.next);
    Ok(Json(answer))
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let contexts = state.mappings.contexts();
    let snapshots: Vec<Vec<ShardSnapshot>> =
        contexts.iter().map(|c| c.status.snapshots()).collect();
    let mappings: Vec<MappingShards<'_>> = contexts
        .iter()
        .zip(&snapshots)
        .map(|(ctx, shards)| MappingShards {
            name: &ctx.mapping.name,
            enabled: ctx.mapping.enabled,
            shards,
        })
        .collect();
    let mut text = render(
        &mappings,
        state.clock.now_ms(),
        state.stuck_after_ms,
        state.shard_series,
    );
    // One keeper per process, shared by its leased mappings: its series once.
    let mut workers: Vec<(&str, LeaseCounts)> = Vec::new();
    for keeper in contexts.iter().filter_map(|c| c.leases.as_ref()) {
        if !workers.iter().any(|(id, _)| *id == keeper.worker_id) {
            workers.push((&keeper.worker_id, keeper.metrics.snapshot()));
        }
    }
    text.push_str(&render_leases(&workers));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn mappings(State(state): State<Arc<AdminState>>) -> Json<Value> {
    let now_ms = state.clock.now_ms();
    let mappings: Vec<Value> = state
        .mappings
        .contexts()
        .iter()
        .map(|ctx| {
            let m = &ctx.mapping;
            let shards = ctx.status.snapshots();
            let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
            for s in &shards {
                *by_state.entry(json_str(&s.state)).or_default() += 1;
            }
            let stuck = shards
                .iter()
                .filter(|s| s.stuck(now_ms, state.stuck_after_ms).is_some())
                .count();
            let starting_position = match m.starting_position {
                StartingPosition::TrimHorizon => json!("TRIM_HORIZON"),
                StartingPosition::Latest => json!("LATEST"),
                StartingPosition::AtTimestamp(ms) => json!({ "AT_TIMESTAMP": ms }),
            };
            let mut mapping = json!({
                "name": m.name,
                "event_source_arn": m.event_source_arn,
                "function_name": m.function_name,
                "enabled": m.enabled,
                "batch_size": m.batch_size,
                "maximum_batching_window_ms": m.maximum_batching_window_ms,
                "starting_position": starting_position,
                "parallelization_factor": m.parallelization_factor,
                "bisect_batch_on_function_error": m.bisect_batch_on_function_error,
                "maximum_retry_attempts": m.maximum_retry_attempts.map_or(-1, i64::from),
                "maximum_record_age_ms": m.maximum_record_age_ms.unwrap_or(-1),
                "report_batch_item_failures": m.report_batch_item_failures,
                "on_failure_destination": m.on_failure_destination,
                "metrics_config": { "metrics": m.metrics },
                "shards": { "total": shards.len(), "by_state": by_state },
                "stuck": stuck,
            });
            // Shared through a lease table: which worker answered.
            if let Some(keeper) = &ctx.leases {
                mapping["worker_id"] = json!(keeper.worker_id);
            }
            mapping
        })
        .collect();
    Json(json!({ "mappings": mappings }))
}

/// `?stuck=true`, `?mapping=NAME`, `?limit=N&after=<mapping>/<shard>` (see `shard_page`).
async fn shards(
    State(state): State<Arc<AdminState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Answer {
    let query = parse_shard_query(&state, &query)?;
    let now_ms = state.clock.now_ms();
    let contexts = state.mappings.contexts();
    let mappings = snapshots_of(&contexts, &query);
    let page = shard_page(&mappings, &query, now_ms, state.stuck_after_ms);
    Ok(Json(json!({
        "now_ms": now_ms,
        "stuck_after_ms": state.stuck_after_ms,
        "shards": page.shards,
        "total": page.total,
        "next": page.next,
    })))
}

/// `/shards`' query, its mapping known (else 404).
fn parse_shard_query(
    state: &AdminState,
    query: &BTreeMap<String, String>,
) -> Result<ShardQuery, ApiError> {
    let query = ShardQuery::parse(query).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    if let Some(name) = &query.mapping {
        context(state, name)?;
    }
    Ok(query)
}

/// The snapshots of the mappings `query` may pick from: only the asked mapping's shards are
/// copied out (`select_shards` filters again).
fn snapshots_of<'a>(
    contexts: &'a [Arc<MappingContext>],
    query: &ShardQuery,
) -> Vec<(&'a str, Vec<ShardSnapshot>)> {
    contexts
        .iter()
        .filter(|ctx| {
            query
                .mapping
                .as_ref()
                .is_none_or(|m| *m == ctx.mapping.name)
        })
        .map(|ctx| (ctx.mapping.name.as_str(), ctx.status.snapshots()))
        .collect()
}

async fn shard(
    State(state): State<Arc<AdminState>>,
    Path((mapping, shard)): Path<(String, String)>,
) -> Answer {
    let status = shard_status(&state, &mapping, &shard)?;
    Ok(Json(shard_answer(&state, &mapping, &status.snapshot())))
}

/// `POST /shards/{mapping}/{shard}/{action}`: here, or at the worker holding the shard's
/// lease (see `forward`).
async fn action(
    State(state): State<Arc<AdminState>>,
    Path((mapping, shard, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let status = shard_status(&state, &mapping, &shard)?;
    if !["pause", "resume", "skip", "rewind"].contains(&action.as_str()) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown action {action:?}: expected pause, resume, skip or rewind"),
        ));
    }
    let ctx = context(&state, &mapping)?;
    if let Some(keeper) = &ctx.leases {
        let shard_id = ShardId(shard.clone());
        let lease = keeper.lease(&mapping, &shard_id);
        let held_here = keeper.holds(&mapping, &shard_id);
        let forwarded = headers.contains_key(forward::FORWARDED);
        match forward::route(
            &shard,
            lease.as_ref(),
            held_here,
            &keeper.worker_id,
            forwarded,
        ) {
            Route::Here => {}
            Route::Unheld if ["skip", "rewind"].contains(&action.as_str()) => {
                return Err(ApiError(StatusCode::CONFLICT, forward::unheld(&shard)))
            }
            // Written into the lease row: whoever takes the lease next applies it.
            Route::Unheld => {}
            Route::Refuse(message) => return Err(ApiError(StatusCode::CONFLICT, message)),
            Route::Forward { owner, url } => {
                let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
                let authorization = headers.get(header::AUTHORIZATION);
                return forward::forward(&owner, &url, path, authorization, body)
                    .await
                    .map_err(|(status, message)| ApiError(status, message));
            }
        }
    }
    act_here(&state, &ctx, &status, &mapping, &shard, &action, &body)
        .await
        .map(IntoResponse::into_response)
}

/// An action on a shard this worker runs (or on the lease row of one nobody holds).
async fn act_here(
    state: &AdminState,
    ctx: &MappingContext,
    status: &ShardStatus,
    mapping: &str,
    shard: &str,
    action: &str,
    body: &[u8],
) -> Answer {
    let result = match action {
        "pause" | "resume" => {
            Ok(ctx
                .set_paused(status, shard, action == "pause")
                .map_err(|e| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("{action} not done: it could not be stored: {e}"),
                    )
                })?)
        }
        "skip" => status.skip().await,
        _ => {
            let to = parse_rewind(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
            status.rewind(to).await
        }
    };
    match result {
        Ok(snapshot) => {
            tracing::info!(%mapping, %shard, %action, result = "done",
                state = %json_str(&snapshot.state), checkpoint = snapshot.checkpoint.as_deref().unwrap_or("none"),
                "admin action");
            Ok(Json(shard_answer(state, mapping, &snapshot)))
        }
        Err(ControlError::Conflict(message)) => {
            tracing::info!(%mapping, %shard, %action, result = "refused", reason = %message, "admin action");
            Err(ApiError(StatusCode::CONFLICT, message))
        }
    }
}

fn shard_answer(state: &AdminState, mapping: &str, snapshot: &ShardSnapshot) -> Value {
    shard_json(
        mapping,
        snapshot,
        state.clock.now_ms(),
        state.stuck_after_ms,
    )
}

/// The body of `POST .../rewind`: `{"sequence_number": "..."}` or `{"timestamp":
/// "RFC 3339" | epoch ms}`, exactly one of them.
pub fn parse_rewind(body: &[u8]) -> Result<RewindTo, String> {
    const EXPECTED: &str =
        "expected {\"sequence_number\": \"...\"} or {\"timestamp\": \"RFC 3339\" | epoch ms}";
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e}): {EXPECTED}"))?;
    let Value::Object(fields) = value else {
        return Err(format!("body is not a JSON object: {EXPECTED}"));
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !["sequence_number", "timestamp"].contains(&k.as_str()))
    {
        return Err(format!("unknown field {key:?}: {EXPECTED}"));
    }
    match (fields.get("sequence_number"), fields.get("timestamp")) {
        (Some(Value::String(seq)), None)
            if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(RewindTo::Sequence(SequenceNumber(seq.clone())))
        }
        (Some(other), None) => Err(format!(
            "sequence_number = {other}: must be a string of digits"
        )),
        (None, Some(Value::String(text))) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| RewindTo::TimestampMs(t.timestamp_millis()))
            .map_err(|e| format!("timestamp = {text:?}: not RFC 3339 ({e})")),
        (None, Some(Value::Number(n))) => n
            .as_i64()
            .filter(|ms| *ms >= 0)
            .map(RewindTo::TimestampMs)
            .ok_or_else(|| {
                format!("timestamp = {n}: must be epoch milliseconds (a whole number >= 0)")
            }),
        (None, Some(other)) => Err(format!(
            "timestamp = {other}: must be an RFC 3339 string or epoch milliseconds"
        )),
        (Some(_), Some(_)) => Err("sequence_number and timestamp are exclusive: give one".into()),
        (None, None) => Err(format!("nothing to rewind to: {EXPECTED}")),
    }
}

fn context(state: &AdminState, mapping: &str) -> Result<Arc<MappingContext>, ApiError> {
    state
        .mappings
        .contexts()
        .into_iter()
        .find(|c| c.mapping.name == mapping)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no mapping named {mapping:?}"),
            )
        })
}

fn shard_status(
    state: &AdminState,
    mapping: &str,
    shard: &str,
) -> Result<Arc<ShardStatus>, ApiError> {
    context(state, mapping)?.status.get(shard).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("mapping {mapping:?} has no shard {shard:?} (yet)"),
        )
    })
}

/// A unit enum's serde name (`"retrying"`).
fn json_str(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_bodies_are_a_sequence_number_or_a_timestamp() {
        assert_eq!(
            parse_rewind(br#"{"sequence_number":"4960"}"#),
            Ok(RewindTo::Sequence(SequenceNumber("4960".into())))
        );
        assert_eq!(
            parse_rewind(br#"{"timestamp":"2026-01-01T00:00:01Z"}"#),
            Ok(RewindTo::TimestampMs(1_767_225_601_000))
        );
        assert_eq!(
            parse_rewind(br#"{"timestamp":1767225601000}"#),
            Ok(RewindTo::TimestampMs(1_767_225_601_000))
        );
        for (body, wanted) in [
            (&b""[..], "body is not JSON"),
            (b"[]", "not a JSON object"),
            (b"{}", "nothing to rewind to"),
            (br#"{"seq":"1"}"#, "unknown field \"seq\""),
            (
                br#"{"sequence_number":1}"#,
                "sequence_number = 1: must be a string of digits",
            ),
            (
                br#"{"sequence_number":"abc"}"#,
                "must be a string of digits",
            ),
            (
                br#"{"timestamp":"yesterday"}"#,
                "timestamp = \"yesterday\": not RFC 3339",
            ),
            (br#"{"timestamp":-1}"#, "must be epoch milliseconds"),
            (br#"{"timestamp":1.5}"#, "must be epoch milliseconds"),
            (
                br#"{"timestamp":true}"#,
                "must be an RFC 3339 string or epoch milliseconds",
            ),
            (br#"{"sequence_number":"1","timestamp":1}"#, "exclusive"),
        ] {
            let error = parse_rewind(body).expect_err("refused");
            assert!(error.contains(wanted), "{error} lacks {wanted}");
        }
    }
}
