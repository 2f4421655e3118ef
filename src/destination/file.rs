//! A local JSONL file: one failure record per line, exactly the document that would be the
//! body of an SQS message. It serves as the `file://` on-failure destination and as the
//! dead-letter file, so both can be read back (and redriven) the same way.
//!
//! Writes are synchronous appends of one whole line in one `write`: a line is small, and a
//! blocking write keeps simulations deterministic (see `checkpoint`). Crash consistency:
//! - in `run` (`LineSync::EveryLine`) each line is fsynced before `append` returns, so a
//!   failure record is durable before the checkpoint that passes its batch is saved;
//! - a crash in the middle of a write can still leave a torn last line (a power loss, or a
//!   SIGKILL inside a large `write`). Opening the file repairs it: the bytes after the last
//!   newline are cut off and logged. They belonged to a batch whose checkpoint was not yet
//!   saved (the line is written first), so that batch is processed again and its record
//!   written again, whole.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{DestinationError, DiscardedBatch, FailureDestination};

/// Whether lines are made durable as they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSync {
    /// fsync after every line (`run`: the checkpoint that follows relies on it).
    EveryLine,
    /// Leave it to the OS (`simulate` and tests: the file is a result, not a ledger).
    None,
}

pub struct JsonlFile {
    path: PathBuf,
    sync: LineSync,
    file: Mutex<Option<File>>,
}

impl JsonlFile {
    /// A file to append to. If it exists, a torn last line is repaired now; otherwise it
    /// is created (with its directory) on the first line written.
    pub fn open(path: &Path, sync: LineSync) -> Result<Self, DestinationError> {
        repair_torn_tail(path)
            .map_err(|e| DestinationError(format!("cannot repair {}: {e}", path.display())))?;
        Ok(JsonlFile {
            path: path.to_path_buf(),
            sync,
            file: Mutex::new(None),
        })
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
        if self.sync == LineSync::EveryLine {
            file.sync_data().map_err(fail)?;
        }
        Ok(())
    }
}

/// Cuts a last line that has no newline (a write torn by a crash) off the file, if the
/// file exists; logs what was cut.
fn repair_torn_tail(path: &Path) -> std::io::Result<()> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let Some(keep) = whole_lines_len(&mut file, len)? else {
        return Ok(());
    };
    let mut fragment = Vec::new();
    file.seek(SeekFrom::Start(keep))?;
    (&mut file).take(200).read_to_end(&mut fragment)?;
    file.set_len(keep)?;
    file.sync_all()?;
    tracing::warn!(file = %path.display(), bytes = len - keep,
        fragment = %String::from_utf8_lossy(&fragment),
        "cut a torn last line (a crash interrupted its write); its batch was not checkpointed and is written again when processed");
    Ok(())
}

/// The length of the file's whole lines when its last line is torn (no newline at the
/// end); `None` when the file ends with a newline or is empty.
fn whole_lines_len(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(None);
        }
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(Some(start + i as u64 + 1));
        }
        end = start;
    }
    Ok((len > 0).then_some(0))
}

#[async_trait]
impl FailureDestination for JsonlFile {
    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }

    async fn send(&self, batch: &DiscardedBatch<'_>) -> Result<(), DestinationError> {
        self.append(batch.document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_one_document_each_and_the_directory_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/failures.jsonl");
        let file = JsonlFile::open(&path, LineSync::EveryLine).expect("open");
        file.append(br#"{"a":1}"#).expect("append");
        file.append(br#"{"b":2}"#).expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n"
        );
    }

    #[test]
    fn opening_a_file_whose_last_line_is_torn_cuts_the_fragment_and_keeps_every_whole_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("failures.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"requestCon").expect("write");
        let file = JsonlFile::open(&path, LineSync::None).expect("open");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n",
            "repaired at open, before any write"
        );
        file.append(br#"{"c":3}"#).expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn a_torn_first_line_is_cut_to_an_empty_file_and_whole_files_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let torn = dir.path().join("torn.jsonl");
        std::fs::write(&torn, "{\"requestContext\":").expect("write");
        JsonlFile::open(&torn, LineSync::None).expect("open");
        assert_eq!(std::fs::read(&torn).expect("read"), b"");

        let whole = dir.path().join("whole.jsonl");
        std::fs::write(&whole, "{}\n{}\n").expect("write");
        JsonlFile::open(&whole, LineSync::None).expect("open");
        assert_eq!(std::fs::read(&whole).expect("read"), b"{}\n{}\n");

        let missing = dir.path().join("missing.jsonl");
        JsonlFile::open(&missing, LineSync::None).expect("open");
        assert!(!missing.exists(), "created on the first line, not at open");
    }

    #[test]
    fn a_torn_line_longer_than_the_read_chunk_is_found_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("long.jsonl");
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 200_000));
        std::fs::write(&path, &text).expect("write");
        JsonlFile::open(&path, LineSync::None).expect("open");
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"a\":1}\n");
    }
}
