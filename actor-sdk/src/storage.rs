//! The actor's private, durable key-value storage: typed helpers with UTF-8 keys and JSON values,
//! and [`raw`] byte-level access.
//!
//! Writes made during a call are buffered by the host and committed atomically when the call
//! returns (with `Ok` or with an [`Error`](crate::Error)); a trap discards them. Reads see the
//! call's own earlier writes. Keys sort byte-wise, so zero-padded numbers sort in order:
//!
//! ```
//! use latchkey_actor_sdk::storage::{self, ListOptions};
//!
//! # fn demo() -> latchkey_actor_sdk::Result<()> {
//! storage::put(&format!("msg/{:020}", 42), &"hello")?;
//! let newest: Vec<(String, String)> =
//!     storage::list(&ListOptions::new().prefix("msg/").reverse().limit(10))?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::latchkey::actor::storage as imp;

/// Why a storage operation failed. Converts into [`Error::Failed`](crate::Error::Failed), so `?`
/// in a handler fails the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// A key, value or the call's batch of writes exceeds a limit (the message names it).
    TooLarge(String),
    /// The store could not be read; the call fails and none of its writes are committed.
    Unavailable(String),
    /// This activation is no longer the live one; the call is abandoned.
    Fenced(String),
    /// A value could not be encoded as, or decoded from, JSON into the type asked for, or a
    /// listed key is not UTF-8.
    Encoding(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge(m) => write!(f, "storage limit exceeded: {m}"),
            Self::Unavailable(m) => write!(f, "storage unavailable: {m}"),
            Self::Fenced(m) => write!(f, "activation fenced: {m}"),
            Self::Encoding(m) => write!(f, "stored value encoding: {m}"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<imp::StorageError> for StorageError {
    fn from(e: imp::StorageError) -> Self {
        match e {
            imp::StorageError::TooLarge(m) => Self::TooLarge(m),
            imp::StorageError::Unavailable(m) => Self::Unavailable(m),
            imp::StorageError::Fenced(m) => Self::Fenced(m),
        }
    }
}

/// Which entries [`list`] and [`raw::list`] return: keys with the prefix, at or after `start`,
/// before `end`, in key order (or reversed), at most `limit` of them (the host also caps the
/// number of entries one `list` returns).
#[derive(Debug, Clone)]
pub struct ListOptions(imp::ListOptions);

impl Default for ListOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ListOptions {
    /// Every key, in ascending order, up to the host's cap.
    pub fn new() -> Self {
        Self(imp::ListOptions {
            prefix: None,
            start: None,
            end: None,
            limit: None,
            reverse: false,
        })
    }

    /// Only keys starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.0.prefix = Some(prefix.as_ref().to_vec());
        self
    }

    /// Only keys at or after `start` (inclusive).
    #[must_use]
    pub fn start(mut self, start: impl AsRef<[u8]>) -> Self {
        self.0.start = Some(start.as_ref().to_vec());
        self
    }

    /// Only keys before `end` (exclusive).
    #[must_use]
    pub fn end(mut self, end: impl AsRef<[u8]>) -> Self {
        self.0.end = Some(end.as_ref().to_vec());
        self
    }

    /// At most `limit` entries (counted from the end when reversed).
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.0.limit = Some(limit);
        self
    }

    /// Descending key order: with a limit, the last keys of the range.
    #[must_use]
    pub fn reverse(mut self) -> Self {
        self.0.reverse = true;
        self
    }
}

/// The value stored under `key`, decoded from JSON, or `None` if there is none.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StorageError> {
    raw::get(key.as_bytes())?
        .map(|bytes| decode(key, &bytes))
        .transpose()
}

/// The values stored under `keys`, in the same order, decoded from JSON.
pub fn get_many<T: DeserializeOwned>(
    keys: &[impl AsRef<str>],
) -> Result<Vec<Option<T>>, StorageError> {
    let raw_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| k.as_ref().as_bytes().to_vec())
        .collect();
    let values = imp::get_many(&raw_keys)?;
    keys.iter()
        .zip(values)
        .map(|(key, value)| value.map(|bytes| decode(key.as_ref(), &bytes)).transpose())
        .collect()
}

/// Stores `value`, encoded as JSON, under `key`.
pub fn put<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StorageError> {
    raw::put(key.as_bytes(), &encode(key, value)?)
}

/// Stores each `(key, value)`, encoded as JSON, in one host call.
pub fn put_many<K: AsRef<str>, T: Serialize>(entries: &[(K, T)]) -> Result<(), StorageError> {
    let raw_entries = entries
        .iter()
        .map(|(key, value)| {
            let key = key.as_ref();
            Ok((key.as_bytes().to_vec(), encode(key, value)?))
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(imp::put_many(&raw_entries)?)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, StorageError> {
    raw::delete(key.as_bytes())
}

/// Removes every key of this actor.
pub fn delete_all() -> Result<(), StorageError> {
    Ok(imp::delete_all()?)
}

/// The entries `options` selects, with UTF-8 keys and values decoded from JSON.
pub fn list<T: DeserializeOwned>(options: &ListOptions) -> Result<Vec<(String, T)>, StorageError> {
    raw::list(options)?
        .into_iter()
        .map(|(key, value)| {
            let key = String::from_utf8(key).map_err(|e| {
                StorageError::Encoding(format!("listed key {:?} is not UTF-8", e.as_bytes()))
            })?;
            let value = decode(&key, &value)?;
            Ok((key, value))
        })
        .collect()
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StorageError::Encoding(format!("cannot decode the value of `{key}`: {e}")))
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value)
        .map_err(|e| StorageError::Encoding(format!("cannot encode the value of `{key}`: {e}")))
}

/// Byte-level storage: keys and values as they are stored, no JSON.
pub mod raw {
    use super::{ListOptions, StorageError, imp};

    /// A stored `(key, value)` pair, as bytes.
    pub type Entry = (Vec<u8>, Vec<u8>);

    /// The bytes stored under `key`, or `None` if there are none.
    pub fn get(key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(imp::get(key)?)
    }

    /// The values stored under `keys`, in the same order.
    pub fn get_many(keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        Ok(imp::get_many(keys)?)
    }

    /// Stores `value` under `key`.
    pub fn put(key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        Ok(imp::put(key, value)?)
    }

    /// Stores each `(key, value)` in one host call.
    pub fn put_many(entries: &[Entry]) -> Result<(), StorageError> {
        Ok(imp::put_many(entries)?)
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(key: &[u8]) -> Result<bool, StorageError> {
        Ok(imp::delete(key)?)
    }

    /// Removes every key of this actor (the same as [`super::delete_all`]).
    pub fn delete_all() -> Result<(), StorageError> {
        Ok(imp::delete_all()?)
    }

    /// The `(key, value)` entries `options` selects.
    pub fn list(options: &ListOptions) -> Result<Vec<Entry>, StorageError> {
        Ok(imp::list(&options.0)?)
    }
}
