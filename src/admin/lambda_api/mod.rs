//! Lambda's control plane for event source mappings (API version 2015-03-31), served on
//! the admin server's address so that `aws --endpoint-url <admin.addr> lambda ...`,
//! boto3's and every SDK's Lambda client manage the daemon's mappings unchanged:
//! CreateEventSourceMapping, GetEventSourceMapping, UpdateEventSourceMapping,
//! DeleteEventSourceMapping and ListEventSourceMappings, under Lambda's paths, with its
//! JSON shapes (`shape`) and errors (`error`). The work is the running set's
//! (`crate::running`); this module only reads requests and words answers.

pub mod error;
pub mod shape;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use self::error::LambdaError;
use self::shape::{configuration, page};
use super::state::AdminState;
use crate::running::refusal::Refusal;
use crate::running::{MappingView, RunningMappings};

/// The start of every Lambda API path.
pub const API_PREFIX: &str = "/2015-03-31/";
/// Where Lambda's SDKs send the calls.
const COLLECTION: &str = "/2015-03-31/event-source-mappings";

/// The answer to a Lambda call without the admin token, as AWS answers an unknown access
/// key (so the SDKs raise UnrecognizedClientException).
pub fn unauthorized() -> LambdaError {
    LambdaError {
        status: StatusCode::FORBIDDEN,
        code: "UnrecognizedClientException",
        message: "The security token included in the request is invalid: esm-sim's Lambda API takes the admin token ([admin] token) as the access key id".into(),
    }
}

/// The routes, to merge into the admin router (behind its token check).
pub fn routes() -> Router<Arc<AdminState>> {
    let one = format!("{COLLECTION}/{{uuid}}");
    Router::new()
        .route(COLLECTION, get(list).post(create))
        .route(&format!("{COLLECTION}/"), get(list).post(create))
        .route(&one, get(read).put(update).delete(delete))
}

type Answer = Result<Response, LambdaError>;

fn running(state: &AdminState) -> Result<&Arc<RunningMappings>, LambdaError> {
    state.mappings.running().ok_or_else(|| {
        LambdaError::from(Refusal::Service(
            "this admin server does not manage mappings".into(),
        ))
    })
}

/// The answer with a mapping: 202 for changes, as Lambda answers them.
fn answer(set: &RunningMappings, view: &MappingView, status: StatusCode) -> Response {
    let body = configuration(view, &set.mapping_arn(&view.uuid));
    (status, Json(body)).into_response()
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, LambdaError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(LambdaError::unreadable_body(format!(
            "expected an object, got {other}"
        ))),
        Err(e) => Err(LambdaError::unreadable_body(e)),
    }
}

async fn create(State(state): State<Arc<AdminState>>, body: Bytes) -> Answer {
    let set = running(&state)?;
    let view = set.create(body_object(&body)?).await?;
    Ok(answer(set, &view, StatusCode::ACCEPTED))
}

async fn read(State(state): State<Arc<AdminState>>, Path(uuid): Path<String>) -> Answer {
    let set = running(&state)?;
    Ok(answer(set, &set.view(&uuid)?, StatusCode::OK))
}

async fn update(
    State(state): State<Arc<AdminState>>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Answer {
    let set = running(&state)?;
    let view = set.update(&uuid, body_object(&body)?).await?;
    Ok(answer(set, &view, StatusCode::ACCEPTED))
}

async fn delete(State(state): State<Arc<AdminState>>, Path(uuid): Path<String>) -> Answer {
    let set = running(&state)?;
    let view = set.delete(&uuid).await?;
    Ok(answer(set, &view, StatusCode::ACCEPTED))
}

/// `?FunctionName=&EventSourceArn=&Marker=&MaxItems=`.
async fn list(
    State(state): State<Arc<AdminState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Answer {
    let set = running(&state)?;
    let known = ["FunctionName", "EventSourceArn", "Marker", "MaxItems"];
    if let Some(key) = query.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Refusal::InvalidParameter(format!(
            "unknown query parameter {key:?}: expected one of {}",
            known.join(", ")
        ))
        .into());
    }
    let views = set.views();
    let get = |key: &str| query.get(key).map(String::as_str);
    let (listed, next) = page(
        &views,
        get("FunctionName"),
        get("EventSourceArn"),
        get("Marker"),
        get("MaxItems"),
    )?;
    let mappings: Vec<Value> = listed
        .into_iter()
        .map(|v| configuration(v, &set.mapping_arn(&v.uuid)))
        .collect();
    let mut body = json!({ "EventSourceMappings": mappings });
    if let Some(marker) = next {
        body["NextMarker"] = json!(marker);
    }
    Ok(Json(body).into_response())
}
