//! Which commands this agent has started and finished, on disk, so each `command_id` is carried out at most once
//! even when central delivers it twice (an MQTT redelivery, an HTTPS answer lost and sent again) or the agent
//! restarts in the middle.
//!
//! A command is written as *started* (flushed) before anything is done for it, and as *finished* with its result
//! afterwards. A command found started but not finished after a restart was interrupted: it is not carried out
//! again, and is reported failed. The file keeps the newest [`KEEP`] commands (`<data_dir>/commands.json`; an
//! unreadable file is moved aside and the journal starts empty).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use protocol::CommandResult;
use serde::{Deserialize, Serialize};

/// The file name in the data directory.
pub const FILE_NAME: &str = "commands.json";
/// Commands remembered.
pub const KEEP: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Entry {
    Started,
    Finished(CommandResult),
}

/// What [`Journal::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// New: it is now recorded as started; carry it out.
    Run,
    /// Being carried out now (a second delivery while the first runs): do nothing.
    Running,
    /// Already finished, with this result (report it again: the first report may have been lost).
    Done(CommandResult),
}

/// The journal of one agent.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    entries: BTreeMap<u64, Entry>,
}

impl Journal {
    /// Opens the journal in `data_dir`, returning it and the results of commands a restart interrupted (now
    /// recorded as failed).
    pub fn open(data_dir: &Path) -> (Self, Vec<CommandResult>) {
        let path = data_dir.join(FILE_NAME);
        let entries: BTreeMap<u64, Entry> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(path = %path.display(), error = %e, "the command journal is unreadable; moved aside");
                let _ = std::fs::rename(&path, data_dir.join(format!("{FILE_NAME}.unreadable")));
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        let mut journal = Self { path, entries };
        let interrupted: Vec<u64> =
            journal.entries.iter().filter(|(_, e)| matches!(e, Entry::Started)).map(|(id, _)| *id).collect();
        let mut results = Vec::new();
        for id in interrupted {
            let result = CommandResult {
                command_id: id,
                ok: false,
                detail: "interrupted by an agent restart; not carried out again".into(),
                finished_at: Utc::now(),
            };
            journal.entries.insert(id, Entry::Finished(result.clone()));
            results.push(result);
        }
        if !results.is_empty() {
            if let Err(e) = journal.save() {
                tracing::error!(error = %e, "cannot write the command journal");
            }
        }
        (journal, results)
    }

    /// Records `id` as started, durably, unless it is known.
    ///
    /// # Errors
    /// When the journal cannot be written (then the command must not be carried out).
    pub fn begin(&mut self, id: u64) -> std::io::Result<Begin> {
        match self.entries.get(&id) {
            Some(Entry::Started) => return Ok(Begin::Running),
            Some(Entry::Finished(result)) => return Ok(Begin::Done(result.clone())),
            None => {}
        }
        self.entries.insert(id, Entry::Started);
        while self.entries.len() > KEEP {
            self.entries.pop_first();
        }
        if let Err(e) = self.save() {
            self.entries.remove(&id);
            return Err(e);
        }
        Ok(Begin::Run)
    }

    /// Records a command's result.
    ///
    /// # Errors
    /// When the journal cannot be written (the command stays recorded as started in memory and on disk).
    pub fn finish(&mut self, result: &CommandResult) -> std::io::Result<()> {
        self.entries.insert(result.command_id, Entry::Finished(result.clone()));
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&self.entries).map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temporary = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, &self.path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: u64) -> CommandResult {
        CommandResult { command_id: id, ok: true, detail: "done".into(), finished_at: Utc::now() }
    }

    #[test]
    fn each_command_runs_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, interrupted) = Journal::open(dir.path());
        assert!(interrupted.is_empty());
        assert_eq!(journal.begin(1).unwrap(), Begin::Run);
        assert_eq!(journal.begin(1).unwrap(), Begin::Running, "a second delivery while it runs");
        journal.finish(&result(1)).unwrap();
        assert!(matches!(journal.begin(1).unwrap(), Begin::Done(r) if r.ok));
        assert_eq!(journal.begin(2).unwrap(), Begin::Run);
        drop(journal);

        // A restart: 1 is done, 2 was interrupted and is reported failed, never run again.
        let (mut journal, interrupted) = Journal::open(dir.path());
        assert_eq!(interrupted.len(), 1);
        assert_eq!((interrupted[0].command_id, interrupted[0].ok), (2, false));
        assert!(matches!(journal.begin(1).unwrap(), Begin::Done(_)));
        assert!(matches!(journal.begin(2).unwrap(), Begin::Done(r) if !r.ok));
        assert_eq!(journal.begin(3).unwrap(), Begin::Run);
    }

    #[test]
    fn an_unreadable_journal_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"[oops").unwrap();
        let (mut journal, _) = Journal::open(dir.path());
        assert!(dir.path().join(format!("{FILE_NAME}.unreadable")).exists());
        assert_eq!(journal.begin(7).unwrap(), Begin::Run);
    }
}
