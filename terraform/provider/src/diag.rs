//! Control-plane errors as Terraform diagnostics: the operation, the API's own message, and the
//! attribute the error concerns, so Terraform points at the line of configuration to fix.

use std::borrow::Cow;

use latchkey_wire::ErrorCode;
use latchkey_wire::client::ClientError;
use tf_provider::{AttributePath, Diagnostic, Diagnostics};

/// Reports a failed control-plane call: `what` names the operation, `attribute` the attribute
/// it concerns (`None`: the resource as a whole).
pub fn api_error(
    diags: &mut Diagnostics,
    what: &str,
    attribute: Option<&'static str>,
    error: &ClientError,
) {
    let summary = format!("{what}: {}", summary(error));
    let detail = detail(error);
    let path = attribute.map_or_else(AttributePath::root, AttributePath::new);
    diags.add_error(Diagnostic::new(summary, detail, path));
}

/// A configuration error on `attribute`.
pub fn attribute_error(
    diags: &mut Diagnostics,
    attribute: &'static str,
    summary: impl Into<Cow<'static, str>>,
) {
    diags.add_error(Diagnostic::new(
        summary,
        String::new(),
        AttributePath::new(attribute),
    ));
}

/// A configuration error at `path` (e.g. a field of an object attribute).
pub fn path_error(
    diags: &mut Diagnostics,
    path: AttributePath,
    summary: impl Into<Cow<'static, str>>,
) {
    diags.add_error(Diagnostic::new(summary, String::new(), path));
}

/// The outcome of a deletion: done, also if the control plane no longer had it (`404`).
pub(crate) fn removed<T>(
    diags: &mut Diagnostics,
    what: &str,
    result: Result<T, ClientError>,
) -> Option<()> {
    match result {
        Ok(_) => Some(()),
        Err(e) if e.code() == Some(ErrorCode::NotFound) => Some(()),
        Err(e) => {
            api_error(diags, what, None, &e);
            None
        }
    }
}

fn summary(error: &ClientError) -> String {
    match error {
        ClientError::Api(e) => format!("{} (HTTP {})", e.message, e.code.status()),
        other => other.to_string(),
    }
}

fn detail(error: &ClientError) -> String {
    match error.code() {
        Some(ErrorCode::Unauthenticated) => {
            "The control plane did not accept the provider's token: check `token` (or LATCHKEY_TOKEN).".into()
        }
        Some(ErrorCode::Forbidden) => {
            "The provider's token does not grant this: it needs the right named above, on this actor type.".into()
        }
        None if error.is_retryable() => {
            "The control plane could not be reached: check `endpoint` (or LATCHKEY_CONTROL_PLANE) and that it is running.".into()
        }
        _ if error.is_retryable() => "The control plane says this may succeed if retried.".into(),
        _ => String::new(),
    }
}

/// Which attribute of `latchkey_token` a mint refusal names (the control plane's message says
/// "the requested <field> is wider than your token's"); `exact_key`: the configuration sets
/// `key` rather than `key_prefix`.
pub fn mint_attribute(message: &str, exact_key: bool) -> Option<&'static str> {
    [
        ("actor type", "actor_type"),
        ("key scope", if exact_key { "key" } else { "key_prefix" }),
        ("methods", "methods"),
        ("rights", "rights"),
        ("expiry", "expires_in"),
        ("audience", "audience"),
    ]
    .into_iter()
    .find(|(needle, _)| message.contains(needle))
    .map(|(_, attribute)| attribute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::ApiError;

    #[test]
    fn an_api_error_keeps_its_message_and_points_at_the_attribute() {
        let mut diags = Diagnostics::default();
        let e = ClientError::Api(ApiError::new(
            ErrorCode::NotFound,
            "no module with content id abc; upload it first",
        ));
        api_error(&mut diags, "deploying `counter`", Some("version"), &e);
        let d = &diags.errors[0];
        assert_eq!(
            d.summary,
            "deploying `counter`: no module with content id abc; upload it first (HTTP 404)"
        );
        assert_eq!(d.attribute, AttributePath::new("version"));
    }

    #[test]
    fn an_unreachable_control_plane_says_where_to_look() {
        let mut diags = Diagnostics::default();
        let e = ClientError::Transport {
            url: "http://127.0.0.1:1/v1/regions/eu".into(),
            message: "connection refused".into(),
        };
        api_error(&mut diags, "reading region `eu`", None, &e);
        assert!(diags.errors[0].detail.contains("endpoint"));
    }

    #[test]
    fn mint_refusals_name_their_attribute() {
        // The control plane's words for each field (`latchkey_caps::Field`'s Display).
        let refusal = |field: latchkey_caps::Field| {
            format!("forbidden: the requested {field} is wider than your token's")
        };
        let m = |field, exact| mint_attribute(&refusal(field), exact);
        use latchkey_caps::Field;
        assert_eq!(m(Field::ActorType, false), Some("actor_type"));
        assert_eq!(m(Field::Keys, false), Some("key_prefix"));
        assert_eq!(m(Field::Keys, true), Some("key"));
        assert_eq!(m(Field::Methods, false), Some("methods"));
        assert_eq!(m(Field::Rights, false), Some("rights"));
        assert_eq!(m(Field::ExpiresAt, false), Some("expires_in"));
        assert_eq!(m(Field::Audience, false), Some("audience"));
        assert_eq!(mint_attribute("something else", false), None);
    }
}
