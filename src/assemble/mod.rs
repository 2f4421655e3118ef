//! Wiring: turns a validated config into running parts — simulated streams, functions,
//! destinations — and one `MappingContext` per mapping. Shared by `run` and `simulate`,
//! which differ only in the clock, the checkpoint store and the seeds they pass in.
//! `share` and `assemble_with` split it in two for a simulation of several workers: one
//! world (`Shared`), and each worker's contexts over it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use tokio_util::sync::CancellationToken;

use crate::arn::Arn;
use crate::aws::AwsFactory;
use crate::checkpoint::CheckpointStore;
use crate::clock::Clock;
use crate::config::schema::{AwsIdentity, FaultConfig, FunctionConfig, SimStreamConfig};
use crate::config::{Config, Mapping, StartingPosition};
use crate::coordination::keeper::LeaseKeeper;
use crate::destination::delivery::FailureDelivery;
use crate::destination::file::{JsonlFile, LineSync};
use crate::destination::s3::S3Destination;
use crate::destination::sns::SnsDestination;
use crate::destination::sqs::SqsDestination;
use crate::destination::FailureDestination;
use crate::engine::context::MappingContext;
use crate::engine::invocation_log::InvocationLog;
use crate::engine::status::MappingStatus;
use crate::event::request_id::RequestIds;
use crate::function::command::CommandFunction;
use crate::function::http::HttpFunction;
use crate::function::lambda::LambdaFunction;
use crate::function::simulated::SimulatedFunction;
use crate::function::tap::{Observer, Tapped};
use crate::function::Function;
use crate::model::StreamKind;
use crate::sim::SimulatedStream;
use crate::source::dynamodb_streams::DynamodbStreamsSource;
use crate::source::kinesis::KinesisSource;
use crate::source::kinesis_efo::KinesisEfoSource;
use crate::source::simulated::SimulatedSource;
use crate::source::StreamSource;

pub mod live;

/// Everything `run` and `simulate` start from.
pub struct Parts {
    pub contexts: Vec<Arc<MappingContext>>,
    /// Simulated streams by ARN.
    pub streams: BTreeMap<String, Arc<SimulatedStream>>,
}

#[derive(Clone)]
pub struct Seeds {
    /// Seed of the simulated world and function: the config's, so a restart regenerates
    /// the same world.
    pub world: u64,
    /// Seed of jitter.
    pub engine: u64,
    /// Where failure-record request ids come from (random in `run`, derived in `simulate`).
    pub request_ids: Arc<RequestIds>,
}

/// What differs between `run` and `simulate`.
pub struct Environment<'a> {
    pub clock: Clock,
    pub store: Arc<dyn CheckpointStore>,
    /// When each simulated stream was created (epoch ms).
    pub stream_created_at_ms: &'a (dyn Fn(&SimStreamConfig) -> anyhow::Result<i64> + Sync),
    pub seeds: Seeds,
    pub invocation_log: Option<Arc<InvocationLog>>,
    pub tap: Option<Observer>,
    /// How to reach AWS; `None` (simulate) refuses real streams and destinations, whose
    /// network waits would break virtual time.
    pub aws: Option<&'a AwsFactory>,
    /// Whether failure files (the `file://` destinations, the dead-letter file) fsync each
    /// line: `run`, where the checkpoint after a discarded batch relies on it.
    pub line_sync: LineSync,
    /// The worker's lease keeper, when mappings are shared through a lease table.
    pub leases: Option<Arc<LeaseKeeper>>,
    pub cancel: CancellationToken,
}

/// What the workers of one simulation share: the simulated streams (one world: each
/// record is produced once, whoever reads it), their faults, the functions the mappings
/// invoke (a shard's generator follows it from worker to worker) and the failure files.
pub struct Shared {
    pub streams: BTreeMap<String, Arc<SimulatedStream>>,
    faults: BTreeMap<String, FaultConfig>,
    functions: BTreeMap<String, Arc<dyn Function>>,
    dead_letter: Arc<JsonlFile>,
    files: BTreeMap<PathBuf, Arc<JsonlFile>>,
}

/// The shared half of `config`'s parts: the simulated streams, the functions the mappings
/// use and the dead-letter file.
pub async fn share(config: &Config, env: &Environment<'_>) -> anyhow::Result<Shared> {
    let (streams, faults) = simulated_streams(config, env.stream_created_at_ms, env.seeds.world)?;
    let functions = mapped_functions(config, env.aws, env.seeds.world, env.tap.as_ref()).await?;
    Ok(Shared {
        streams,
        faults,
        functions,
        dead_letter: Arc::new(JsonlFile::open(&config.dead_letter_file, env.line_sync)?),
        files: BTreeMap::new(),
    })
}

/// The parts of `config`, in four steps: the simulated streams, the functions the
/// mappings use, then per mapping its source and failure destination, tied together in
/// its `MappingContext`.
pub async fn assemble(config: &Config, env: Environment<'_>) -> anyhow::Result<Parts> {
    let mut shared = share(config, &env).await?;
    assemble_with(config, env, &mut shared).await
}

