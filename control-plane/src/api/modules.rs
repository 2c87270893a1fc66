//! Module routes of the admin API, checked against the token's actor-type scope: a token scoped
//! to one actor type uploads modules for that type and lists, reads and deletes only modules of
//! it; an unscoped token reaches every module (see `registry/modules.rs`).

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use latchkey_caps::Rights;
use latchkey_wire::ApiError;

use super::{Reply, bearer, blocking, json, no_content, read_body};
use crate::ControlPlane;

/// Verifies the token, checks it grants `deploy`, and returns its actor-type scope.
fn deploy_scope(cp: &ControlPlane, req: &Request<Incoming>) -> Result<Option<String>, ApiError> {
    let verified = cp
        .authority
        .check_right(&bearer(req)?, Rights::DEPLOY)
        .map_err(ApiError::from)?;
    Ok(verified.capability().actor_type.clone())
}

/// `POST /v1/modules`.
pub(super) async fn upload(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let scope = deploy_scope(&cp, &req)?;
    let max = cp.registry.limits().max_module_bytes;
    let body = read_body(req.into_body(), max).await?;
    // Validation first (cheap, in-process), then the compile check (a bounded child process),
    // then storing.
    let bytes = body.clone();
    blocking(move || {
        crate::validate::validate_component(&bytes)
            .map(drop)
            .map_err(|e| crate::RegistryError::Invalid(e.to_string()))
    })
    .await?;
    if let Some(check) = &cp.config().compile_check {
        check.check(body.clone()).await.map_err(|e| e.to_api())?;
    }
    let registry = Arc::clone(&cp.registry);
    let module = blocking(move || registry.put_module_as(&body, scope.as_deref())).await?;
    Ok(json(StatusCode::CREATED, &module))
}

/// `GET /v1/modules`.
pub(super) async fn list(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let scope = deploy_scope(&cp, &req)?;
    let registry = Arc::clone(&cp.registry);
    let modules = blocking(move || registry.modules_as(scope.as_deref())).await?;
    Ok(json(StatusCode::OK, &modules))
}

/// `GET /v1/modules/{content_id}`.
pub(super) async fn get(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    id: &str,
) -> Result<Reply, ApiError> {
    let scope = deploy_scope(&cp, &req)?;
    let (registry, id) = (Arc::clone(&cp.registry), id.to_owned());
    let module = blocking(move || registry.module_as(&id, scope.as_deref())).await?;
    Ok(json(StatusCode::OK, &module))
}

/// `DELETE /v1/modules/{content_id}`.
pub(super) async fn delete(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    id: &str,
) -> Result<Reply, ApiError> {
    let scope = deploy_scope(&cp, &req)?;
    let (registry, id) = (Arc::clone(&cp.registry), id.to_owned());
    blocking(move || registry.delete_module_as(&id, scope.as_deref())).await?;
    Ok(no_content())
}
