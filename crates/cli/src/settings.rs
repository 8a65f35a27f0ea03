//! Phase two of the arguments: what every command needs, resolved once from clap's raw
//! arguments (workspace folder, policy path, history database, who is acting).

use std::path::{Path, PathBuf};

use anyhow::Result;
use stratum_store::{Actor, Store};

use crate::Cli;

/// The settings a command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `-C DIR`, as given: relative policy paths are taken from it.
    dir: Option<PathBuf>,
    /// `--policy`, as given.
    policy: Option<PathBuf>,
    /// The workspace folder: `-C DIR`, else found from `--policy` (see [`workspace_dir`]).
    pub workspace: PathBuf,
    /// The history database: `--database` / `STRATUM_DATABASE_URL`, else the workspace's
    /// SQLite file.
    pub database_url: String,
    /// Whether the database was named rather than the workspace default.
    database_given: bool,
    /// Who is acting, recorded with runs and changes.
    pub actor: String,
}

impl Settings {
    pub(crate) fn resolve(cli: &Cli) -> Settings {
        let workspace = workspace_dir(cli.dir.as_deref(), cli.policy.as_deref());
        Settings {
            dir: cli.dir.clone(),
            policy: cli.policy.clone(),
            database_url: cli
                .database
                .clone()
                .unwrap_or_else(|| stratum_runner::default_database_url(&workspace)),
            database_given: cli.database.is_some(),
            actor: actor_name(cli.by.as_deref()),
            workspace,
        }
    }

    /// A command's policy file: `explicit` (a command's own argument), else `--policy`, else
    /// the workspace's `stratum.toml`; relative to `-C DIR` when one is given.
    pub(crate) fn policy_path(&self, explicit: Option<&Path>) -> PathBuf {
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        match explicit.or(self.policy.as_deref()) {
            Some(p) if p.is_absolute() || self.dir.is_none() => p.to_path_buf(),
            Some(p) => dir.join(p),
            None => dir.join("stratum.toml"),
        }
    }

    /// The policy a history command is about: `--policy`, else the workspace's
    /// `stratum.toml` (its runs only, whatever else the database holds); `None` when there
    /// is no policy file at all (a database on its own), meaning every policy's runs.
    pub(crate) fn history_policy(&self) -> Result<Option<String>> {
        let path = self.policy_path(None);
        if self.policy.is_none() && !path.exists() {
            return Ok(None);
        }
        let loaded = stratum_runner::load_policy(&path)?;
        Ok(Some(loaded.policy.history_name().to_string()))
    }

    /// The actor of changes made from the command line.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            name: self.actor.clone(),
            origin: "cli".into(),
        }
    }

    /// Opens the history database, creating the embedded one on first use.
    pub(crate) async fn open_store(&self) -> Result<Store> {
        Ok(Store::open(&self.database_url).await?)
    }

    /// The history database when there is one: a configured URL, or the workspace's SQLite
    /// file if it exists (reading commands never create one).
    pub(crate) async fn open_existing_store(&self) -> Result<Option<Store>> {
        if !self.database_given && !self.workspace.join("stratum.db").exists() {
            return Ok(None);
        }
        Ok(Some(self.open_store().await?))
    }
}

/// `-C DIR`; without it the folder of `--policy`, or that folder's parent when the parent
/// is the workspace (holds `stratum.toml` or `stratum.db`: a demo workspace's
/// `policies/*.toml`); else the current folder. The default history database lives there.
fn workspace_dir(dir: Option<&Path>, policy: Option<&Path>) -> PathBuf {
    let here = || PathBuf::from(".");
    if let Some(dir) = dir {
        return dir.to_path_buf();
    }
    let Some(policy) = policy else {
        return here();
    };
    let non_empty = |p: &Path| (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
    let folder = policy.parent().and_then(non_empty).unwrap_or_else(here);
    let is_workspace = |d: &Path| d.join("stratum.toml").exists() || d.join("stratum.db").exists();
    if is_workspace(&folder) {
        return folder;
    }
    let parent = folder.parent().and_then(non_empty).unwrap_or_else(here);
    if folder != parent && is_workspace(&parent) {
        parent
    } else {
        folder
    }
}

/// `--by`, else `$USER` / `$LOGNAME`, else the login name of the process's user (a
/// container or a cron job often has no `$USER`).
fn actor_name(by: Option<&str>) -> String {
    let given = |s: &String| !s.trim().is_empty();
    by.map(str::to_string)
        .filter(given)
        .or_else(|| std::env::var("USER").ok().filter(given))
        .or_else(|| std::env::var("LOGNAME").ok().filter(given))
        .or_else(|| whoami::fallible::username().ok().filter(given))
        .unwrap_or_else(|| "unknown".into())
}
