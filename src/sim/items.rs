//! The items of a simulated DynamoDB table: which change of an item a record is (INSERT,
//! MODIFY, REMOVE) and which earlier record holds the item as it was before (OldImage).
//!
//! Items are identified by key text, so producers that share a key prefix write the same
//! items; they are tracked per prefix, in a dense array for key spaces up to a million keys
//! (one 16-byte slot per key, no hashing) and in a BTreeMap beyond. Only the change count
//! and the last writer `(producer, k)` are kept: images are rebuilt from that on read.

use std::collections::BTreeMap;

use super::record::Prev;
use crate::model::DynamodbEventName;

/// Key spaces up to this size are kept in a dense array (16 MB at the limit); larger ones
/// in a map holding only the items written so far.
const DENSE_KEY_SPACE_LIMIT: u64 = 1_000_000;

/// Every this-many-th change of an existing item removes it.
const CHANGES_PER_LIFE: u32 = 10;

#[derive(Clone, Copy, Default)]
struct Item {
    /// Changes since the item was (re)inserted; 0 = the item does not exist.
    changes: u32,
    last_producer: u32,
    last_k: u64,
}

enum Space {
    Dense(Vec<Item>),
    Sparse(BTreeMap<u64, Item>),
}

pub(crate) struct Items {
    spaces: Vec<Space>,
}

pub(crate) const EVENT_INSERT: u32 = 0;
pub(crate) const EVENT_MODIFY: u32 = 1;
pub(crate) const EVENT_REMOVE: u32 = 2;

pub(crate) fn event_name(code: u32) -> DynamodbEventName {
    match code {
        EVENT_MODIFY => DynamodbEventName::Modify,
        EVENT_REMOVE => DynamodbEventName::Remove,
        _ => DynamodbEventName::Insert,
    }
}

impl Items {
    /// `key_spaces[p]`: the largest key count of the producers using prefix `p`.
    pub fn new(key_spaces: &[u64]) -> Items {
        let spaces = key_spaces
            .iter()
            .map(|&keys| {
                if keys <= DENSE_KEY_SPACE_LIMIT {
                    Space::Dense(vec![Item::default(); keys as usize])
                } else {
                    Space::Sparse(BTreeMap::new())
                }
            })
            .collect();
        Items { spaces }
    }

    /// Records a change of item `(prefix, n)` by record `(producer, k)`: its event code and
    /// the previous change (for MODIFY and REMOVE).
    #[inline]
    pub fn change(&mut self, prefix: u32, n: u64, producer: u32, k: u64) -> (u32, Prev) {
        let item = match self.spaces.get_mut(prefix as usize) {
            Some(Space::Dense(items)) => match items.get_mut(n as usize) {
                Some(item) => item,
                None => return (EVENT_INSERT, Prev::NONE),
            },
            Some(Space::Sparse(items)) => items.entry(n).or_default(),
            None => return (EVENT_INSERT, Prev::NONE),
        };
        let prev = Prev {
            k: item.last_k,
            producer: item.last_producer,
        };
        item.last_producer = producer;
        item.last_k = k;
        if item.changes == 0 {
            item.changes = 1;
            return (EVENT_INSERT, Prev::NONE);
        }
        item.changes += 1;
        if item.changes >= CHANGES_PER_LIFE {
            item.changes = 0;
            (EVENT_REMOVE, prev)
        } else {
            (EVENT_MODIFY, prev)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_inserted_modified_eight_times_removed_and_inserted_again() {
        for keys in [5, DENSE_KEY_SPACE_LIMIT + 1] {
            let mut items = Items::new(&[keys]);
            let events: Vec<u32> = (0..12).map(|k| items.change(0, 3, 0, k).0).collect();
            let mut expected = vec![EVENT_INSERT];
            expected.extend([EVENT_MODIFY; 8]);
            expected.extend([EVENT_REMOVE, EVENT_INSERT, EVENT_MODIFY]);
            assert_eq!(events, expected);
        }
    }

    #[test]
    fn a_change_points_at_the_previous_change_of_the_same_item() {
        let mut items = Items::new(&[10]);
        assert_eq!(items.change(0, 1, 0, 0).1.get(), None);
        assert_eq!(items.change(0, 2, 1, 1).1.get(), None);
        assert_eq!(
            items.change(0, 1, 1, 2).1.get(),
            Some(Prev { k: 0, producer: 0 })
        );
        assert_eq!(
            items.change(0, 1, 0, 3).1.get(),
            Some(Prev { k: 2, producer: 1 })
        );
    }
}
