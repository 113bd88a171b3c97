//! The upload endpoints on the API's router: start, complete and abort behind the authoriser
//! (the [`Grant`] it leaves must allow the upload's title), and the target's own part routes
//! outside it.

use super::{
    decode_upload_id, encode_upload_id, CompletedPart, UploadError, UploadPlan, Uploads, MAX_PARTS,
};
use crate::delivery::auth::Grant;
use crate::delivery::http::{json_error, json_response};
use crate::pipeline::keys::{classify_key, KeyRole};
use crate::title::Title;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, post};
use axum::{Json, Router};
use std::sync::Arc;

/// `POST /v1/uploads`, `POST /v1/uploads/{id}/complete`, `DELETE /v1/uploads/{id}`: for the
/// API's router, before its authoriser layer.
pub(crate) fn authorised_routes<S>(uploads: Arc<Uploads>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/v1/uploads", post(start))
        .route("/v1/uploads/{id}/complete", post(complete))
        .route("/v1/uploads/{id}", delete(abort))
        .with_state(uploads)
}

/// The target's part routes (a folder store's), if it has any.
pub(crate) fn open_routes(uploads: &Uploads) -> Option<Router> {
    Arc::clone(&uploads.target).part_routes()
}

/// The body of `complete`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    parts: Vec<CompletedPart>,
}

async fn start(
    State(up): State<Arc<Uploads>>,
    grant: Option<Extension<Grant>>,
    body: Result<Json<super::UploadRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(r)) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let plan = match up.rules.plan(&request) {
        Ok(plan) => plan,
        Err(e) => return refusal(&e),
    };
    if let Some(denied) = denied(grant, &plan.title) {
        return denied;
    }
    let expires_at = crate::clock::unix_now().saturating_add(up.rules.ttl());
    let (task_up, task_plan) = (Arc::clone(&up), plan.clone());
    let started = tokio::task::spawn_blocking(move || {
        task_up
            .target
            .start(&task_plan, expires_at, &task_up.api_base)
    })
    .await;
    match started {
        Ok(Ok(started)) => {
            tracing::info!(target: "hlspipe::delivery::uploads", key = %plan.key.escape_debug(), size = plan.size, parts = plan.part_count, "upload started");
            let id = encode_upload_id(&plan.key, &started.upload_id);
            json_response(
                StatusCode::CREATED,
                &answer(&up, &plan, &id, &started.part_urls, expires_at),
            )
        }
        Ok(Err(e)) => refusal(&e),
        Err(e) => refusal(&UploadError::Storage(format!("upload task failed: {e}"))),
    }
}

/// The 201 body of `start`.
fn answer(
    up: &Uploads,
    plan: &UploadPlan,
    id: &str,
    part_urls: &[String],
    expires_at: u64,
) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = part_urls
        .iter()
        .zip(1u64..)
        .map(|(url, n)| serde_json::json!({ "part_number": n, "url": url, "size": plan.part_len(n) }))
        .collect();
    let base = format!("{}/v1/uploads/{id}", up.api_base);
    serde_json::json!({
        "upload_id": id,
        "key": plan.key,
        "title": plan.title,
        "size": plan.size,
        "part_size": plan.part_size,
        "parts": parts,
        "complete": { "method": "POST", "url": format!("{base}/complete") },
        "abort": { "method": "DELETE", "url": base },
        "expires_at": expires_at,
    })
}

async fn complete(
    State(up): State<Arc<Uploads>>,
    grant: Option<Extension<Grant>>,
    Path(id): Path<String>,
    body: Result<Json<CompleteRequest>, JsonRejection>,
) -> Response {
    let parts = match body {
        Ok(Json(r)) => r.parts,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let count = u64::try_from(parts.len()).unwrap_or(u64::MAX);
    if count == 0 || count > MAX_PARTS {
        let message = format!("parts: list 1 to {MAX_PARTS} parts, in order");
        return json_error(StatusCode::BAD_REQUEST, &message);
    }
    let Some((key, target_id, title)) = upload_of(&up, &id) else {
        return json_error(StatusCode::NOT_FOUND, "no such upload");
    };
    if let Some(denied) = denied(grant, &title) {
        return denied;
    }
    let (task_up, task_key) = (Arc::clone(&up), key.clone());
    let done =
        tokio::task::spawn_blocking(move || task_up.target.complete(&task_key, &target_id, &parts))
            .await;
    match done {
        Ok(Ok(())) => {
            tracing::info!(target: "hlspipe::delivery::uploads", key = %key.escape_debug(), "upload completed");
            json_response(
                StatusCode::OK,
                &serde_json::json!({ "key": key, "state": "uploaded" }),
            )
        }
        Ok(Err(e)) => refusal(&e),
        Err(e) => refusal(&UploadError::Storage(format!("upload task failed: {e}"))),
    }
}

async fn abort(
    State(up): State<Arc<Uploads>>,
    grant: Option<Extension<Grant>>,
    Path(id): Path<String>,
) -> Response {
    let Some((key, target_id, title)) = upload_of(&up, &id) else {
        return json_error(StatusCode::NOT_FOUND, "no such upload");
    };
    if let Some(denied) = denied(grant, &title) {
        return denied;
    }
    let task_up = Arc::clone(&up);
    match tokio::task::spawn_blocking(move || task_up.target.abort(&key, &target_id)).await {
        Ok(Ok(())) => {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Ok(Err(e)) => refusal(&e),
        Err(e) => refusal(&UploadError::Storage(format!("upload task failed: {e}"))),
    }
}

/// The key, target id and title of an API upload id; `None` when it is not one of ours.
fn upload_of(up: &Uploads, id: &str) -> Option<(String, String, Title)> {
    let (key, target_id) = decode_upload_id(id)?;
    match classify_key(&up.rules.pipeline, &key) {
        KeyRole::Media { title } => Some((key, target_id, title)),
        _ => None,
    }
}

/// 403 unless the grant allows `title`. No grant means the authoriser did not run: fail
/// closed.
fn denied(grant: Option<Extension<Grant>>, title: &Title) -> Option<Response> {
    if grant.is_some_and(|Extension(g)| g.allows(title)) {
        return None;
    }
    tracing::warn!(target: "hlspipe::delivery::uploads", %title, "403: upload outside the token's allowed prefixes");
    Some(json_response(
        StatusCode::FORBIDDEN,
        &serde_json::json!({ "error": "uploading this title is not allowed for this caller", "title": title }),
    ))
}

/// The JSON answer for an error; a storage failure's reason goes to the log only.
pub(super) fn refusal(e: &UploadError) -> Response {
    let status = match e {
        UploadError::Invalid(_) => StatusCode::BAD_REQUEST,
        UploadError::Forbidden(_) => StatusCode::FORBIDDEN,
        UploadError::NotFound(_) => StatusCode::NOT_FOUND,
        UploadError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        UploadError::Storage(reason) => {
            tracing::error!(target: "hlspipe::delivery::uploads", %reason, "upload storage error");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "storage error");
        }
    };
    json_error(status, &e.to_string())
}
