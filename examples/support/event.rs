//! The benchmark event both target benchmarks send: 100 Kinesis records of about 100
//! bytes, encoded by the engine's own encoder (shared so the figures compare).

use esm_sim::event::{assemble_event, encode_record, EventContext};
use esm_sim::model::{RecordBody, SequenceNumber, ShardId, StreamRecord};

/// The records and their event JSON.
pub fn event() -> (Vec<StreamRecord>, Vec<u8>) {
    let ctx = EventContext {
        shard_id: ShardId("shardId-000000000000".into()),
        event_source_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/orders".into(),
        aws_region: "us-east-1".into(),
        invoke_identity_arn: "arn:aws:iam::123456789012:role/lambda-role".into(),
    };
    let records: Vec<StreamRecord> = (0..100u64)
        .map(|i| {
            let mut data = format!(r#"{{"order":{i},"user":"user-{}","items":["#, i % 37);
            while data.len() < 98 {
                data.push_str("1,");
            }
            data.push_str("0]}");
            StreamRecord {
                sequence_number: SequenceNumber(format!(
                    "4960118965842235937883629852182763{:022}",
                    i
                )),
                approximate_arrival_ms: 1_767_225_600_000 + i as i64 * 10,
                body: RecordBody::Kinesis {
                    partition_key: format!("user-{}", i % 37),
                    data: data.into_bytes(),
                },
            }
        })
        .collect();
    let fragments: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            encode_record(&ctx, r, &mut out);
            out
        })
        .collect();
    let mut payload = Vec::new();
    assemble_event(fragments.iter().map(Vec::as_slice), &mut payload);
    (records, payload)
}
