//! The invocation log of `simulate --invocation-log`: one JSON line per invocation attempt
//! (throttled ones included), in the order they happen, for tests and for people who want
//! to see exactly what the function received.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct InvocationLine<'a> {
    /// Clock time of the invoke, epoch ms.
    pub t_ms: i64,
    pub mapping: &'a str,
    pub shard_id: &'a str,
    pub first_sequence_number: &'a str,
    pub last_sequence_number: &'a str,
    pub records: usize,
    pub payload_bytes: usize,
    pub attempt: u32,
    pub outcome: &'static str,
}

pub struct InvocationLog {
    out: Mutex<BufWriter<Box<dyn Write + Send>>>,
}

impl InvocationLog {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::File::create(path)?)
        };
        Ok(InvocationLog {
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    pub fn write(&self, line: &InvocationLine<'_>) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let written = serde_json::to_writer(&mut *out, line)
            .map_err(std::io::Error::from)
            .and_then(|_| out.write_all(b"\n"));
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the invocation log");
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}
