//! CreateEventSourceMapping, UpdateEventSourceMapping and DeleteEventSourceMapping on the
//! running set: checked in Lambda's order (the request, the function, the ranges through
//! `config::resolve`, duplicates, the source itself), saved, then applied by a task that
//! stops the old supervisor (in-flight invocations finish, checkpoints are written) and
//! starts the new one, so an update continues from the position the old one reached.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::definition::{check_create, check_function, merge_update};
use super::ids::new_mapping_uuid;
use super::refusal::Refusal;
use super::state::EsmState;
use super::{MappingView, Origin, Running, RunningMappings};
use crate::config::Mapping;
use crate::engine::supervisor::run_mapping;

impl RunningMappings {
    /// CreateEventSourceMapping: the new mapping, `Creating` until its supervisor starts.
    pub async fn create(
        self: &Arc<Self>,
        request: Map<String, Value>,
    ) -> Result<MappingView, Refusal> {
        let _change = self.changes.lock().await;
        self.writable()?;
        check_create(&request)?;
        check_function(&request, &self.assembler.config)?;
        let uuid = new_mapping_uuid();
        let mapping = self.resolve(&request, &uuid)?;
        self.check_duplicate(&mapping, &uuid)?;
        let ctx = self
            .assembler
            .context(&mapping, None)
            .await
            .map_err(|e| Refusal::InvalidParameter(format!("{e:#}")))?;
        self.save(&uuid, &request)?;
        let now = self.assembler.clock.now_ms();
        let mut running = Running::new(ctx.clone(), now, Origin::Api(request));
        running.state = EsmState::Creating;
        self.entries().insert(uuid.clone(), running);
        let view = self.view(&uuid)?;
        tracing::info!(mapping = %uuid, source = %mapping.event_source_arn, function = %mapping.function_name, "mapping created through the Lambda API");
        let set = self.clone();
        let task = tokio::spawn(async move {
            set.set_state(&uuid, EsmState::settled(ctx.mapping.enabled));
            run_mapping(ctx).await;
        });
        self.set_task(&view.uuid, task);
        Ok(view)
    }

    /// UpdateEventSourceMapping: the new definition at once, the new supervisor once the
    /// old one has stopped; `Updating`, `Enabling` or `Disabling` meanwhile.
    pub async fn update(
        self: &Arc<Self>,
        uuid: &str,
        request: Map<String, Value>,
    ) -> Result<MappingView, Refusal> {
        let _change = self.changes.lock().await;
        self.writable()?;
        let (definition, old) = self.changeable(uuid)?;
        let merged = merge_update(&definition, &request)?;
        check_function(&merged, &self.assembler.config)?;
        let mapping = self.resolve(&merged, uuid)?;
        self.check_duplicate(&mapping, uuid)?;
        let ctx = self
            .assembler
            .context(&mapping, Some(old.status.clone()))
            .await
            .map_err(|e| Refusal::InvalidParameter(format!("{e:#}")))?;
        self.save(uuid, &merged)?;
        let old_task = {
            let mut entries = self.entries();
            let running = entries.get_mut(uuid).ok_or_else(Refusal::no_such_mapping)?;
            running.state = EsmState::of_update(old.mapping.enabled, mapping.enabled);
            running.ctx = ctx.clone();
            running.origin = Origin::Api(merged);
            running.last_modified_ms = self.assembler.clock.now_ms();
            running.task.take()
        };
        let view = self.view(uuid)?;
        tracing::info!(mapping = %uuid, state = view.state.as_str(), "mapping updated through the Lambda API: restarting its shards from their checkpoints");
        let set = self.clone();
        let id = uuid.to_string();
        let task = tokio::spawn(async move {
            old.cancel.cancel();
            if let Some(task) = old_task {
                if let Err(error) = task.await {
                    tracing::error!(mapping = %id, %error, "the mapping's old task failed");
                }
            }
            set.set_state(&id, EsmState::settled(ctx.mapping.enabled));
            run_mapping(ctx).await;
        });
        self.set_task(uuid, task);
        Ok(view)
    }