/// One `MappingContext` per mapping over `shared` (a worker of a simulation with several).
pub async fn assemble_with(
    config: &Config,
    env: Environment<'_>,
    shared: &mut Shared,
) -> anyhow::Result<Parts> {
    let mut contexts = Vec::new();
    for mapping in &config.mappings {
        contexts.push(context_of(config, mapping, &env, shared).await?);
    }
    Ok(Parts {
        contexts,
        streams: shared.streams.clone(),
    })
}

/// One mapping's `MappingContext` over `shared`: its source, function (built now if no
/// mapping used it before: a mapping created at runtime) and failure destination. Its stop
/// token is a child of `env.cancel`, so the mapping can be stopped alone.
pub async fn context_of(
    config: &Config,
    mapping: &Mapping,
    env: &Environment<'_>,
    shared: &mut Shared,
) -> anyhow::Result<Arc<MappingContext>> {
    let clock = env.clock;
    check_starting_timestamp(mapping, clock)?;
    let arn = &mapping.event_source_arn;
    let source: Arc<dyn StreamSource> = match shared.streams.get(arn) {
        Some(stream) => Arc::new(SimulatedSource::new(
            stream.clone(),
            clock,
            shared.faults.get(arn).cloned().unwrap_or_default(),
            env.seeds.world,
        )),
        None => real_source(mapping, real(env.aws, &mapping.name, arn)?).await?,
    };
    let function = match shared.functions.get(mapping.function_name.as_str()) {
        Some(function) => function.clone(),
        None => {
            let function = config.function_of(mapping).ok_or_else(|| {
                anyhow!(
                    "mapping {:?}: function {:?} not found",
                    mapping.name,
                    mapping.function_name
                )
            })?;
            let built =
                tapped_function(config, function, env.aws, env.seeds.world, env.tap.as_ref())
                    .await?;
            shared
                .functions
                .insert(function.name.clone(), built.clone());
            built
        }
    };
    let destination = destination_of(mapping, env.aws, env.line_sync, &mut shared.files).await?;
    let pace = &mapping.pace;
    Ok(Arc::new(MappingContext {
        mapping: mapping.clone(),
        source,
        function,
        delivery: FailureDelivery {
            destination,
            dead_letter: shared.dead_letter.clone(),
            on_failure: mapping.on_destination_failure,
            retry_ms: pace.destination_retry_ms,
            backoff_initial_ms: pace.throttle_backoff_initial_ms,
            backoff_max_ms: pace.throttle_backoff_max_ms,
        },
        store: env.store.clone(),
        clock,
        seed: env.seeds.engine,
        request_ids: env.seeds.request_ids.clone(),
        event_source_arn: mapping.event_source_arn.as_str().into(),
        aws_region: Arn::parse(&mapping.event_source_arn)
            .ok()
            .and_then(|arn| arn.region())
            .unwrap_or(&config.aws.region)
            .into(),
        invoke_identity_arn: invoke_identity_arn(&config.aws.account_id, &mapping.function_name)
            .into(),
        invocation_log: env.invocation_log.clone(),
        status: Arc::new(MappingStatus::default()),
        leases: env.leases.clone(),
        cancel: env.cancel.child_token(),
    }))
}

/// Simulated streams by ARN, and their fault settings by ARN.
type SimulatedStreams = (
    BTreeMap<String, Arc<SimulatedStream>>,
    BTreeMap<String, FaultConfig>,
);

/// The config's `[[streams]]`, each created at `stream_created_at_ms(stream)`.
fn simulated_streams(
    config: &Config,
    stream_created_at_ms: &(dyn Fn(&SimStreamConfig) -> anyhow::Result<i64> + Sync),
    world_seed: u64,
) -> anyhow::Result<SimulatedStreams> {
    let mut streams = BTreeMap::new();
    let mut faults = BTreeMap::new();
    for stream in &config.streams {
        let created_at = stream_created_at_ms(stream)?;
        let simulated = Arc::new(SimulatedStream::new(
            stream,
            &config.aws,
            world_seed,
            created_at,
        ));
        faults.insert(simulated.arn(), stream.faults.clone());
        streams.insert(simulated.arn(), simulated);
    }
    Ok((streams, faults))
}

/// The functions some mapping invokes, by name (see `tapped_function`).
async fn mapped_functions(
    config: &Config,
    aws: Option<&AwsFactory>,
    world_seed: u64,
    tap: Option<&Observer>,
) -> anyhow::Result<BTreeMap<String, Arc<dyn Function>>> {
    let mut functions: BTreeMap<String, Arc<dyn Function>> = BTreeMap::new();
    let used = |name: &str| config.mappings.iter().any(|m| m.function_name == name);
    for function in config.functions.iter().filter(|f| used(&f.name)) {
        let built = tapped_function(config, function, aws, world_seed, tap).await?;
        functions.insert(function.name.clone(), built);
    }
    Ok(functions)
}

