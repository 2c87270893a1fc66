//! Admin API handlers (JSON; see `docs/admin-api.md`). Every route needs a token with the right
//! it names, scoped to what it touches.

use std::sync::Arc;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use latchkey_caps::{Capability, KeyScope, Request as Access, RevocationId, Rights, Token};
use latchkey_wire::admin::{
    CanaryRequest, DeployRequest, EnrolmentRequest, MintRequest, MintResponse, ReasonRequest,
    RegionRequest, RevokeRequest, RollbackPolicy, RotateResponse,
};
use latchkey_wire::{ApiError, ErrorCode, canary};
use serde::Serialize;

use super::{
    Reply, authorize, bearer, blocking, json, method_not_allowed, no_content, not_found, param,
    parse_json, query, read_body,
};
use crate::authority::unix_now;
use crate::error::RegistryError;
use crate::registry::deployments::DeployOp;
use crate::{ControlPlane, Registry};

/// The resources of the admin API (a path under one that no route matches is `405`).
const RESOURCES: [&str; 10] = [
    "modules",
    "deployments",
    "nodes",
    "activations",
    "tokens",
    "revocations",
    "keys",
    "regions",
    "clock",
    "tail",
];

/// What a resource's routes answered; `None`: none of them matches.
type Routed = Option<Result<Reply, ApiError>>;

/// The admin routes, by resource.
pub(super) async fn handle(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    path: &[&str],
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    let full = req.uri().path().to_owned();
    let get = method == Method::GET;
    let routed = match path {
        ["modules", rest @ ..] => modules(cp, req, &method, rest).await,
        ["deployments", rest @ ..] => deployments(cp, req, &method, rest).await,
        ["regions", rest @ ..] => regions(cp, req, &method, rest).await,
        ["nodes", rest @ ..] => nodes(cp, req, &method, rest).await,
        ["revocations", rest @ ..] => revocations(cp, req, &method, rest).await,
        ["keys", rest @ ..] => keys(cp, req, &method, rest).await,
        ["activations"] if get => Some(activations(cp, req).await),
        ["tokens"] if method == Method::POST => Some(mint(cp, req).await),
        ["clock"] if get => Some(clock(cp, req).await),
        _ => None,
    };
    match routed {
        Some(reply) => reply,
        None if path.first().is_some_and(|p| RESOURCES.contains(p)) => {
            Err(method_not_allowed(&method, &full))
        }
        None => Err(not_found(&full)),
    }
}

/// Answers with what `f` reads from the registry (on a blocking thread), as JSON.
async fn answer<T: Serialize + Send + 'static>(
    cp: &ControlPlane,
    f: impl FnOnce(&Registry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<Reply, ApiError> {
    let registry = Arc::clone(&cp.registry);
    Ok(json(StatusCode::OK, &blocking(move || f(&registry)).await?))
}

/// Checks that the token grants `access`, then [`answer`]s.
async fn read<T: Serialize + Send + 'static>(
    cp: &ControlPlane,
    req: &Request<Incoming>,
    access: &Access<'_>,
    f: impl FnOnce(&Registry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<Reply, ApiError> {
    authorize(cp, req, access)?;
    answer(cp, f).await
}

async fn modules(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    Some(match (method, rest) {
        (&Method::POST, []) => super::modules::upload(cp, req).await,
        (&Method::GET, []) => super::modules::list(cp, req).await,
        (&Method::GET, [id]) => super::modules::get(cp, req, id).await,
        (&Method::DELETE, [id]) => super::modules::delete(cp, req, id).await,
        _ => return None,
    })
}

async fn deployments(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    let deploy = Access::new(Rights::DEPLOY);
    Some(match (method, rest) {
        (&Method::GET, []) => read(&cp, &req, &deploy, |r| r.deployments()).await,
        (&Method::GET, [actor_type]) => {
            let (access, t) = (deploy.on_actor_type(actor_type), actor_type.to_string());
            read(&cp, &req, &access, move |r| r.deployment(&t, 100)).await
        }
        (&Method::POST, [actor_type, rest @ ..]) => {
            deployment_change(cp, req, actor_type, rest).await
        }
        (&Method::PUT, [actor_type, "policy"]) => {
            deployment_change(cp, req, actor_type, &["policy"]).await
        }
        (&Method::DELETE, [actor_type]) => {
            deployment_change(cp, req, actor_type, &["remove"]).await
        }
        _ => return None,
    })
}

async fn regions(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    let admin = Access::new(Rights::ADMIN);
    let name = rest.first().map(|n| (*n).to_owned()).unwrap_or_default();
    Some(match (method, rest) {
        (&Method::GET, []) => read(&cp, &req, &admin, |r| r.regions()).await,
        (&Method::GET, [_]) => read(&cp, &req, &admin, move |r| r.region(&name)).await,
        (&Method::PUT, [_]) => put_region(cp, req, name).await,
        (&Method::DELETE, [_]) => delete_region(cp, req, name).await,
        _ => return None,
    })
}

async fn put_region(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    name: String,
) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let body = read_body(req.into_body(), super::MAX_BODY).await?;
    let request: RegionRequest = parse_json(if body.is_empty() { b"{}" } else { &body })?;
    answer(&cp, move |r| r.put_region(&name, &request)).await
}

async fn delete_region(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    name: String,
) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let registry = Arc::clone(&cp.registry);
    blocking(move || registry.delete_region(&name)).await?;
    Ok(no_content())
}

