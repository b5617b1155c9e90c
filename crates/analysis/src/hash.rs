//! The hasher of the aggregation maps: aHash (already in the dependency tree, through
//! hashlink), several times faster than the standard SipHash on the short keys these maps see
//! per call (class keys, addresses, interned ids).
//!
//! Its keys are drawn once per process from the standard library's random source, so that
//! crafted paths cannot be chosen to collide. No report depends on the iteration order of a
//! map: every list is sorted before it is printed.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// A [`BuildHasher`] for aHash with per-process random keys (zero-sized).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fast;

fn keys() -> &'static ahash::RandomState {
    static KEYS: OnceLock<ahash::RandomState> = OnceLock::new();
    KEYS.get_or_init(|| {
        let r = std::collections::hash_map::RandomState::new();
        ahash::RandomState::with_seeds(r.hash_one(1), r.hash_one(2), r.hash_one(3), r.hash_one(4))
    })
}

impl BuildHasher for Fast {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        keys().build_hasher()
    }
}

/// A `HashMap` with the [`Fast`] hasher.
pub type FastMap<K, V> = HashMap<K, V, Fast>;

/// An `IndexMap` with the [`Fast`] hasher.
pub type FastIndexMap<K, V> = indexmap::IndexMap<K, V, Fast>;
