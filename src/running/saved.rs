//! The mappings created through the Lambda API, kept in the state directory so that a
//! restarted daemon runs them again (their positions are in the checkpoint store under
//! their UUIDs, like any mapping's).
//!
//! One file per mapping, `<state_dir>/api-mappings/<UUID>.json`, holding the mapping in
//! the AWS JSON form (the CreateEventSourceMapping request with updates applied, plus its
//! `UUID`): the form `aws_json` reads, so a file can be read, diffed or moved into a
//! config's `aws_json` by hand. Each write goes to a temporary file that is synced and
//! renamed over the old one, so a crash leaves the old or the new definition, never half.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The folder under the state directory.
pub const DIR: &str = "api-mappings";

pub struct SavedMappings {
    dir: PathBuf,
}

impl SavedMappings {
    pub fn new(state_dir: &Path) -> SavedMappings {
        SavedMappings {
            dir: state_dir.join(DIR),
        }
    }

    /// Every saved mapping as (file, document), in UUID order.
    pub fn load_all(&self) -> Result<Vec<(PathBuf, String)>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", self.dir.display())),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                files.push((path, text));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Writes (or replaces) a mapping's document durably.
    pub fn save(&self, uuid: &str, document: &Map<String, Value>) -> Result<(), String> {
        let path = self.path(uuid);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let partial = self.dir.join(format!(".{uuid}.json.partial"));
            let mut file = std::fs::File::create(&partial)?;
            let mut text = serde_json::to_vec_pretty(document).map_err(std::io::Error::other)?;
            text.push(b'\n');
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)?;
            sync_dir(&self.dir)
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Removes a mapping's document durably (no error if it is already gone).
    pub fn remove(&self, uuid: &str) -> Result<(), String> {
        let path = self.path(uuid);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", path.display()))
            }
            _ => {
                sync_dir(&self.dir).map_err(|e| format!("cannot sync {}: {e}", self.dir.display()))
            }
        }
    }

    fn path(&self, uuid: &str) -> PathBuf {
        self.dir.join(format!("{uuid}.json"))
    }
}

/// Makes a rename or a removal in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(handle) => handle.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(batch_size: i64) -> Map<String, Value> {
        json!({"UUID": "u1", "BatchSize": batch_size})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn saved_documents_come_back_in_uuid_order_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let saved = SavedMappings::new(dir.path());
        assert!(saved.load_all().unwrap().is_empty());
        saved.save("b", &doc(1)).unwrap();
        saved.save("a", &doc(2)).unwrap();
        saved.save("b", &doc(3)).unwrap();
        let all = saved.load_all().unwrap();
        let names: Vec<_> = all
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.json", "b.json"]);
        let b: Value = serde_json::from_str(&all[1].1).unwrap();
        assert_eq!(b["BatchSize"], 3);
        saved.remove("a").unwrap();
        saved.remove("a").unwrap();
        assert_eq!(saved.load_all().unwrap().len(), 1);
    }
}