/// The control plane's clock (any valid token).
async fn clock(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    check_right(&cp, &req, Rights::empty())?;
    answer(&cp, |r| r.clock()).await
}

async fn nodes(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    Some(match (method, rest) {
        (&Method::GET, []) => read(&cp, &req, &Access::new(Rights::ADMIN), |r| r.nodes()).await,
        (&Method::POST, [id, "enrolment"]) => enrolment(cp, req, id).await,
        (&Method::DELETE, [id, "identity"]) => remove_node(cp, req, id).await,
        (&Method::POST, [_, "token"]) => Err(ApiError::new(
            ErrorCode::Gone,
            "node tokens were replaced by node enrolment: make a single-use enrolment capability with `latchkey node-enrolment <node-id>` (POST /v1/nodes/{id}/enrolment) and give it to the node",
        )),
        _ => return None,
    })
}

/// Revokes a node's key everywhere (`latchkey node-remove`).
async fn remove_node(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    id: &str,
) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let (registry, id) = (Arc::clone(&cp.registry), id.to_owned());
    let info = blocking(move || registry.remove_node_identity(&id, None)).await?;
    cp.authority
        .refresh_revocations(&cp.registry)
        .map_err(|e| e.to_api())?;
    cp.feed_changed();
    Ok(json(StatusCode::OK, &info))
}

async fn activations(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let actor_type = param(&req, "actor_type")?;
    let limit = query(&req, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000usize);
    answer(&cp, move |r| r.activations(actor_type.as_deref(), limit)).await
}

async fn revocations(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    let access = Access::new(Rights::REVOKE);
    Some(match (method, rest) {
        (&Method::POST, []) => revoke(cp, req).await,
        (&Method::GET, []) => read(&cp, &req, &access, |r| r.revocations()).await,
        (&Method::GET, [token_id]) => {
            let id = (*token_id).to_owned();
            read(&cp, &req, &access, move |r| r.revocation(&id)).await
        }
        _ => return None,
    })
}

async fn keys(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[&str],
) -> Routed {
    Some(match (method, rest) {
        (&Method::GET, []) => {
            read(&cp, &req, &Access::new(Rights::ADMIN), |r| r.issuer_keys()).await
        }
        (&Method::POST, ["rotate"]) => rotate_key(cp, req).await,
        (&Method::POST, [key_id, "retire"]) => retire_key(cp, req, key_id).await,
        _ => return None,
    })
}

/// Rotates the issuer key; answers with the caller's capability, no wider, rooted in the new
/// key.
async fn rotate_key(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let caller = authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let cp2 = Arc::clone(&cp);
    let keys = blocking(move || cp2.authority.rotate(&cp2.registry)).await?;
    cp.feed_changed();
    let token = cp
        .authority
        .mint(caller.capability())
        .map_err(|e| e.to_api())?;
    Ok(json(
        StatusCode::OK,
        &RotateResponse {
            keys,
            token: token.to_text(),
        },
    ))
}

async fn retire_key(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    key_id: &str,
) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let (cp2, id) = (Arc::clone(&cp), key_id.to_owned());
    let keys = blocking(move || cp2.authority.retire(&cp2.registry, &id)).await?;
    cp.feed_changed();
    Ok(json(StatusCode::OK, &keys))
}

/// Verifies the request's token and checks only that it grants `right`.
fn check_right(
    cp: &ControlPlane,
    req: &Request<Incoming>,
    right: Rights,
) -> Result<Arc<latchkey_caps::Verified>, ApiError> {
    cp.authority
        .check_right(&bearer(req)?, right)
        .map_err(ApiError::from)
}