    /// DeleteEventSourceMapping: `Deleting` until the supervisor has stopped; then the
    /// mapping and its positions are forgotten.
    pub async fn delete(self: &Arc<Self>, uuid: &str) -> Result<MappingView, Refusal> {
        let _change = self.changes.lock().await;
        self.writable()?;
        let (_, ctx) = self.changeable(uuid)?;
        self.saved.remove(uuid).map_err(Refusal::Service)?;
        let old_task = {
            let mut entries = self.entries();
            let running = entries.get_mut(uuid).ok_or_else(Refusal::no_such_mapping)?;
            running.state = EsmState::Deleting;
            running.task.take()
        };
        let view = self.view(uuid)?;
        tracing::info!(mapping = %uuid, "mapping deleted through the Lambda API: stopping its shards");
        let set = self.clone();
        let id = uuid.to_string();
        let task = tokio::spawn(async move {
            ctx.cancel.cancel();
            if let Some(task) = old_task {
                if let Err(error) = task.await {
                    tracing::error!(mapping = %id, %error, "the mapping's task failed");
                }
            }
            if let Err(error) = ctx.store.forget_mapping(&ctx.mapping.name) {
                tracing::error!(mapping = %id, %error, "cannot forget the deleted mapping's positions");
            }
            set.entries().remove(&id);
            tracing::info!(mapping = %id, "mapping deleted");
        });
        self.set_task(uuid, task);
        Ok(view)
    }

    /// Refused with a lease table (see `start`).
    fn writable(&self) -> Result<(), Refusal> {
        match &self.frozen {
            Some(why) => Err(Refusal::InvalidParameter(why.clone())),
            None => Ok(()),
        }
    }

    /// The definition and context of an API mapping at rest; a config mapping or one in
    /// the middle of a change is refused.
    fn changeable(
        &self,
        uuid: &str,
    ) -> Result<
        (
            Map<String, Value>,
            Arc<crate::engine::context::MappingContext>,
        ),
        Refusal,
    > {
        let entries = self.entries();
        let running = entries.get(uuid).ok_or_else(Refusal::no_such_mapping)?;
        if running.state.in_transition() {
            return Err(Refusal::Conflict(format!(
                "The operation cannot be performed at this time. The event source mapping {} is {}: try again once it is Enabled or Disabled.",
                self.mapping_arn(uuid),
                running.state.as_str()
            )));
        }
        match &running.origin {
            Origin::Api(definition) => Ok((definition.clone(), running.ctx.clone())),
            Origin::Config => Err(Refusal::Conflict(format!(
                "The event source mapping {uuid} is mapping {:?} of esm-sim's config file: change it there (and restart esm-sim), not through the Lambda API.",
                running.ctx.mapping.name
            ))),
        }
    }

    /// Lambda allows one mapping per event source and function.
    fn check_duplicate(&self, mapping: &Mapping, except: &str) -> Result<(), Refusal> {
        let entries = self.entries();
        let existing = entries.iter().find(|(uuid, r)| {
            uuid.as_str() != except
                && r.ctx.mapping.function_name == mapping.function_name
                && r.ctx.mapping.event_source() == mapping.event_source()
        });
        match existing {
            Some((uuid, _)) => Err(Refusal::Conflict(format!(
                "The event source arn (\" {} \") and function (\" {} \") provided mapping already exists. Please update or delete the existing mapping with UUID {uuid}",
                mapping.event_source(),
                mapping.function_name
            ))),
            None => Ok(()),
        }
    }

    fn save(&self, uuid: &str, definition: &Map<String, Value>) -> Result<(), Refusal> {
        let mut document = definition.clone();
        document.insert("UUID".into(), Value::String(uuid.into()));
        self.saved.save(uuid, &document).map_err(Refusal::Service)
    }

    fn set_task(&self, uuid: &str, task: tokio::task::JoinHandle<()>) {
        if let Some(running) = self.entries().get_mut(uuid) {
            running.task = Some(task);
        }
    }
}
