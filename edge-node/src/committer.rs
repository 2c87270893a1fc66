//! Node-side group commit: the commits of all activations waiting at one moment go to the
//! control plane in one request (`state/commit-batch`), which checks each on its own fence and
//! applies them in one transaction. Durable calls are then bounded by batches, not by a round
//! trip and a transaction each. A few batches are in flight at once so the next one gathers
//! while the control plane syncs the last. `max_commit_batch = 1` sends each commit alone.

use std::sync::Arc;

use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::limits::{MAX_COMMIT_BATCH, MAX_COMMIT_BATCH_BYTES};
use latchkey_wire::node::{CommitBatchRequest, CommitRequest, CommitResponse};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Batches in flight at once.
const IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<CommitResponse, ClientError>>;

/// Sends commits to the control plane, batched.
pub(crate) struct Committer {
    cp: Client,
    node_id: String,
    /// `None` when batching is off.
    queue: Option<mpsc::UnboundedSender<(CommitRequest, Reply)>>,
}

impl Committer {
    /// Starts the batching task (unless `max_batch` is 1).
    pub(crate) fn new(cp: Client, node_id: &str, max_batch: usize) -> Self {
        let max_batch = max_batch.clamp(1, MAX_COMMIT_BATCH);
        let queue = (max_batch > 1).then(|| {
            let (queue, waiting) = mpsc::unbounded_channel();
            tokio::spawn(gather(cp.clone(), node_id.to_owned(), max_batch, waiting));
            queue
        });
        Committer {
            cp,
            node_id: node_id.to_owned(),
            queue,
        }
    }

    /// Commits `request` (in the next batch), with the answer `state/commit` would give.
    pub(crate) async fn commit(
        &self,
        request: &CommitRequest,
    ) -> Result<CommitResponse, ClientError> {
        let Some(queue) = &self.queue else {
            return self.cp.commit_state(&self.node_id, request).await;
        };
        let (reply, answer) = oneshot::channel();
        if queue.send((request.clone(), reply)).is_err() {
            return self.cp.commit_state(&self.node_id, request).await;
        }
        match answer.await {
            Ok(result) => result,
            // The batching task ended (the node is stopping): send it alone.
            Err(_) => self.cp.commit_state(&self.node_id, request).await,
        }
    }
}

/// Takes the commits waiting, up to the batch limits, and sends them as one request.
async fn gather(
    cp: Client,
    node_id: String,
    max_batch: usize,
    mut waiting: mpsc::UnboundedReceiver<(CommitRequest, Reply)>,
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    // Wait for a free slot first, so that commits arriving meanwhile join the next batch.
    while let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await {
        let Some(first) = waiting.recv().await else {
            return;
        };
        let mut bytes = 0;
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match waiting.try_recv() {
                Ok(next) => {
                    bytes += next.0.write_bytes();
                    batch.push(next);
                    if bytes >= MAX_COMMIT_BATCH_BYTES / 2 {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let (cp, node_id) = (cp.clone(), node_id.clone());
        tokio::spawn(async move {
            send(&cp, &node_id, batch).await;
            drop(permit);
        });
    }
}

/// Sends one batch and hands each commit its result.
async fn send(cp: &Client, node_id: &str, batch: Vec<(CommitRequest, Reply)>) {
    let (commits, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    if commits.len() == 1 {
        let result = cp.commit_state(node_id, &commits[0]).await;
        let _ = replies.into_iter().next().map(|r| r.send(result));
        return;
    }
    let n = commits.len();
    match cp
        .commit_batch(node_id, &CommitBatchRequest { commits })
        .await
    {
        Ok(answer) if answer.results.len() == n => {
            for (reply, result) in replies.into_iter().zip(answer.results) {
                let _ = reply.send(result.map_err(ClientError::Api));
            }
        }
        Ok(answer) => {
            let e = ClientError::Decode {
                url: format!("state/commit-batch of node {node_id}"),
                message: format!("{} results for {n} commits", answer.results.len()),
            };
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
