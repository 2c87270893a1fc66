//! The human form of the admin API's answers: a few aligned lines for one object, a table for a
//! list. Pure functions of the answer (and the control plane's clock), so they are tested as such.

use latchkey_wire::admin::{
    ActivationInfo, DeploymentDetail, DeploymentInfo, MintResponse, ModuleInfo, NodeInfo,
    RegionInfo,
};

use crate::output::{Times, bytes, clean, date, or_dash, short, table, yes};

/// `label  value` lines, the values aligned.
fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(label, value)| format!("{label:<width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fraction as a percentage, to two decimals at most (`0.05` → `5`, `0.125` → `12.5`).
fn percent(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// An actor type's deployment.
pub(crate) fn deployment(d: &DeploymentInfo) -> String {
    let canary = d.canary.as_ref().map_or_else(
        || "-".to_owned(),
        |c| {
            format!(
                "{} on {:.2}% of keys",
                short(&c.version),
                f64::from(c.basis_points) / 100.0
            )
        },
    );
    let p = &d.policy;
    fields(&[
        ("actor type", clean(&d.actor_type).into_owned()),
        (
            "active",
            d.active
                .as_deref()
                .map_or_else(|| "- (not deployed)".to_owned(), |v| short(v).to_owned()),
        ),
        ("previous", or_dash(d.previous.as_deref().map(short))),
        ("canary", canary),
        (
            "rollback",
            format!(
                "when more than {}% of at least {} calls within {} s fail",
                percent(p.max_error_rate),
                p.min_calls,
                p.window_secs
            ),
        ),
        ("revision", d.revision.to_string()),
    ])
}

/// A deployment and its history, newest first.
pub(crate) fn deployment_detail(detail: &DeploymentDetail, times: &Times) -> String {
    let history = table(
        ["WHEN", "ACTION", "VERSION", "FROM", "REASON"],
        detail
            .history
            .iter()
            .map(|h| {
                [
                    times.date(h.at),
                    h.action.clone(),
                    or_dash(h.version.as_deref().map(short)),
                    or_dash(h.from.as_deref().map(short)),
                    or_dash(h.reason.as_deref()),
                ]
            })
            .collect(),
    );
    format!("{}\n\n{history}", deployment(&detail.deployment))
}

/// Uploaded modules.
pub(crate) fn modules(modules: &[ModuleInfo], times: &Times) -> String {
    table(
        ["CONTENT ID", "SIZE", "UPLOADED", "EXPORTS"],
        modules
            .iter()
            .map(|m| {
                [
                    short(&m.content_id).to_owned(),
                    bytes(m.size),
                    times.date(m.uploaded_at),
                    m.exports.join(", "),
                ]
            })
            .collect(),
    )
}

/// Nodes, with the age of their last heartbeat.
pub(crate) fn nodes(nodes: &[NodeInfo], times: &Times) -> String {
    table(
        [
            "ID",
            "REGION",
            "ADDRESS",
            "EPOCH",
            "LAST HEARTBEAT",
            "LIVE",
            "ELIGIBLE",
        ],
        nodes
            .iter()
            .map(|n| {
                [
                    clean(&n.id).into_owned(),
                    clean(&n.region).into_owned(),
                    clean(&n.address).into_owned(),
                    n.epoch.to_string(),
                    times.ago(n.last_heartbeat),
                    yes(n.live),
                    yes(n.eligible),
                ]
            })
            .collect(),
    )
}

/// Activations.
pub(crate) fn activations(list: &[ActivationInfo]) -> String {
    table(
        ["TYPE", "KEY", "NODE", "VERSION", "LIVE"],
        list.iter()
            .map(|a| {
                [
                    clean(&a.actor_type).into_owned(),
                    clean(&a.key).into_owned(),
                    clean(&a.node_id).into_owned(),
                    short(&a.module_version).to_owned(),
                    yes(a.live),
                ]
            })
            .collect(),
    )
}

/// What to say about a minted token besides the token itself.
pub(crate) fn minted(m: &MintResponse) -> String {
    let expiry = m.expires_at.map_or_else(
        || "does not expire".to_owned(),
        |at| format!("expires {}", date(at.saturating_mul(1_000_000))),
    );
    format!("token id {}; {expiry}", m.token_id)
}

/// Declared regions.
pub(crate) fn regions(regions: &[RegionInfo], times: &Times) -> String {
    table(
        ["NAME", "WEIGHT", "JURISDICTION", "UPDATED"],
        regions
            .iter()
            .map(|r| {
                [
                    clean(&r.name).into_owned(),
                    r.placement_weight.to_string(),
                    or_dash(r.jurisdiction.as_deref()),
                    times.date(r.updated_at),
                ]
            })
            .collect(),
    )
}

/// One region.
pub(crate) fn region(r: &RegionInfo) -> String {
    format!(
        "region {}: placement weight {}, jurisdiction {}",
        clean(&r.name),
        r.placement_weight,
        or_dash(r.jurisdiction.as_deref())
    )
}

#[cfg(test)]
mod tests {
    use latchkey_wire::admin::{CanaryInfo, ClockInfo, HistoryEntry, RollbackPolicy};

    use super::*;

    fn times() -> Times {
        Times(ClockInfo {
            version: 100_000_000,
            unix_micros: 1_764_600_000_000_000,
        })
    }

    #[test]
    fn a_deployment_shows_short_versions_and_its_policy_in_words() {
        let d = DeploymentInfo {
            actor_type: "counter".into(),
            active: Some("a".repeat(64)),
            previous: None,
            canary: Some(CanaryInfo {
                version: "b".repeat(64),
                basis_points: 1000,
            }),
            policy: RollbackPolicy::default(),
            revision: 3,
        };
        let text = deployment(&d);
        assert!(text.contains("active      aaaaaaaaaaaa\n"), "{text}");
        assert!(text.contains("previous    -\n"), "{text}");
        assert!(text.contains("bbbbbbbbbbbb on 10.00% of keys"), "{text}");
        assert!(
            text.contains("more than 5% of at least 100 calls within 60 s"),
            "{text}"
        );
        let detail = DeploymentDetail {
            deployment: d,
            history: vec![HistoryEntry {
                at: 97_000_000,
                action: "deploy".into(),
                version: Some("a".repeat(64)),
                from: None,
                reason: Some("first\x1b[31m".into()),
            }],
        };
        let text = deployment_detail(&detail, &times());
        assert!(text.contains("2025-12-01T14:39:57Z"), "{text}");
        assert!(text.contains("first\\u{1b}[31m"), "escaped: {text}");
    }

    #[test]
    fn percentages_drop_float_noise() {
        assert_eq!(percent(0.05), "5");
        assert_eq!(percent(0.07), "7");
        assert_eq!(percent(0.125), "12.5");
        assert_eq!(percent(1.0), "100");
    }

    #[test]
    fn nodes_show_heartbeats_as_ages_not_versions() {
        let node = NodeInfo {
            id: "n1".into(),
            region: "eu".into(),
            address: "127.0.0.1:8080".into(),
            epoch: 7,
            last_heartbeat: 99_600_000,
            streak: 4,
            live: true,
            eligible: false,
        };
        let text = nodes(&[node], &times());
        let row: Vec<&str> = text
            .lines()
            .nth(1)
            .expect("a row")
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                "n1",
                "eu",
                "127.0.0.1:8080",
                "7",
                "400",
                "ms",
                "ago",
                "yes",
                "no"
            ],
            "{text}"
        );
    }
}
