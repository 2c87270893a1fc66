//! `latchkey dev`'s inner loop: build an actor project, upload the component and deploy it when it
//! changed, and do it again whenever a watched source changes. A deploy is the ordinary hot
//! upgrade: live actors switch to the new version between calls and keep their state. A failed
//! build leaves the running version in place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use latchkey_wire::ErrorCode;
use latchkey_wire::client::Client;
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use serde_json::json;
use tokio::sync::watch;

use crate::dev::{Report, shown};
use crate::output::short;
use crate::project::Project;

/// How long sources must be quiet before a rebuild (an editor's save is several events).
const QUIET: Duration = Duration::from_millis(300);

/// Longest a deploy may take to reach the node.
const REACH_NODE: Duration = Duration::from_secs(60);

/// Builds and deploys projects, one build at a time.
pub(crate) struct Deployer {
    admin: Client,
    report: Report,
    /// The node's deployments in effect (actor type → revision).
    in_effect: watch::Receiver<HashMap<String, u64>>,
    /// Actor type → the content id last deployed from here.
    deployed: Mutex<HashMap<String, String>>,
    turn: tokio::sync::Mutex<()>,
}

impl Deployer {
    pub(crate) fn new(
        admin: &Client,
        report: Report,
        in_effect: watch::Receiver<HashMap<String, u64>>,
    ) -> Self {
        Deployer {
            admin: admin.with_timeout(Duration::from_secs(300)),
            report,
            in_effect,
            deployed: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Builds `project` and deploys what it built if it differs from the version deployed from
    /// here. Reports every step; says whether a new version went live.
    pub(crate) async fn deploy(&self, project: &Project) -> bool {
        let _turn = self.turn.lock().await;
        let actor_type = &project.actor_type;
        self.report.status(
            &format!("building `{actor_type}` ({})…", shown(&project.dir)),
            "building",
            json!({ "actor_type": actor_type }),
        );
        let built = {
            let project = project.clone();
            tokio::task::spawn_blocking(move || project.build()).await
        };
        let component = match built.map_err(anyhow::Error::from).and_then(|b| b) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.report.status(
                    &format!("`{actor_type}` did not build: {e:#}; the running version stays"),
                    "build_failed",
                    json!({ "actor_type": actor_type, "error": format!("{e:#}") }),
                );
                return false;
            }
        };
        match self.go_live(actor_type, component).await {
            Ok(Some((content_id, revision))) => {
                self.report.status(
                    &format!(
                        "deployed `{actor_type}` {} (revision {revision}); live actors switch to it between calls, keeping their state",
                        short(&content_id)
                    ),
                    "deployed",
                    json!({ "actor_type": actor_type, "version": content_id, "revision": revision }),
                );
                true
            }
            Ok(None) => {
                self.report.status(
                    &format!("`{actor_type}` built the same component; nothing to deploy"),
                    "unchanged",
                    json!({ "actor_type": actor_type }),
                );
                false
            }
            Err(e) => {
                self.report.status(
                    &format!("`{actor_type}` was not deployed: {e:#}"),
                    "deploy_failed",
                    json!({ "actor_type": actor_type, "error": format!("{e:#}") }),
                );
                false
            }
        }
    }

    /// Uploads and deploys `component` unless it is what runs already: `(content id, revision)`.
    async fn go_live(
        &self,
        actor_type: &str,
        component: Vec<u8>,
    ) -> anyhow::Result<Option<(String, u64)>> {
        let module = self
            .admin
            .upload_module(component)
            .await
            .context("uploading the component")?;
        let known = self
            .deployed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(actor_type)
            .cloned();
        let last = match known {
            Some(last) => Some(last),
            // What an earlier run of `latchkey dev` on this data directory left deployed.
            None => match self.admin.deployment(actor_type).await {
                Ok(detail) => detail.deployment.active,
                Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
                Err(e) => return Err(e).context("reading the deployment"),
            },
        };
        if last.as_deref() == Some(module.content_id.as_str()) {
            self.remember(actor_type, &module.content_id);
            return Ok(None);
        }
        let info = self
            .admin
            .deploy(actor_type, &module.content_id, Some("latchkey dev"))
            .await
            .context("deploying it")?;
        self.remember(actor_type, &module.content_id);
        let mut in_effect = self.in_effect.clone();
        let reached =
            in_effect.wait_for(|m| m.get(actor_type).is_some_and(|r| *r >= info.revision));
        match tokio::time::timeout(REACH_NODE, reached).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => anyhow::bail!("the edge node stopped"),
            Err(_) => anyhow::bail!(
                "deployed (revision {}), but the edge node had not switched to it after {REACH_NODE:?}",
                info.revision
            ),
        }
        Ok(Some((module.content_id, info.revision)))
    }

    fn remember(&self, actor_type: &str, content_id: &str) {
        self.deployed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(actor_type.to_owned(), content_id.to_owned());
    }
}

/// Watching the projects' sources; stops when dropped.
pub(crate) struct Watching {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

/// The paths an event changed, if it changed contents or names (not a read, not metadata: the
/// build itself reads every source).
fn changed_paths(event: Event) -> Option<Vec<PathBuf>> {
    match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => Some(event.paths),
        EventKind::Modify(ModifyKind::Metadata(_)) => None,
        EventKind::Modify(_) => Some(event.paths),
        EventKind::Access(_) | EventKind::Any | EventKind::Other => None,
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches every project's sources; a change rebuilds and redeploys the projects it touched.
pub(crate) fn start(projects: &[Project], deployer: Arc<Deployer>) -> anyhow::Result<Watching> {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if let Some(paths) = event.ok().and_then(changed_paths) {
            let _ = changed.send(paths);
        }
    })
    .context("starting to watch the sources")?;
    for project in projects {
        for (path, recursive) in project.watched() {
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(&path, mode)
                .with_context(|| format!("watching {}", path.display()))?;
        }
    }
    let projects = projects.to_vec();
    let task = tokio::spawn(async move {
        while let Some(mut paths) = changes.recv().await {
            // An editor's save is several events: wait until the sources are quiet.
            while let Ok(Some(more)) = tokio::time::timeout(QUIET, changes.recv()).await {
                paths.extend(more);
            }
            for project in &projects {
                if paths.iter().any(|p| p.starts_with(&project.dir)) {
                    deployer.deploy(project).await;
                }
            }
        }
    });
    Ok(Watching {
        _watcher: watcher,
        task,
    })
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};

    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new(kind).add_path(PathBuf::from("/p/src/lib.rs"))
    }

    #[test]
    fn reads_and_metadata_are_not_changes() {
        assert!(changed_paths(event(EventKind::Access(AccessKind::Any))).is_none());
        assert!(
            changed_paths(event(EventKind::Modify(ModifyKind::Metadata(
                MetadataKind::AccessTime
            ))))
            .is_none()
        );
        assert_eq!(
            changed_paths(event(EventKind::Modify(ModifyKind::Data(
                DataChange::Content
            )))),
            Some(vec![PathBuf::from("/p/src/lib.rs")])
        );
        assert!(changed_paths(event(EventKind::Create(CreateKind::File))).is_some());
    }
}
