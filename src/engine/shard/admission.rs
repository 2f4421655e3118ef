//! A page's records entering the shard: every one admitted to the checkpoint's progress
//! in read order, the ones the mapping's filter keeps buffered for batching, the others
//! done at once (so the checkpoint passes them without an invocation).
//!
//! A page with nothing to filter, the common case, is admitted in one go and its vector
//! becomes (or joins) the buffer as it is: no per-record keep flag, no per-record admit.

use crate::engine::batcher::ReadBuffer;
use crate::engine::checkpointer::Checkpointer;
use crate::filter::FilterCriteria;
use crate::model::StreamRecord;

/// Admits `records`, read in this order, and buffers the ones `filter` keeps; returns
/// how many it filtered out.
pub(super) fn admit_page(
    records: Vec<StreamRecord>,
    filter: &FilterCriteria,
    checkpointer: &Checkpointer,
    buffer: &mut ReadBuffer,
) -> u64 {
    if filter.is_empty() {
        let first = checkpointer.admit_open(records.len());
        buffer.push_page(first.., records);
        return 0;
    }
    let kept: Vec<bool> = records.iter().map(|record| filter.keeps(record)).collect();
    let filtered = kept.iter().filter(|keep| !**keep).count() as u64;
    let first = checkpointer.admit_page(
        records
            .iter()
            .zip(&kept)
            .map(|(record, keep)| (!keep).then(|| record.sequence_number.clone())),
    );
    let mut records = records;
    if filtered > 0 {
        let mut keeps = kept.iter();
        records.retain(|_| keeps.next().copied().unwrap_or(true));
    }
    let ordinals = (first..).zip(&kept).filter(|(_, keep)| **keep);
    buffer.push_page(ordinals.map(|(ordinal, _)| ordinal), records);
    filtered
}