async fn deployment_change(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    actor_type: &str,
    action: &[&str],
) -> Result<Reply, ApiError> {
    let verified = authorize(
        &cp,
        &req,
        &Access::new(Rights::DEPLOY).on_actor_type(actor_type),
    )?;
    // A token scoped to the type deploys only modules uploaded for it.
    let scoped = verified.capability().actor_type.is_some();
    let body = read_body(req.into_body(), super::MAX_BODY).await?;
    let body = if body.is_empty() {
        &b"{}"[..]
    } else {
        &body[..]
    };
    let (op, reason) = match action {
        [] => {
            let r: DeployRequest = parse_json(body)?;
            (DeployOp::Deploy(r.version), r.reason)
        }
        ["canary"] => {
            let r: CanaryRequest = parse_json(body)?;
            let bp = canary::basis_points(r.percent).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("percent must be 0 to 100, got {}", r.percent),
                )
            })?;
            (DeployOp::Canary(r.version, bp), r.reason)
        }
        ["promote" | "abort" | "rollback"] => {
            let r: ReasonRequest = parse_json(body)?;
            let op = match action[0] {
                "promote" => DeployOp::Promote,
                "abort" => DeployOp::Abort,
                _ => DeployOp::Rollback,
            };
            (op, r.reason)
        }
        ["remove"] => (DeployOp::Remove, parse_json::<ReasonRequest>(body)?.reason),
        ["policy"] => (
            DeployOp::SetPolicy(parse_json::<RollbackPolicy>(body)?),
            None,
        ),
        _ => {
            return Err(not_found(&format!(
                "/v1/deployments/{actor_type}/{}",
                action.join("/")
            )));
        }
    };
    let (registry, t) = (Arc::clone(&cp.registry), actor_type.to_owned());
    let info =
        blocking(move || registry.change_deployment_as(&t, &op, reason.as_deref(), scoped)).await?;
    cp.feed_changed();
    Ok(json(StatusCode::OK, &info))
}

/// Default and longest lifetime of an enrolment capability.
const ENROLMENT_SECS: u64 = 3600;
const MAX_ENROLMENT_SECS: u64 = 7 * 24 * 3600;

/// `POST /v1/nodes/{id}/enrolment`: a single-use, expiring capability that lets one node enrol
/// its key (right `node` only, audience `enrol:{id}`). Needs an unrestricted `admin` token.
async fn enrolment(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    node_id: &str,
) -> Result<Reply, ApiError> {
    authorize(&cp, &req, &Access::new(Rights::ADMIN))?;
    let body = read_body(req.into_body(), super::MAX_BODY).await?;
    let request: EnrolmentRequest = parse_json(if body.is_empty() { b"{}" } else { &body })?;
    let secs = request.expires_in_secs.unwrap_or(ENROLMENT_SECS);
    if secs == 0 || secs > MAX_ENROLMENT_SECS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("an enrolment capability lives 1 to {MAX_ENROLMENT_SECS} seconds, not {secs}"),
        ));
    }
    crate::registry::check_node_id(node_id).map_err(|e| e.to_api())?;
    let expires_at = unix_now().saturating_add(secs);
    let capability = Capability::unrestricted()
        .rights(Rights::NODE)
        .audience(super::nodeauth::enrolment_audience(node_id))
        .expires_at(expires_at);
    let token = cp.authority.mint(&capability).map_err(|e| e.to_api())?;
    Ok(json(
        StatusCode::CREATED,
        &MintResponse {
            token: token.to_text(),
            token_id: token.token_id().to_string(),
            expires_at: Some(expires_at),
        },
    ))
}

/// Audience prefixes that name principals the control plane and nodes establish themselves;
/// a minted token naming one could impersonate them.
const RESERVED_AUDIENCES: [&str; 3] = ["node:", "actor:", "enrol:"];

/// The capability a mint request asks for.
fn requested_capability(r: &MintRequest) -> Result<Capability, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let mut cap = Capability {
        actor_type: r.actor_type.clone(),
        audience: r.audience.clone(),
        ..Capability::default()
    };
    cap.keys = match (&r.key, &r.key_prefix) {
        (Some(_), Some(_)) => return Err(bad("give `key` or `key_prefix`, not both".into())),
        (Some(k), None) => Some(KeyScope::Exact(k.clone())),
        (None, Some(p)) => Some(KeyScope::Prefix(p.clone())),
        (None, None) => None,
    };
    cap.methods = r.methods.as_ref().map(|m| m.iter().cloned().collect());
    if let Some(names) = &r.rights {
        cap.rights = Some(names.join(",").parse().map_err(bad)?);
    }
    cap.expires_at = r.expires_in_secs.map(|s| unix_now().saturating_add(s));
    Ok(cap)
}

