//! A transaction's uncommitted writes, and reads that merge them over the snapshot
//! (read-your-writes).

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{KeyValue, RangeOptions, StoreError};

use super::Snapshot;

/// One write as applied to a backend (versionstamps already substituted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mutation {
    Set(Vec<u8>, Vec<u8>),
    Clear(Vec<u8>),
    ClearRange(Vec<u8>, Vec<u8>),
}

impl Mutation {
    /// The key, or `(begin, Some(end))` range, this mutation writes.
    pub(crate) fn written(&self) -> (&[u8], Option<&[u8]>) {
        match self {
            Mutation::Set(k, _) | Mutation::Clear(k) => (k, None),
            Mutation::ClearRange(b, e) => (b, Some(e)),
        }
    }
}

/// A buffered point write: `Some(value)` sets, `None` clears.
type PointWrite<'a> = (&'a Vec<u8>, &'a Option<Vec<u8>>);

/// Buffered writes. Clearing a range drops the buffered point writes inside it, so the final
/// effect is always "clear every range, then apply every point write".
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    /// Point writes: `Some(value)` sets, `None` clears.
    points: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

impl WriteBuffer {
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        self.points.insert(key.to_vec(), Some(value.to_vec()));
    }

    pub(crate) fn clear(&mut self, key: &[u8]) {
        self.points.insert(key.to_vec(), None);
    }

    pub(crate) fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let inside: Vec<Vec<u8>> = self
            .points
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in inside {
            self.points.remove(&k);
        }
        self.cleared.push((begin.to_vec(), end.to_vec()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty() && self.cleared.is_empty()
    }

    fn is_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(b, e)| b.as_slice() <= key && key < e.as_slice())
    }

    /// What the buffer alone says about `key`: `Some(Some(v))` written, `Some(None)` cleared,
    /// `None` unknown (read the snapshot).
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match self.points.get(key) {
            Some(v) => Some(v.clone()),
            None if self.is_cleared(key) => Some(None),
            None => None,
        }
    }

    /// The buffered writes as mutations, ranges first.
    pub(crate) fn into_mutations(self) -> Vec<Mutation> {
        let mut out: Vec<Mutation> = self
            .cleared
            .into_iter()
            .map(|(b, e)| Mutation::ClearRange(b, e))
            .collect();
        out.extend(self.points.into_iter().map(|(k, v)| match v {
            Some(v) => Mutation::Set(k, v),
            None => Mutation::Clear(k),
        }));
        out
    }

    /// Bytes written (keys and values), for the transaction size limit.
    pub(crate) fn size(&self) -> usize {
        let points: usize = self
            .points
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let ranges: usize = self.cleared.iter().map(|(b, e)| b.len() + e.len()).sum();
        points + ranges
    }

    /// Reads a range of the snapshot with this buffer's writes merged in.
    pub(crate) fn read_range(
        &self,
        snapshot: &dyn Snapshot,
        range: &RangeOptions,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let limit = range.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 || range.begin >= range.end {
            return Ok(out);
        }
        let bounds = (
            Bound::Included(range.begin.as_slice()),
            Bound::Excluded(range.end.as_slice()),
        );
        let points = self.points.range::<[u8], _>(bounds);
        let mut points: Box<dyn Iterator<Item = PointWrite<'_>>> = if range.reverse {
            Box::new(points.rev())
        } else {
            Box::new(points)
        };
        let mut pending = points.next();
        // Whether buffered key `a` comes before snapshot key `b` in scan order.
        let before = |a: &[u8], b: &[u8]| if range.reverse { a > b } else { a < b };
        let emit = |out: &mut Vec<KeyValue>, k: &[u8], v: &[u8]| {
            out.push((k.to_vec(), v.to_vec()));
            out.len() < limit
        };
        let mut more = true;
        snapshot.scan(&range.begin, &range.end, range.reverse, &mut |k, v| {
            while let Some((pk, pv)) = pending {
                if !before(pk, k) {
                    break;
                }
                if let Some(pv) = pv
                    && !emit(&mut out, pk, pv)
                {
                    more = false;
                    return false;
                }
                pending = points.next();
            }
            let keep_going = match pending {
                Some((pk, pv)) if pk.as_slice() == k => {
                    pending = points.next();
                    pv.as_ref().is_none_or(|pv| emit(&mut out, k, pv))
                }
                _ if self.is_cleared(k) => true,
                _ => emit(&mut out, k, v),
            };
            more = keep_going;
            keep_going
        })?;
        while more && let Some((pk, pv)) = pending {
            if let Some(pv) = pv
                && !emit(&mut out, pk, pv)
            {
                break;
            }
            pending = points.next();
        }
        Ok(out)
    }
}
