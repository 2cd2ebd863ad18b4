//! Records a run's events as they happen.
//!
//! Events are queued and appended at each step's end in one ref update, so a run costs a few
//! appends rather than one per event, while a crash still leaves every finished step in the log.

use crate::event::NewEvent;
use crate::store::{Store, StoreError};

/// The events of one run, on their way to the store.
pub struct Recorder<'s> {
    store: &'s Store,
    run: String,
    pending: Vec<NewEvent>,
    /// Ids of every event this run recorded (pending or appended).
    pub recorded: Vec<String>,
}

impl<'s> Recorder<'s> {
    pub fn new(store: &'s Store, run: impl Into<String>) -> Recorder<'s> {
        Recorder {
            store,
            run: run.into(),
            pending: Vec::new(),
            recorded: Vec::new(),
        }
    }

    /// The run id every event gets.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Queues `event` under this run and returns its id.
    pub fn record(&mut self, event: NewEvent) -> String {
        let event = event.run(self.run.clone());
        let id = event.id.clone();
        self.recorded.push(id.clone());
        self.pending.push(event);
        id
    }

    /// Appends everything queued, in one ref update.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.store.append_batch(batch)?;
        Ok(())
    }
}
