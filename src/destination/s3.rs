//! The S3 on-failure destination (spec 3.3): one object per discarded batch, holding the
//! failure record plus `payload`, the whole invocation event as an escaped JSON string,
//! under Lambda's key `aws/lambda/<ESM-UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`.
//!
//! The key and body are pure functions (`object_key`, `object_body`), tested here; the
//! type around them does the I/O. The bucket is checked once, in `connect` (HeadBucket), so
//! a missing bucket stops the start with "Bucket not found: <arn>". `send` makes one
//! PutObject; retrying and the dead-letter fallback are `delivery.rs`'s.
//!
//! Deterministic names [decision]: the ESM-UUID is the mapping's name when that is a UUID
//! (a mapping from AWS JSON is named by its `UUID`), else a UUID made from the MD5 of the
//! name, so a restart writes under the same prefix; the key's last `<uuid>` is made from the
//! MD5 of the body, so a retried PutObject of the same record overwrites its own object.

use anyhow::bail;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

use crate::event::request_id::format_uuid;

use super::{lookup_failed, send_failed, DestinationError, DiscardedBatch, FailureDestination};
use crate::arn::s3_bucket;
use crate::aws::{self, AwsFactory, ErrorClass};

pub struct S3Destination {
    arn: String,
    bucket: String,
    esm_uuid: String,
    client: aws_sdk_s3::Client,
}

impl S3Destination {
    /// From a bucket ARN (`arn:aws:s3:::BUCKET`) and the mapping's name: HeadBucket at
    /// start. A bucket that does not exist is the error "Bucket not found: <arn>".
    pub async fn connect(
        factory: &AwsFactory,
        bucket_arn: &str,
        mapping_name: &str,
    ) -> anyhow::Result<S3Destination> {
        let Some(bucket) = s3_bucket(bucket_arn) else {
            bail!("not an S3 bucket ARN: {bucket_arn:?} (expected arn:aws:s3:::BUCKET)");
        };
        let client = aws::s3(&factory.config_for(bucket_arn).await);
        client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|error| {
                let missing = aws::classify(&error) == ErrorClass::NotFound
                    || error.raw_response().map(|r| r.status().as_u16()) == Some(404);
                lookup_failed(missing, "S3", "bucket", bucket_arn, aws::describe(&error))
            })?;
        Ok(S3Destination {
            arn: bucket_arn.to_string(),
            bucket: bucket.to_string(),
            esm_uuid: esm_uuid(mapping_name),
            client,
        })
    }
}

#[async_trait]
impl FailureDestination for S3Destination {
    fn describe(&self) -> String {
        self.arn.clone()
    }

    async fn send(&self, batch: &DiscardedBatch<'_>) -> Result<(), DestinationError> {
        let body = object_body(batch.document, batch.event)
            .map_err(|why| DestinationError(format!("failure record for {}: {why}", self.arn)))?;
        let key = object_key(
            &self.esm_uuid,
            batch.shard_id,
            batch.timestamp_ms,
            &uuid_of(&body),
        );
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                let gone = (aws::error_code(&error) == Some("NoSuchBucket")).then_some("bucket");
                send_failed("PutObject", &self.arn, gone, aws::describe(&error))
            })
    }
}

/// `aws/lambda/<ESM-UUID>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>`, the time in UTC.
pub fn object_key(esm_uuid: &str, shard_id: &str, timestamp_ms: i64, uuid: &str) -> String {
    let time = DateTime::<Utc>::from_timestamp_millis(timestamp_ms).unwrap_or_default();
    format!(
        "aws/lambda/{esm_uuid}/{shard_id}/{}/{}-{uuid}",
        time.format("%Y/%m/%d"),
        time.format("%Y-%m-%dT%H.%M.%S")
    )
}

/// The failure record document with `"payload"`: the event as a JSON string, added as its
/// last key (the document's own keys keep their order and bytes).
pub fn object_body(document: &[u8], event: &[u8]) -> Result<Vec<u8>, String> {
    let event = std::str::from_utf8(event).map_err(|e| format!("the event is not UTF-8 ({e})"))?;
    let Some(open) = document.strip_suffix(b"}") else {
        return Err("the failure record is not a JSON object".into());
    };
    let payload = serde_json::to_string(event).map_err(|e| e.to_string())?;
    let mut body = Vec::with_capacity(document.len() + payload.len() + 12);
    body.extend_from_slice(open);
    body.extend_from_slice(b",\"payload\":");
    body.extend_from_slice(payload.as_bytes());
    body.push(b'}');
    Ok(body)
}

/// The ESM-UUID of a mapping: its name when that is a UUID, else one made from the name.
pub fn esm_uuid(mapping_name: &str) -> String {
    if is_uuid(mapping_name) {
        mapping_name.to_string()
    } else {
        uuid_of(mapping_name.as_bytes())
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A name-based UUID (version 3: MD5) of `bytes`.
fn uuid_of(bytes: &[u8]) -> String {
    format_uuid(u128::from_be_bytes(Md5::digest(bytes).into()), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_lambdas_layout_in_utc() {
        // 2026-12-04T17:05:09.250Z
        let key = object_key(
            "a1b2c3d4-0000-4000-8000-000000000001",
            "shardId-000000000003",
            1_796_403_909_250,
            "u",
        );
        assert_eq!(
            key,
            "aws/lambda/a1b2c3d4-0000-4000-8000-000000000001/shardId-000000000003/2026/12/04/2026-12-04T17.05.09-u"
        );
    }

    #[test]
    fn the_body_is_the_record_with_the_event_as_its_last_key_an_escaped_string() {
        let document = br#"{"version":"1.0","KinesisBatchInfo":{"batchSize":1}}"#;
        let event = br#"{"Records":[{"kinesis":{"data":"aGk="}}]}"#;
        let body = object_body(document, event).expect("body");
        assert_eq!(
            String::from_utf8(body.clone()).expect("utf-8"),
            r#"{"version":"1.0","KinesisBatchInfo":{"batchSize":1},"payload":"{\"Records\":[{\"kinesis\":{\"data\":\"aGk=\"}}]}"}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            parsed["payload"].as_str().map(str::as_bytes),
            Some(&event[..])
        );
        assert!(object_body(b"[]", event).is_err());
        assert!(object_body(document, &[0xff]).is_err());
    }

    #[test]
    fn the_esm_uuid_is_the_name_when_it_is_one_else_made_from_the_name() {
        let uuid = "14e0db71-5d35-4eb5-b481-8945cf9d10c2";
        assert_eq!(esm_uuid(uuid), uuid);
        let made = esm_uuid("orders-to-fn");
        assert_eq!(made, esm_uuid("orders-to-fn"), "stable");
        assert_ne!(made, esm_uuid("other"));
        assert!(is_uuid(&made), "{made}");
        assert_eq!(&made[14..15], "3", "version 3");
        assert!(!is_uuid("orders-to-fn"));
    }
}
