//! `latchkey tail`: follows actors' log lines and call outcomes on every node, as they happen,
//! through the control plane (`GET /v1/tail`, server-sent events; the token needs the `tail`
//! right and bounds what can be followed). Reconnects when the control plane goes away.

use std::time::Duration;

use anyhow::Context as _;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use http_body_util::BodyStream;
use latchkey_wire::ApiError;
use latchkey_wire::path::query_value;
use latchkey_wire::tail::{LineKind, TailLine, TailMessage};

use crate::admin::{Scope, Target, note};
use crate::output::{clean, span};

/// Arguments of `latchkey tail`: which actors and methods (with `--methods`, hooks are left
/// out), and the control plane.
#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    target: Target,
}

impl TailArgs {
    /// `/v1/tail?…` for these filters.
    fn path(&self) -> String {
        let mut query = Vec::new();
        let mut add = |name: &str, value: &str| {
            query.push(format!("{name}={}", query_value(value)));
        };
        let scope = &self.scope;
        if let Some(t) = &scope.actor_type {
            add("actor_type", t);
        }
        if let Some(k) = &scope.key {
            add("key", k);
        }
        if let Some(p) = &scope.key_prefix {
            add("key_prefix", p);
        }
        if let Some(m) = &scope.methods {
            add("methods", &m.join(","));
        }
        if query.is_empty() {
            "/v1/tail".to_owned()
        } else {
            format!("/v1/tail?{}", query.join("&"))
        }
    }
}

/// How one stream ended.
enum End {
    /// The connection closed or broke: connect again.
    Reconnect(String),
    /// The control plane refused or ended the session for good.
    Refused(anyhow::Error),
}

/// Runs `latchkey tail` until interrupted (or refused).
pub(crate) async fn run(args: TailArgs, json: bool) -> anyhow::Result<()> {
    let client = args.target.client()?;
    let path = args.path();
    let mut backoff = Duration::from_millis(200);
    loop {
        match follow(&client, &path, json).await {
            End::Refused(e) => return Err(e),
            End::Reconnect(why) => {
                note(&format!(
                    "tail: {why}; reconnecting in {}",
                    span(backoff.as_micros() as u64)
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Follows one stream until it ends.
async fn follow(client: &latchkey_wire::client::Client, path: &str, json: bool) -> End {
    let body = match client.stream(path).await {
        Ok(body) => body,
        Err(e) if e.is_retryable() => return End::Reconnect(e.to_string()),
        Err(e) => return End::Refused(anyhow::Error::new(e).context("starting the tail")),
    };
    let bytes = BodyStream::new(body).filter_map(|frame| {
        futures::future::ready(match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(e) => Some(Err(e)),
        })
    });
    let mut events = bytes.eventsource();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => return End::Reconnect(format!("the stream broke: {e}")),
        };
        if event.event == "error" {
            let error = serde_json::from_str::<ApiError>(&event.data)
                .map_or_else(|_| anyhow::anyhow!("{}", event.data), anyhow::Error::new);
            return End::Refused(error.context("the control plane ended the tail"));
        }
        let message = match serde_json::from_str::<TailMessage>(&event.data)
            .with_context(|| format!("unexpected tail message `{}`", clean(&event.data)))
        {
            Ok(message) => message,
            Err(e) => return End::Refused(e),
        };
        print(&message, json);
    }
    End::Reconnect("the control plane closed the stream".into())
}

/// Prints one message: lines on stdout, the rest as remarks on stderr (all on stdout with
/// `--json`, one object per line).
fn print(message: &TailMessage, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(message).expect("tail messages serialise")
        );
        return;
    }
    match message {
        TailMessage::Started { filter, live_nodes } => note(&format!(
            "tailing {} (live nodes: {})",
            describe(filter),
            if live_nodes.is_empty() {
                "none".to_owned()
            } else {
                live_nodes.join(", ")
            }
        )),
        TailMessage::Following { node } => note(&format!("following {}", clean(node))),
        TailMessage::Dropped { at, count } => {
            note(&format!("… {count} events dropped at {}", clean(at)));
        }
        TailMessage::Line(line) => println!("{}", format_line(line)),
    }
}

/// What a filter follows, in words.
fn describe(filter: &latchkey_wire::tail::TailFilter) -> String {
    use latchkey_wire::tail::KeyFilter;
    let actors = filter.actor_type.as_deref().map_or_else(
        || "every actor type".to_owned(),
        |t| format!("`{}`", clean(t)),
    );
    let keys = match &filter.keys {
        None => "every key".to_owned(),
        Some(KeyFilter::Exact(k)) => format!("key `{}`", clean(k)),
        Some(KeyFilter::Prefix(p)) => format!("keys starting with `{}`", clean(p)),
    };
    let methods = filter
        .methods
        .as_ref()
        .map_or_else(String::new, |m| format!(", methods {}", m.join(", ")));
    format!("{actors}, {keys}{methods}")
}

/// One line of output: `15:30:12.345 dev-node counter/my-first inc#17 info  text`.
pub(crate) fn format_line(line: &TailLine) -> String {
    let time =
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(line.at_ms))
            .to_string();
    let time = time.get(11..23).unwrap_or(&time).to_owned();
    let call = match (&line.method, &line.hook) {
        (Some(m), _) => clean(m).into_owned(),
        (None, Some(h)) => format!("({h})"),
        (None, None) => "(call)".to_owned(),
    };
    let what = match &line.what {
        LineKind::Log { level, message } => format!("{:<5} {}", level.as_str(), clean(message)),
        LineKind::Outcome {
            outcome,
            message,
            micros,
        } => match message {
            Some(m) => format!("=> {outcome} in {}: {}", span(*micros), clean(m)),
            None => format!("=> {outcome} in {}", span(*micros)),
        },
    };
    format!(
        "{time} {} {}/{} {call}#{} {what}",
        clean(&line.node),
        clean(&line.actor_type),
        clean(&line.key),
        line.call_id
    )
}

#[cfg(test)]
mod tests {
    use latchkey_wire::tail::Level;

    use super::*;

    fn args(argv: &[&str]) -> TailArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            tail: TailArgs,
        }
        Wrap::parse_from(std::iter::once("tail").chain(argv.iter().copied())).tail
    }

    #[test]
    fn filters_become_an_encoded_query() {
        assert_eq!(args(&[]).path(), "/v1/tail");
        assert_eq!(
            args(&[
                "--actor-type",
                "counter",
                "--key",
                "user/1",
                "--methods",
                "get,inc"
            ])
            .path(),
            "/v1/tail?actor_type=counter&key=user%2F1&methods=get%2Cinc"
        );
    }

    #[test]
    fn lines_name_the_call_the_level_and_escape_the_text() {
        let line = TailLine {
            node: "n1".into(),
            at_ms: 1_764_600_012_345,
            actor_type: "counter".into(),
            key: "k".into(),
            call_id: 17,
            method: Some("inc".into()),
            hook: None,
            what: LineKind::Log {
                level: Level::Warn,
                message: "careful\x1b[2J".into(),
            },
        };
        assert_eq!(
            format_line(&line),
            "14:40:12.345 n1 counter/k inc#17 warn  careful\\u{1b}[2J"
        );
        let outcome = TailLine {
            method: None,
            hook: Some("activate".into()),
            what: LineKind::Outcome {
                outcome: "actor_failed".into(),
                message: Some("no".into()),
                micros: 1_500,
            },
            ..line
        };
        assert_eq!(
            format_line(&outcome),
            "14:40:12.345 n1 counter/k (activate)#17 => actor_failed in 1.5 ms: no"
        );
    }
}
