//! The mappings the daemon runs, by UUID, and their life: started at start-up (the config
//! file's and those created earlier through the Lambda API), created, updated and deleted
//! while the daemon runs (`changes`), stopped at shutdown.
//!
//! Each mapping runs as one supervisor task (`engine::supervisor::run_mapping`) under its
//! own stop token, so one mapping can be stopped and started again without touching the
//! others; its positions live in the checkpoint store under its name, which for a mapping
//! created through the API is its UUID. A change swaps the mapping's context at once (so
//! every view shows the new definition) and hands the stop of the old supervisor and the
//! start of the new one to a task, during which the mapping shows Lambda's transitional
//! `State` (`state`). Changes are serialised: one create, update or delete at a time.

mod changes;
pub mod definition;
pub mod ids;
pub mod refusal;
pub mod saved;
pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use self::definition::{function_arn, problems_message, to_entry};
use self::ids::config_mapping_uuid;
use self::refusal::Refusal;
use self::saved::SavedMappings;
use self::state::EsmState;
use crate::assemble::live::LiveAssembler;
use crate::config::resolve::resolve_added;
use crate::config::Mapping;
use crate::engine::context::MappingContext;
use crate::engine::status::ShardSnapshot;
use crate::engine::supervisor::run_mapping;

/// Where a mapping was defined.
#[derive(Clone, Debug)]
enum Origin {
    /// The config file (or a template): changed there, not through the API.
    Config,
    /// The Lambda API: its definition in the AWS JSON form, as saved.
    Api(Map<String, Value>),
}

struct Running {
    ctx: Arc<MappingContext>,
    state: EsmState,
    /// Epoch ms of the last create or update (start-up for config mappings).
    last_modified_ms: i64,
    origin: Origin,
    /// The supervisor, or the change that stops one supervisor and starts the next.
    task: Option<JoinHandle<()>>,
}

/// What the Lambda API shows of one mapping.
#[derive(Clone, Debug)]
pub struct MappingView {
    pub uuid: String,
    pub mapping: Mapping,
    pub state: EsmState,
    pub last_modified_ms: i64,
    pub function_arn: String,
    pub shards: Vec<ShardSnapshot>,
    pub from_config: bool,
}

pub struct RunningMappings {
    assembler: LiveAssembler,
    saved: SavedMappings,
    /// Relative `file://` destinations of API mappings resolve against this.
    base_dir: PathBuf,
    /// Why the API may not change mappings here (`None`: it may).
    frozen: Option<String>,
    entries: Mutex<BTreeMap<String, Running>>,
    changes: tokio::sync::Mutex<()>,
}

impl RunningMappings {
    /// Builds every mapping of the config and every mapping saved by the API, and starts
    /// them. A saved mapping that no longer resolves (its function or stream left the
    /// config) stops the start with the file named, rather than being dropped silently.
    pub async fn start(
        assembler: LiveAssembler,
        state_dir: &Path,
    ) -> anyhow::Result<Arc<RunningMappings>> {
        let frozen = assembler.leases.as_ref().map(|_| {
            "mappings are shared through a lease table ([coordination] store = \"dynamodb\"): every worker runs the mappings of its config file, so they are changed there, not through the Lambda API".to_string()
        });
        let set = RunningMappings {
            saved: SavedMappings::new(state_dir),
            base_dir: PathBuf::new(),
            frozen,
            entries: Mutex::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            assembler,
        };
        let now = set.assembler.clock.now_ms();
        let mut started = BTreeMap::new();
        for mapping in &set.assembler.config.mappings {
            let ctx = set.assembler.context(mapping, None).await?;
            let running = Running::new(ctx, now, Origin::Config);
            started.insert(config_mapping_uuid(&mapping.name), running);
        }
        for (path, text) in set.saved.load_all().map_err(anyhow::Error::msg)? {
            let (uuid, definition, mapping) = set
                .saved_mapping(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("mapping saved by the Lambda API in {}: fix the config (a function or stream it names may be gone) or delete the file", path.display()))?;
            let ctx = set.assembler.context(&mapping, None).await?;
            started.insert(uuid, Running::new(ctx, now, Origin::Api(definition)));
        }
        for running in started.values_mut() {
            running.task = Some(tokio::spawn(run_mapping(running.ctx.clone())));
        }
        *set.entries() = started;
        Ok(Arc::new(set))
    }

    /// Every mapping's context (for the admin API's views and the stats log).
    pub fn contexts(&self) -> Vec<Arc<MappingContext>> {
        self.entries().values().map(|r| r.ctx.clone()).collect()
    }

    /// One mapping as the Lambda API shows it.
    pub fn view(&self, uuid: &str) -> Result<MappingView, Refusal> {
        let entries = self.entries();
        let running = entries.get(uuid).ok_or_else(Refusal::no_such_mapping)?;
        Ok(self.view_of(uuid, running))
    }

    /// Every mapping, in UUID order.
    pub fn views(&self) -> Vec<MappingView> {
        let entries = self.entries();
        entries
            .iter()
            .map(|(uuid, r)| self.view_of(uuid, r))
            .collect()
    }

    /// The ARN Lambda gives the mapping `uuid`.
    pub fn mapping_arn(&self, uuid: &str) -> String {
        let aws = &self.assembler.config.aws;
        format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:{uuid}",
            aws.region, aws.account_id
        )
    }

    /// Waits until every mapping's supervisor and every change under way has stopped (the
    /// daemon's stop token was cancelled first).
    pub async fn stopped(&self) {
        let _changes = self.changes.lock().await;
        loop {
            let tasks: Vec<JoinHandle<()>> = self
                .entries()
                .values_mut()
                .filter_map(|r| r.task.take())
                .collect();
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                if let Err(error) = task.await {
                    tracing::error!(%error, "a mapping's task failed");
                }
            }
        }
    }

    fn view_of(&self, uuid: &str, running: &Running) -> MappingView {
        let mapping = running.ctx.mapping.clone();
        MappingView {
            uuid: uuid.to_string(),
            function_arn: function_arn(&self.assembler.config, &mapping.function_name),
            mapping,
            state: running.state,
            last_modified_ms: running.last_modified_ms,
            shards: running.ctx.status.snapshots(),
            from_config: matches!(running.origin, Origin::Config),
        }
    }

    /// A saved document: its UUID, definition and resolved mapping.
    fn saved_mapping(&self, text: &str) -> Result<(String, Map<String, Value>, Mapping), String> {
        let mut definition: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
        let uuid = match definition.remove("UUID") {
            Some(Value::String(uuid)) => uuid,
            _ => return Err("no \"UUID\"".into()),
        };
        let mapping = self
            .resolve(&definition, &uuid)
            .map_err(|refusal| format!("{refusal:?}"))?;
        Ok((uuid, definition, mapping))
    }

    /// A definition resolved exactly as a `[[mappings]]` entry of the config would be.
    fn resolve(&self, definition: &Map<String, Value>, uuid: &str) -> Result<Mapping, Refusal> {
        let entry = to_entry(definition, uuid)?;
        resolve_added(entry, &self.assembler.config, &self.base_dir)
            .map_err(|e| Refusal::InvalidParameter(problems_message(&e.problems, uuid)))
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, uuid: &str, state: EsmState) {
        if let Some(running) = self.entries().get_mut(uuid) {
            running.state = state;
        }
    }
}

impl Running {
    fn new(ctx: Arc<MappingContext>, now_ms: i64, origin: Origin) -> Running {
        Running {
            state: EsmState::settled(ctx.mapping.enabled),
            ctx,
            last_modified_ms: now_ms,
            origin,
            task: None,
        }
    }
}
