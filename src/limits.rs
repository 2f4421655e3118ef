//! Every AWS limit the engine, the simulator and the tools obey: one constant each, with
//! the AWS page that states it and what it says.
//!
//! A limit written as a bare number in several places drifts (the Lambda payload limit
//! once appeared with two values); here each has one name, and config checks, sources,
//! functions and destinations use that name. Types follow the first use: sizes and counts
//! are `usize`, event source mapping parameters `i64` (the API's integers, as the config
//! reads them), durations in seconds `u64`, SDK parameters the SDK's type.

// ---- Lambda invocation ----

/// The largest event (request payload) Lambda passes to a synchronous invocation:
/// 6 MB = 6,291,456 bytes. A batch is cut so its event stays within it.
/// Lambda Invoke API (docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): "For
/// synchronous invocations, the maximum payload size is 6 MB." Lambda quotas
/// (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): "Invocation payload
/// (request and response): 6 MB each for request and response (synchronous)".
pub const LAMBDA_INVOCATION_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// The largest response a synchronous invocation may return: 6,291,556 bytes, 100 more
/// than the request limit. The documentation says "6 MB" for both; the number is the one
/// Lambda's own error names when a function answers more: `Response payload size
/// exceeded maximum allowed payload size (6291556 bytes).` (errorType
/// `Function.ResponseSizeTooLarge`; quoted e.g. in github.com/DataBiosphere/azul/issues/8258).
pub const LAMBDA_RESPONSE_PAYLOAD_BYTES: usize = 6_291_556;

/// The longest function timeout: 900 s. Lambda quotas: "Function timeout: 900 seconds
/// (15 minutes)"; "Code can run for up to 15 minutes in a single invocation".
pub const LAMBDA_MAX_TIMEOUT_SECONDS: u64 = 900;

// ---- Event source mapping parameters (Kinesis and DynamoDB Streams) ----
// CreateEventSourceMapping (docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).

/// BatchSize: "Amazon Kinesis – Default 100. Max 10,000. Amazon DynamoDB Streams –
/// Default 100. Max 10,000."
pub const ESM_MAX_BATCH_SIZE: i64 = 10_000;

/// MaximumBatchingWindowInSeconds: "Valid Range: Minimum value of 0. Maximum value of 300."
pub const ESM_MAX_BATCHING_WINDOW_SECONDS: i64 = 300;

/// ParallelizationFactor: "Valid Range: Minimum value of 1. Maximum value of 10."
pub const ESM_MAX_PARALLELIZATION_FACTOR: i64 = 10;

/// MaximumRecordAgeInSeconds, lowest value other than -1 (infinite): "The minimum valid
/// value for maximum record age is 60s. Although values less than 60 and greater than -1
/// fall within the parameter's absolute range, they are not allowed".
pub const ESM_MIN_RECORD_AGE_SECONDS: i64 = 60;

/// MaximumRecordAgeInSeconds: "Valid Range: Minimum value of -1. Maximum value of 604800."
pub const ESM_MAX_RECORD_AGE_SECONDS: i64 = 604_800;

/// MaximumRetryAttempts: "Valid Range: Minimum value of -1. Maximum value of 10000."
pub const ESM_MAX_RETRY_ATTEMPTS: i64 = 10_000;

/// TumblingWindowInSeconds: "Valid Range: Minimum value of 0. Maximum value of 900."
pub const ESM_MAX_TUMBLING_WINDOW_SECONDS: i64 = 900;

/// The state a tumbling window carries: 1 MB, counted as 1,048,576 bytes of compact JSON.
/// Kinesis / DynamoDB tumbling windows (docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html):
/// "Your state can be a maximum of 1 MB per shard. If it exceeds that size, Lambda
/// terminates the window early."
pub const ESM_TUMBLING_WINDOW_STATE_BYTES: usize = 1_048_576;

/// Filters per mapping (the default quota). Event filtering
/// (docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html): "By default,
/// you can define up to five different filters for a single event source mapping."
pub const ESM_MAX_FILTERS: usize = 5;

/// Longest filter pattern. Filter (docs.aws.amazon.com/lambda/latest/api/API_Filter.html),
/// Pattern: "Length Constraints: Minimum length of 0. Maximum length of 4096."
pub const ESM_MAX_FILTER_PATTERN_CHARS: usize = 4096;

// ---- Kinesis Data Streams ----

/// Records one GetRecords call returns at most. GetRecords
/// (docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html), Limit: "The
/// maximum number of records to return. Specify a value of up to 10,000."
pub const KINESIS_GET_RECORDS_MAX_RECORDS: usize = 10_000;

