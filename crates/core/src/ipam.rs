//! Address allocation within the pools, as pure functions over "is this
//! offset in use": the store supplies the answer from its unique index.
//!
//! A sandbox gets a host offset `n`; its addresses are host `n` of the IPv4
//! pool and host `n` of the IPv6 pool. Offset 0 (network), 1 (gateway) and the
//! last one (broadcast) are never handed out.

use ipnet::Ipv4Net;

/// The range of offsets that may be handed out in a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub first: u32,
    pub last: u32,
}

impl OffsetRange {
    pub fn of(pool: &Ipv4Net) -> OffsetRange {
        let size: u64 = 1u64 << (32 - pool.prefix_len());
        OffsetRange {
            first: 2,
            last: (size - 2) as u32,
        }
    }

    pub fn contains(&self, offset: u32) -> bool {
        (self.first..=self.last).contains(&offset)
    }

    pub fn len(&self) -> u64 {
        u64::from(self.last) - u64::from(self.first) + 1
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

/// Finds a free offset, starting at `cursor` and wrapping around, so that
/// allocation is O(1) while the pool is not crowded and freed addresses are
/// not reused at once. Returns `None` when every offset is in use.
pub fn next_free(
    range: OffsetRange,
    cursor: u32,
    mut in_use: impl FnMut(u32) -> bool,
) -> Option<u32> {
    if range.is_empty() {
        return None;
    }
    let start = if range.contains(cursor) {
        cursor
    } else {
        range.first
    };
    let mut candidate = start;
    for _ in 0..range.len() {
        if !in_use(candidate) {
            return Some(candidate);
        }
        candidate = if candidate == range.last {
            range.first
        } else {
            candidate + 1
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn never_network_gateway_or_broadcast() {
        let pool: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let r = OffsetRange::of(&pool);
        assert_eq!((r.first, r.last), (2, 6));
        let mut used = BTreeSet::new();
        while let Some(o) = next_free(r, 0, |o| used.contains(&o)) {
            used.insert(o);
        }
        assert_eq!(used.into_iter().collect::<Vec<_>>(), vec![2, 3, 4, 5, 6]);
    }

    proptest! {
        #[test]
        fn allocation_is_free_in_range_and_exhaustive(
            prefix in 20u8..=29,
            used in proptest::collection::btree_set(0u32..5000, 0..300),
            cursor in 0u32..6000,
        ) {
            let pool = Ipv4Net::new("10.0.0.0".parse().unwrap(), prefix).unwrap();
            let r = OffsetRange::of(&pool);
            let free_exists = (r.first..=r.last).any(|o| !used.contains(&o));
            match next_free(r, cursor, |o| used.contains(&o)) {
                Some(o) => {
                    prop_assert!(r.contains(o));
                    prop_assert!(!used.contains(&o));
                    prop_assert!(o >= 2 && u64::from(o) < (1u64 << (32 - prefix)) - 1);
                }
                None => prop_assert!(!free_exists),
            }
        }

        #[test]
        fn repeated_allocation_never_hands_out_twice(prefix in 24u8..=29, n in 1usize..300) {
            let pool = Ipv4Net::new("10.0.0.0".parse().unwrap(), prefix).unwrap();
            let r = OffsetRange::of(&pool);
            let mut used = BTreeSet::new();
            let mut cursor = 0;
            for _ in 0..n {
                match next_free(r, cursor, |o| used.contains(&o)) {
                    Some(o) => { prop_assert!(used.insert(o)); cursor = o + 1; }
                    None => { prop_assert_eq!(used.len() as u64, r.len()); break; }
                }
            }
        }
    }
}
