//! One run at a time per workspace: `stratum run` holds an exclusive lock on `.stratum.lock`
//! in the policy's folder (beside its default database and outputs) for the whole run. The
//! operating system releases it when the process ends, however it ends, so a killed run
//! leaves no stale lock. The file names the holder, for the message a second run gets.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::RunError;

/// Held while a run goes on; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

pub const LOCK_FILE: &str = ".stratum.lock";

impl RunLock {
    pub fn acquire(folder: &Path, holder: &str) -> Result<RunLock, RunError> {
        let path: PathBuf = folder.join(LOCK_FILE);
        let err = |e: std::io::Error| RunError::Output {
            path: path.display().to_string(),
            message: format!("cannot open the run lock: {e}"),
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(RunError::Locked {
                    path: path.display().to_string(),
                    holder: text.trim().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        file.set_len(0).map_err(err)?;
        file.rewind().map_err(err)?;
        writeln!(
            file,
            "pid {}, {holder}, since {}",
            std::process::id(),
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
        )
        .map_err(err)?;
        Ok(RunLock { _file: file })
    }
}