/// One function, behind the tap when there is one. Without AWS (simulate) only simulated
/// functions are allowed.
async fn tapped_function(
    config: &Config,
    function: &FunctionConfig,
    aws: Option<&AwsFactory>,
    world_seed: u64,
    tap: Option<&Observer>,
) -> anyhow::Result<Arc<dyn Function>> {
    if aws.is_none() && function.function_type != "simulated" {
        anyhow::bail!(
            "function {:?}: type = {:?} runs in real time; simulate runs simulated functions only (use esm-sim run)",
            function.name,
            function.function_type
        );
    }
    let built = build_function(function, &config.aws, aws, world_seed).await?;
    Ok(match tap {
        Some(observer) => Arc::new(Tapped {
            inner: built,
            observer: observer.clone(),
        }),
        None => built,
    })
}

/// A starting timestamp may not lie in the future.
fn check_starting_timestamp(mapping: &Mapping, clock: Clock) -> anyhow::Result<()> {
    if let StartingPosition::AtTimestamp(ms) = mapping.starting_position {
        if ms > clock.now_ms() {
            anyhow::bail!(
                "mapping {:?}: starting_position_timestamp = {}: cannot be in the future (now is {})",
                mapping.name,
                ms as f64 / 1000.0,
                clock.now_ms() as f64 / 1000.0
            );
        }
    }
    Ok(())
}

/// The source of a mapping on a real stream: GetRecords, or enhanced fan-out when the
/// mapping names a consumer.
async fn real_source(mapping: &Mapping, aws: &AwsFactory) -> anyhow::Result<Arc<dyn StreamSource>> {
    let arn = &mapping.event_source_arn;
    Ok(match (mapping.stream_kind, &mapping.consumer) {
        (StreamKind::Kinesis, Some(consumer)) => {
            let wait = Duration::from_millis(mapping.pace.poll_interval_ms);
            Arc::new(KinesisEfoSource::connect(aws, arn, consumer, wait).await?)
        }
        (StreamKind::Kinesis, None) => Arc::new(KinesisSource::connect(aws, arn).await?),
        (StreamKind::Dynamodb, _) => Arc::new(DynamodbStreamsSource::connect(aws, arn).await?),
    })
}

/// A mapping's on-failure destination: SQS, SNS, S3 or a `file://` JSONL file (one open file
/// per path, shared by the mappings that name it, kept in `files`).
async fn destination_of(
    mapping: &Mapping,
    aws: Option<&AwsFactory>,
    line_sync: LineSync,
    files: &mut BTreeMap<PathBuf, Arc<JsonlFile>>,
) -> anyhow::Result<Option<Arc<dyn FailureDestination>>> {
    Ok(match &mapping.on_failure_destination {
        None => None,
        Some(uri) if Arn::parse(uri).is_ok_and(|arn| arn.service() == "sqs") => Some(Arc::new(
            SqsDestination::connect(real(aws, &mapping.name, uri)?, uri).await?,
        )),
        Some(uri) if Arn::parse(uri).is_ok_and(|arn| arn.service() == "sns") => Some(Arc::new(
            SnsDestination::connect(real(aws, &mapping.name, uri)?, uri).await?,
        )),
        Some(uri) if Arn::parse(uri).is_ok_and(|arn| arn.service() == "s3") => Some(Arc::new(
            S3Destination::connect(real(aws, &mapping.name, uri)?, uri, &mapping.name).await?,
        )),
        Some(uri) => {
            let path = uri
                .strip_prefix("file://")
                .map(PathBuf::from)
                .with_context(|| {
                    format!(
                        "mapping {:?}: destination {uri} is not supported by this build",
                        mapping.name
                    )
                })?;
            let file = match files.get(&path) {
                Some(file) => file.clone(),
                None => {
                    let file = Arc::new(JsonlFile::open(&path, line_sync)?);
                    files.insert(path, file.clone());
                    file
                }
            };
            Some(file)
        }
    })
}

/// The function of one `[[functions]]` entry, by its `type`. Shared with `esm-sim redrive`.
pub async fn build_function(
    function: &FunctionConfig,
    identity: &AwsIdentity,
    aws: Option<&AwsFactory>,
    world_seed: u64,
) -> anyhow::Result<Arc<dyn Function>> {
    Ok(match function.function_type.as_str() {
        "http" => Arc::new(HttpFunction::new(function, identity)?),
        "command" => Arc::new(CommandFunction::new(function, identity)?),
        "lambda" => {
            let what = format!("the Lambda function {:?}", function.name);
            Arc::new(LambdaFunction::connect(real(aws, &function.name, &what)?, function).await?)
        }
        _ => Arc::new(SimulatedFunction::new(function, identity, world_seed)),
    })
}

/// `invokeIdentityArn` of Kinesis events: the function's execution role.
pub fn invoke_identity_arn(account_id: &str, function_name: &str) -> String {
    format!("arn:aws:iam::{account_id}:role/{function_name}-role")
}

/// The AWS factory, or why a simulation cannot use a real resource.
fn real<'a>(
    aws: Option<&'a AwsFactory>,
    mapping: &str,
    arn: &str,
) -> anyhow::Result<&'a AwsFactory> {
    aws.ok_or_else(|| {
        anyhow!(
            "mapping {mapping:?}: {arn} is a real AWS resource; simulate runs simulated streams and local \
             destinations only (use esm-sim run)"
        )
    })
}