async fn mint(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let presented = bearer(&req)?;
    let verified = cp
        .authority
        .check_right(&presented, Rights::MINT)
        .map_err(ApiError::from)?;
    let body = read_body(req.into_body(), super::MAX_BODY).await?;
    let request: MintRequest = parse_json(&body)?;
    let mut wanted = requested_capability(&request)?;
    if let Some(audience) = &wanted.audience
        && let Some(prefix) = RESERVED_AUDIENCES
            .iter()
            .find(|p| audience.starts_with(**p))
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "forbidden: audience `{audience}` starts with `{prefix}`, which names a principal only Latchkey itself establishes (a node, an actor, an enrolment); it cannot be minted"
            ),
        ));
    }
    if wanted.rights.is_some_and(|r| r.contains(Rights::NODE)) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "forbidden: the `node` right is only granted by enrolment capabilities (`latchkey node-enrolment <node-id>`); the mint API never grants it",
        ));
    }
    // Never the node right, even where the minter's rights are unrestricted.
    wanted.rights = Some(
        wanted
            .rights
            .unwrap_or_else(|| verified.capability().granted_rights())
            .difference(Rights::NODE),
    );
    // The new token is the caller's capability narrowed by the request: never wider.
    let granted = verified.capability().narrow(&wanted).map_err(|field| {
        ApiError::new(
            ErrorCode::Forbidden,
            format!("forbidden: the requested {field} is wider than your token's"),
        )
    })?;
    // It extends the minter's own chain, so revoking the minter (or anything it was made from)
    // revokes it too.
    let parent = Token::from_presented(&presented)
        .map_err(|e| ApiError::new(ErrorCode::Unauthenticated, format!("invalid token: {e}")))?;
    if parent.is_sealed() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a sealed token cannot mint: a minted token extends its minter's chain (so it dies with it), and a sealed chain cannot be extended; present the unsealed token",
        ));
    }
    let token = parent
        .attenuate(&wanted)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("cannot mint: {e}")))?;
    let token_id = token.token_id();
    Ok(json(
        StatusCode::CREATED,
        &MintResponse {
            token: token.to_text(),
            token_id: token_id.to_string(),
            expires_at: granted.expires_at,
        },
    ))
}

async fn revoke(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let caller = bearer(&req)?;
    let body = read_body(req.into_body(), super::MAX_BODY).await?;
    let request: RevokeRequest = parse_json(&body)?;
    let token_id = match (&request.token_id, &request.token) {
        (Some(id), None) => {
            cp.authority
                .check(&caller, &Access::new(Rights::REVOKE))
                .map_err(ApiError::from)?;
            id.parse::<RevocationId>()
                .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?
        }
        (None, Some(text)) => {
            let revoker = cp
                .authority
                .check_right(&caller, Rights::REVOKE)
                .map_err(ApiError::from)?;
            let target = Token::from_text(text).map_err(|e| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("cannot read the token to revoke: {e}"),
                )
            })?;
            let target = latchkey_caps::verify(
                &target,
                &cp.authority.trusted_keys(),
                &latchkey_caps::NoRevocations,
                unix_now(),
            )
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("the token to revoke is not valid: {e}"),
                )
            })?;
            // A scoped revoker may revoke tokens that reach only actors and methods its own
            // token reaches (rights, times and audience aside). Both are whole capabilities: a
            // field the target leaves unset is unrestricted, so only an unrestricted revoker
            // covers it.
            if let Err(field) = revoker
                .capability()
                .scope()
                .covers(&target.capability().scope())
            {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "forbidden: the token to revoke reaches beyond your token's scope (its {field} is wider)"
                    ),
                ));
            }
            target.token_id()
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "give exactly one of `token_id` or `token`",
            ));
        }
    };
    let registry = Arc::clone(&cp.registry);
    let reason = request.reason.clone();
    let id_text = token_id.to_string();
    let info = blocking(move || registry.revoke(&id_text, reason.as_deref())).await?;
    cp.authority.revoked(token_id);
    cp.feed_changed();
    Ok(json(StatusCode::OK, &info))
}
