//! Example actor `chat-room`: a room (or mailbox) keeping its latest 100 messages.
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `post` | `{"author": string, "text": string}` | `{"seq": u64}`, the message's number |
//! | `history` | `limit` (`u32`, default and at most 100) | the latest messages, newest first |
//! | `clear` | none | `null`; the room is empty and numbering restarts at 1 |
//!
//! Each message is stored under `msg/` and its zero-padded sequence number, so the keys sort in
//! posting order and `history` is one reversed, limited `list`. Posting the 101st message
//! deletes the oldest.

use latchkey_actor_sdk::storage::{self, ListOptions};
use latchkey_actor_sdk::{Actor, Context, Error, Result, clock, export_actor};
use serde::{Deserialize, Serialize};

/// How many messages the room keeps.
const MAX_MESSAGES: u32 = 100;
/// Longest author name, in bytes.
const MAX_AUTHOR: usize = 64;
/// Longest message text, in bytes.
const MAX_TEXT: usize = 4096;
/// Prefix of the message keys.
const PREFIX: &str = "msg/";

/// The storage key of message `seq`: zero-padded so keys sort by number.
fn message_key(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

/// The argument of `post`.
#[derive(Debug, Deserialize)]
struct Post {
    author: String,
    text: String,
}

/// A stored message, as `history` returns it.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    seq: u64,
    author: String,
    text: String,
    /// When it was posted (milliseconds since the Unix epoch).
    at_ms: u64,
}

/// The answer of `post`.
#[derive(Debug, Serialize)]
struct Posted {
    seq: u64,
}

/// The room's state: the range of stored sequence numbers, `oldest..next`.
struct ChatRoom {
    /// The number of the oldest stored message (equal to `next` when the room is empty).
    oldest: u64,
    /// The number the next message gets.
    next: u64,
}

/// The sequence number of the first or last stored message.
fn edge_seq(newest: bool) -> Result<Option<u64>> {
    let mut options = ListOptions::new().prefix(PREFIX).limit(1);
    if newest {
        options = options.reverse();
    }
    let found: Vec<(String, Message)> = storage::list(&options)?;
    Ok(found.first().map(|(_, message)| message.seq))
}

impl Actor for ChatRoom {
    fn activate(_ctx: &Context) -> Result<Self> {
        Ok(match (edge_seq(false)?, edge_seq(true)?) {
            (Some(oldest), Some(newest)) => Self {
                oldest,
                next: newest + 1,
            },
            _ => Self { oldest: 1, next: 1 },
        })
    }
}

export_actor!(ChatRoom {
    "post" => post,
    "history" => history,
    "clear" => clear,
});

impl ChatRoom {
    fn post(&mut self, _ctx: &Context, post: Post) -> Result<Posted> {
        if post.author.is_empty() || post.author.len() > MAX_AUTHOR {
            return Err(Error::bad_request(format!(
                "author must be 1 to {MAX_AUTHOR} bytes"
            )));
        }
        if post.text.is_empty() || post.text.len() > MAX_TEXT {
            return Err(Error::bad_request(format!(
                "text must be 1 to {MAX_TEXT} bytes"
            )));
        }
        let seq = self.next;
        let message = Message {
            seq,
            author: post.author,
            text: post.text,
            at_ms: clock::now_millis(),
        };
        storage::put(&message_key(seq), &message)?;
        let mut oldest = self.oldest;
        while seq + 1 - oldest > u64::from(MAX_MESSAGES) {
            storage::delete(&message_key(oldest))?;
            oldest += 1;
        }
        // Update the state only once every write was accepted.
        self.next = seq + 1;
        self.oldest = oldest;
        Ok(Posted { seq })
    }

    fn history(&mut self, _ctx: &Context, limit: Option<u32>) -> Result<Vec<Message>> {
        let limit = limit.unwrap_or(MAX_MESSAGES).min(MAX_MESSAGES);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let options = ListOptions::new().prefix(PREFIX).reverse().limit(limit);
        let messages: Vec<(String, Message)> = storage::list(&options)?;
        Ok(messages.into_iter().map(|(_, message)| message).collect())
    }

    fn clear(&mut self, _ctx: &Context, _: ()) -> Result<()> {
        storage::delete_all()?;
        self.oldest = 1;
        self.next = 1;
        Ok(())
    }
}
