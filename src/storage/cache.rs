//! A read-through cache of single users and posts by id, kept exact on this instance.
//!
//! Writes on this instance update it right after commit; writes elsewhere reach it through the
//! event bus (`observe`) and, as a backstop, entries expire after a TTL. An entry is only
//! replaced by a newer version, and a deletion leaves a tombstone for a TTL, so a slow reader
//! can never put back an older or deleted object.

use foldhash::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Something with an id and a monotonically increasing version.
pub trait Versioned: Clone {
    fn key(&self) -> &str;
    fn version(&self) -> i64;
    /// Rough size in bytes, for the memory budget.
    fn weight(&self) -> usize;
}

enum Slot<T> {
    Live(T),
    Gone,
}

struct Entry<T> {
    slot: Slot<T>,
    version: i64,
    stored: Instant,
}

pub struct VersionedCache<T> {
    ttl: Duration,
    budget: usize,
    state: RwLock<(HashMap<String, Entry<T>>, usize)>,
}

/// What a lookup found.
pub enum Cached<T> {
    Hit(T),
    Deleted,
    Miss,
}

impl<T: Versioned> VersionedCache<T> {
    pub fn new(ttl: Duration, budget_bytes: usize) -> Self {
        Self { ttl, budget: budget_bytes, state: RwLock::new((HashMap::default(), 0)) }
    }

    pub fn get(&self, id: &str) -> Cached<T> {
        if self.budget == 0 {
            return Cached::Miss;
        }
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        match state.0.get(id) {
            Some(e) if e.stored.elapsed() < self.ttl => match &e.slot {
                Slot::Live(v) => Cached::Hit(v.clone()),
                Slot::Gone => Cached::Deleted,
            },
            _ => Cached::Miss,
        }
    }

    /// Stores `value` unless a newer (or equal) version or a live tombstone is already there.
    pub fn offer(&self, value: &T) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = state.0.get(value.key())
            && e.stored.elapsed() < self.ttl
            && (e.version >= value.version() || matches!(e.slot, Slot::Gone))
        {
            return;
        }
        self.put(
            &mut state,
            value.key().to_string(),
            Entry { slot: Slot::Live(value.clone()), version: value.version(), stored: Instant::now() },
            value.weight(),
        );
    }

    /// Records a committed write (always newer than what a reader may hold).
    pub fn written(&self, value: &T) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = state.0.get(value.key())
            && e.version > value.version()
        {
            return;
        }
        self.put(
            &mut state,
            value.key().to_string(),
            Entry { slot: Slot::Live(value.clone()), version: value.version(), stored: Instant::now() },
            value.weight(),
        );
    }

    /// Drops a cached copy older than `version` (news of a change whose snapshot is partial).
    pub fn outdated(&self, id: &str, version: i64) {
        let stale =
            matches!(self.state.read().unwrap_or_else(|e| e.into_inner()).0.get(id), Some(e) if e.version < version);
        if stale {
            self.forget(id);
        }
    }

    /// Drops what is known about `id` (after a write found it changed elsewhere).
    pub fn forget(&self, id: &str) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(Entry { slot: Slot::Live(v), .. }) = state.0.remove(id) {
            state.1 = state.1.saturating_sub(v.weight() + id.len() + 64);
        }
    }

    pub fn deleted(&self, id: &str) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        self.put(&mut state, id.to_string(), Entry { slot: Slot::Gone, version: i64::MAX, stored: Instant::now() }, 0);
    }

    fn put(&self, state: &mut (HashMap<String, Entry<T>>, usize), key: String, entry: Entry<T>, weight: usize) {
        if self.budget == 0 {
            return;
        }
        let weight = weight + key.len() + 64;
        if state.1 + weight > self.budget {
            let ttl = self.ttl;
            state.0.retain(|_, e| e.stored.elapsed() < ttl);
            state.1 = state.0.values().map(|e| 64 + if let Slot::Live(v) = &e.slot { v.weight() } else { 0 }).sum();
            if state.1 + weight > self.budget {
                state.0.clear();
                state.1 = 0;
            }
        }
        state.1 += weight;
        if let Some(old) = state.0.insert(key, entry)
            && let Slot::Live(v) = &old.slot
        {
            state.1 = state.1.saturating_sub(v.weight());
        }
    }
}

impl Versioned for crate::domain::post::Post {
    fn key(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn weight(&self) -> usize {
        self.body.len() + self.title.len() + self.tags.iter().map(|t| t.len() + 24).sum::<usize>() + 256
    }
}

impl Versioned for crate::domain::user::User {
    fn key(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn weight(&self) -> usize {
        self.email.len() + self.name.len() + self.password_hash.len() + 256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct V(&'static str, i64);
    impl Versioned for V {
        fn key(&self) -> &str {
            self.0
        }
        fn version(&self) -> i64 {
            self.1
        }
        fn weight(&self) -> usize {
            8
        }
    }

    #[test]
    fn an_older_read_never_replaces_a_newer_write_or_a_deletion() {
        let cache = VersionedCache::new(Duration::from_secs(60), 1 << 20);
        cache.written(&V("a", 2));
        cache.offer(&V("a", 1));
        assert!(matches!(cache.get("a"), Cached::Hit(V("a", 2))));
        cache.deleted("a");
        cache.offer(&V("a", 2));
        assert!(matches!(cache.get("a"), Cached::Deleted));
        assert!(matches!(cache.get("b"), Cached::Miss));
    }

    #[test]
    fn the_memory_budget_is_respected() {
        let cache = VersionedCache::new(Duration::from_secs(60), 2_000);
        let keys: Vec<&'static str> = (0..100).map(|i| &*Box::leak(format!("k{i}").into_boxed_str())).collect();
        for k in &keys {
            cache.offer(&V(k, 1));
        }
        assert!(cache.state.read().unwrap().1 <= 2_000);
    }
}
