//! The provider: its configuration (control-plane URL, admin token and the CA file trusted for
//! `https://`, from the `provider` block or the environment) and the client every resource and
//! data source shares.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use latchkey_wire::client::Client;
use latchkey_wire::tls::Trust;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{ValueEmpty, ValueString};
use tf_provider::{Diagnostics, DynamicDataSource, DynamicResource, Provider};

use crate::diag::attribute_error;
use crate::managed::Managing;
use crate::schema::{Set, attr, block, secret};

/// Environment variable with the control plane's URL (the CLI reads it too).
pub const ENDPOINT_ENV: &str = "LATCHKEY_CONTROL_PLANE";
/// Environment variable with the admin token (the CLI reads it too).
pub const TOKEN_ENV: &str = "LATCHKEY_TOKEN";
/// Environment variable with the CA certificate file for `https://` (the CLI reads it too).
pub const CA_FILE_ENV: &str = "LATCHKEY_CA_FILE";

/// The client, once Terraform has configured the provider.
#[derive(Clone, Default)]
pub(crate) struct Shared(Arc<RwLock<Option<Client>>>);

impl Shared {
    /// The configured client, or an error diagnostic saying the provider is not configured.
    pub(crate) fn client(&self, diags: &mut Diagnostics) -> Option<Client> {
        let client = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if client.is_none() {
            diags.root_error(
                "the latchkey provider is not configured",
                format!(
                    "Set `endpoint` and `token` in its provider block (or {ENDPOINT_ENV} and {TOKEN_ENV}); \
                     if they come from other resources, apply those first."
                ),
            );
        }
        client
    }

    fn set(&self, client: Client) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(client);
    }
}

/// The Latchkey provider.
#[derive(Default)]
pub struct LatchkeyProvider {
    shared: Shared,
}

/// The `provider "latchkey"` block.
#[derive(Serialize, Deserialize)]
pub struct Config<'a> {
    endpoint: ValueString<'a>,
    token: ValueString<'a>,
    ca_file: ValueString<'a>,
}

/// A setting from the configuration, else from the environment; `Err` if it is unknown yet.
fn setting(value: ValueString<'_>, env: &str) -> Result<Option<String>, ()> {
    match value {
        tf_provider::value::Value::Value(v) => Ok(Some(v.into_owned())),
        tf_provider::value::Value::Unknown => Err(()),
        tf_provider::value::Value::Null => Ok(std::env::var(env).ok().filter(|v| !v.is_empty())),
    }
}

#[async_trait]
impl Provider for LatchkeyProvider {
    type Config<'a> = Config<'a>;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: block(
                "Manages a Latchkey deployment (modules, deployments, tokens, regions) through its control plane's admin API.",
                vec![
                    (
                        "endpoint",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "The control plane's base URL, e.g. `http://cp.internal:7070`. Default: the `LATCHKEY_CONTROL_PLANE` environment variable.",
                        ),
                    ),
                    (
                        "token",
                        secret(attr(
                            AttributeType::String,
                            Set::Optional,
                            "A capability token (`lk1.…`) with the rights the managed resources need (`deploy`, `mint`, `revoke`, `admin`). Default: the `LATCHKEY_TOKEN` environment variable.",
                        )),
                    ),
                    (
                        "ca_file",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "A PEM file of the CA certificates to trust for an `https://` endpoint. Default: the `LATCHKEY_CA_FILE` environment variable, else the operating system's trust store.",
                        ),
                    ),
                ],
            ),
        })
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        // Unknown settings (from resources not created yet): stay unconfigured; resources that
        // need the client then say so.
        let (Ok(endpoint), Ok(token), Ok(ca_file)) = (
            setting(config.endpoint, ENDPOINT_ENV),
            setting(config.token, TOKEN_ENV),
            setting(config.ca_file, CA_FILE_ENV),
        ) else {
            return Some(());
        };
        let Some(endpoint) = endpoint else {
            attribute_error(
                diags,
                "endpoint",
                Cow::Owned(format!(
                    "no control-plane URL: set `endpoint` or {ENDPOINT_ENV}"
                )),
            );
            return None;
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            attribute_error(
                diags,
                "endpoint",
                Cow::Owned(format!("`{endpoint}` is not an http:// or https:// URL")),
            );
            return None;
        }
        let Some(token) = token else {
            attribute_error(
                diags,
                "token",
                Cow::Owned(format!("no admin token: set `token` or {TOKEN_ENV}")),
            );
            return None;
        };
        let trust = match &ca_file {
            None => Trust::for_url(&endpoint),
            Some(path) => match Trust::ca_file(std::path::Path::new(path)) {
                Ok(trust) => trust,
                Err(e) => {
                    attribute_error(
                        diags,
                        "ca_file",
                        Cow::Owned(format!("cannot use `{path}` as the CA file: {e}")),
                    );
                    return None;
                }
            },
        };
        self.shared
            .set(Client::with_trust(&endpoint, &token, &trust));
        Some(())
    }

    fn get_resources(
        &self,
        _: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        // Terraform names them `latchkey_<key>`.
        let s = &self.shared;
        Some(HashMap::from([
            (
                "module".to_owned(),
                Box::new(Managing(crate::module::ModuleResource(s.clone())))
                    as Box<dyn DynamicResource>,
            ),
            (
                "deployment".to_owned(),
                Box::new(Managing(crate::deployment::DeploymentResource(s.clone()))),
            ),
            (
                "token".to_owned(),
                Box::new(Managing(crate::token::TokenResource(s.clone()))),
            ),
            (
                "region".to_owned(),
                Box::new(Managing(crate::region::RegionResource(s.clone()))),
            ),
        ]))
    }

    fn get_data_sources(
        &self,
        _: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        // Terraform names them `latchkey_<key>`.
        let s = &self.shared;
        Some(HashMap::from([
            (
                "nodes".to_owned(),
                Box::new(crate::data::NodesData(s.clone())) as Box<dyn DynamicDataSource>,
            ),
            (
                "module".to_owned(),
                Box::new(crate::data::ModuleData(s.clone())),
            ),
        ]))
    }
}
