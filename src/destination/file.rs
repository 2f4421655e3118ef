//! A local JSONL file: one failure record per line, exactly the document that would be the
//! body of an SQS message. It serves as the `file://` on-failure destination and as the
//! dead-letter file, so both can be read back (and redriven) the same way.
//!
//! Writes are synchronous appends: a line is small, and a blocking write keeps simulations
//! deterministic (see `checkpoint`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{DestinationError, FailureDestination};

pub struct JsonlFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl JsonlFile {
    /// The file is created (with its directory) on the first line written.
    pub fn new(path: &Path) -> Self {
        JsonlFile {
            path: path.to_path_buf(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, document: &[u8]) -> Result<(), DestinationError> {
        let fail = |e: std::io::Error| {
            DestinationError(format!("cannot write {}: {e}", self.path.display()))
        };
        let mut guard = self
            .file
            .lock()
            .map_err(|e| DestinationError(e.to_string()))?;
        if guard.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(fail)?,
            );
        }
        let file = guard
            .as_mut()
            .ok_or_else(|| DestinationError("file not open".into()))?;
        let mut line = Vec::with_capacity(document.len() + 1);
        line.extend_from_slice(document);
        line.push(b'\n');
        file.write_all(&line).map_err(fail)?;
        file.flush().map_err(fail)
    }
}

#[async_trait]
impl FailureDestination for JsonlFile {
    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn send(&self, document: &[u8]) -> Result<(), DestinationError> {
        self.append(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_one_document_each_and_the_directory_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/failures.jsonl");
        let file = JsonlFile::new(&path);
        file.append(br#"{"a":1}"#).expect("append");
        file.append(br#"{"b":2}"#).expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n"
        );
    }
}