/// Bytes one GetRecords call returns at most: 10 MiB. GetRecords: "A GetRecords operation
/// request can retrieve up to 10 MB of data" (the API reference: "The maximum size of data
/// that GetRecords can return is 10 MiB").
pub const KINESIS_GET_RECORDS_MAX_BYTES: usize = 10 * 1024 * 1024;

/// A shard iterator's lifetime: 5 minutes. GetShardIterator
/// (docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html): "A shard
/// iterator expires 5 minutes after it is returned to the requester."
pub const KINESIS_ITERATOR_LIFETIME_SECONDS: u64 = 300;

/// The largest record (data blob): 1 MiB. PutRecords
/// (docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html): "Each record in
/// the request can be as large as 1 MiB".
pub const KINESIS_MAX_RECORD_DATA_BYTES: usize = 1024 * 1024;

/// Longest partition key. PutRecordsRequestEntry: "Partition keys are Unicode strings
/// with a maximum length limit of 256 characters for each key."
pub const KINESIS_MAX_PARTITION_KEY_CHARS: usize = 256;

/// Records per PutRecords call. PutRecords: "Each PutRecords request can support up to
/// 500 records."
pub const KINESIS_PUT_RECORDS_MAX_RECORDS: usize = 500;

/// Bytes per PutRecords call. PutRecords: "up to a limit of 5 MiB for the entire request,
/// including partition keys."
pub const KINESIS_PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Longest stream name. CreateStream
/// (docs.aws.amazon.com/kinesis/latest/APIReference/API_CreateStream.html), StreamName:
/// "Length Constraints: Minimum length of 1. Maximum length of 128."
pub const KINESIS_MAX_STREAM_NAME_CHARS: usize = 128;

/// A stream's default retention, which is also its minimum: 24 hours. Change the data
/// retention period (docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html):
/// "A Kinesis data stream stores records from 24 hours by default, up to 8760 hours
/// (365 days)"; "You can decrease the retention period down to a minimum of 24 hours".
pub const KINESIS_DEFAULT_RETENTION_HOURS: u32 = 24;

/// A stream's longest retention: 8,760 hours (same page as above; IncreaseStreamRetentionPeriod:
/// "The maximum value of a stream's retention period is 8760 hours (365 days).").
pub const KINESIS_MAX_RETENTION_HOURS: u32 = 8760;

// ---- DynamoDB and DynamoDB Streams ----

/// Shortest and longest table name. Constraints in Amazon DynamoDB
/// (docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html), naming
/// rules: "Table names and index names must be between 3 and 255 characters long".
pub const DYNAMODB_MIN_TABLE_NAME_CHARS: usize = 3;
pub const DYNAMODB_MAX_TABLE_NAME_CHARS: usize = 255;

/// Records one GetRecords call returns at most. DynamoDB Streams GetRecords
/// (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html):
/// "GetRecords can retrieve a maximum of 1 MB of data or 1000 stream records, whichever
/// comes first." Limit: "The upper limit is 1000."
pub const DYNAMODB_GET_RECORDS_MAX_RECORDS: usize = 1_000;

/// Bytes one GetRecords call returns at most: "1 MB" (same sentence), taken as
/// 1,000,000 bytes of records' SizeBytes.
pub const DYNAMODB_GET_RECORDS_MAX_BYTES: usize = 1_000_000;

/// A shard iterator's lifetime: 15 minutes. DynamoDB Streams GetShardIterator
/// (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html):
/// "A shard iterator expires 15 minutes after it is returned to the requester."
pub const DYNAMODB_ITERATOR_LIFETIME_SECONDS: u64 = 900;

/// Retention, fixed: 24 hours. DynamoDB Streams GetShardIterator: "In DynamoDB Streams,
/// there is a 24 hour limit on data retention."
pub const DYNAMODB_STREAMS_RETENTION_HOURS: u32 = 24;

// ---- SNS ----

/// The largest message published to a topic: 256 KiB = 262,144 bytes. SNS Publish
/// (docs.aws.amazon.com/sns/latest/api/API_Publish.html), Message: "messages must be
/// UTF-8 encoded strings and at most 256 KB in size (262,144 bytes, not 262,144
/// characters)." (Topics can now raise this to 1 MiB with their `MaximumMessageSize`
/// attribute; 262,144 is the default every topic has: docs.aws.amazon.com/sns/latest/dg/large-message-payloads.html.)
pub const SNS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

// ---- SQS ----

/// Messages one ReceiveMessage call returns at most. ReceiveMessage
/// (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html),
/// MaxNumberOfMessages: "Valid values: 1 to 10. Default: 1."
pub const SQS_RECEIVE_MAX_MESSAGES: i32 = 10;
