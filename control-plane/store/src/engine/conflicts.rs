//! Conflict detection, as FoundationDB's resolvers do it: remember which keys and ranges were
//! written at which version, and fail a commit that read anything written after its read version.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use crate::StoreError;

/// What a transaction read: point keys and half-open ranges.
#[derive(Debug, Default)]
pub(crate) struct ReadSet {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ReadSet {
    pub(crate) fn size(&self) -> usize {
        self.keys.iter().map(Vec::len).sum::<usize>()
            + self
                .ranges
                .iter()
                .map(|(b, e)| b.len() + e.len())
                .sum::<usize>()
    }
}

/// Recent writes, newest version per key, kept back to the oldest read version still in use.
#[derive(Debug, Default)]
pub(crate) struct ConflictLog {
    /// Last version that wrote each key.
    keys: BTreeMap<Vec<u8>, u64>,
    /// Range clears, oldest first: `(version, begin, end)`.
    ranges: VecDeque<(u64, Vec<u8>, Vec<u8>)>,
    /// Keys written per version, oldest first, to prune `keys`.
    history: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// History before this version has been pruned: older read versions cannot be checked.
    floor: u64,
}

impl ConflictLog {
    /// A log whose history starts at `floor` (nothing older can be checked).
    pub(crate) fn starting_at(floor: u64) -> Self {
        ConflictLog {
            floor,
            ..Self::default()
        }
    }

    /// Fails if a transaction reading `reads` at `read_version` would conflict.
    pub(crate) fn check(&self, read_version: u64, reads: &ReadSet) -> Result<(), StoreError> {
        if read_version < self.floor {
            return Err(StoreError::TooOld);
        }
        let newer = |v: &u64| *v > read_version;
        for key in &reads.keys {
            if self.keys.get(key).is_some_and(newer) {
                return Err(StoreError::Conflict);
            }
        }
        for (begin, end) in &reads.ranges {
            let written = self
                .keys
                .range::<[u8], _>((
                    Bound::Included(begin.as_slice()),
                    Bound::Excluded(end.as_slice()),
                ))
                .any(|(_, v)| newer(v));
            if written {
                return Err(StoreError::Conflict);
            }
        }
        for (version, wb, we) in self.ranges.iter().rev() {
            if *version <= read_version {
                break;
            }
            let hits_key = reads.keys.iter().any(|k| wb <= k && k < we);
            let hits_range = reads.ranges.iter().any(|(b, e)| b < we && wb < e);
            if hits_key || hits_range {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    /// Records writes committed at `version` (point keys, and ranges as `(begin, Some(end))`).
    pub(crate) fn record<'a>(
        &mut self,
        version: u64,
        writes: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) {
        let mut keys = Vec::new();
        for (begin, end) in writes {
            match end {
                Some(end) => self
                    .ranges
                    .push_back((version, begin.to_vec(), end.to_vec())),
                None => {
                    self.keys.insert(begin.to_vec(), version);
                    keys.push(begin.to_vec());
                }
            }
        }
        match self.history.back_mut() {
            Some((v, ks)) if *v == version => ks.extend(keys),
            _ => self.history.push_back((version, keys)),
        }
    }

    /// Forgets writes at or below `horizon`; transactions reading below it get `TooOld`.
    pub(crate) fn prune(&mut self, horizon: u64) {
        while let Some((version, _)) = self.history.front() {
            if *version > horizon {
                break;
            }
            let (version, keys) = self.history.pop_front().expect("front exists");
            for key in keys {
                if self.keys.get(&key) == Some(&version) {
                    self.keys.remove(&key);
                }
            }
        }
        while self.ranges.front().is_some_and(|(v, _, _)| *v <= horizon) {
            self.ranges.pop_front();
        }
        self.floor = self.floor.max(horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(keys: &[&[u8]], ranges: &[(&[u8], &[u8])]) -> ReadSet {
        ReadSet {
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            ranges: ranges
                .iter()
                .map(|(b, e)| (b.to_vec(), e.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn newer_writes_conflict_older_do_not() {
        let mut log = ConflictLog::default();
        log.record(10, [(b"a".as_slice(), None)].into_iter());
        log.record(20, [(b"m".as_slice(), Some(b"p".as_slice()))].into_iter());
        assert_eq!(
            log.check(5, &reads(&[b"a"], &[])),
            Err(StoreError::Conflict)
        );
        assert_eq!(log.check(10, &reads(&[b"a"], &[])), Ok(()));
        assert_eq!(
            log.check(15, &reads(&[b"n"], &[])),
            Err(StoreError::Conflict)
        );
        assert_eq!(
            log.check(15, &reads(&[], &[(b"o", b"z")])),
            Err(StoreError::Conflict)
        );
        assert_eq!(log.check(15, &reads(&[], &[(b"p", b"z")])), Ok(()));
        assert_eq!(
            log.check(5, &reads(&[], &[(b"0", b"b")])),
            Err(StoreError::Conflict)
        );
        log.prune(12);
        assert_eq!(
            log.check(11, &reads(&[b"zz"], &[])),
            Err(StoreError::TooOld)
        );
        assert_eq!(log.check(15, &reads(&[b"a"], &[])), Ok(()));
    }
}
