//! The Terraform provider for Latchkey (`latchkey-dev/latchkey`): resources `latchkey_module`,
//! `latchkey_deployment`, `latchkey_token` and `latchkey_region`, data sources `latchkey_nodes`
//! and `latchkey_module`, over the control plane's admin API. The binary
//! `terraform-provider-latchkey` serves it to Terraform (plugin protocol 6).
//!
//! Decisions that do not need I/O — what a deployment change takes ([`rollout`]), how a
//! control-plane error becomes a diagnostic ([`diag`]), what a number Terraform sends means
//! ([`number`]) — are plain functions, tested without Terraform; `tests/apply.rs` runs real
//! `terraform` against a real control plane and edge node.

mod data;
mod deployment;
pub mod diag;
mod managed;
mod module;
pub mod number;
mod provider;
mod region;
pub mod rollout;
mod schema;
mod token;

pub use provider::{CA_FILE_ENV, ENDPOINT_ENV, LatchkeyProvider, TOKEN_ENV};

/// Serves the provider to Terraform until Terraform stops it.
pub async fn serve() -> anyhow::Result<()> {
    tf_provider::serve("latchkey", LatchkeyProvider::default()).await
}
