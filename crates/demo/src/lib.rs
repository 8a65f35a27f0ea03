//! # stratum-demo
//!
//! Synthetic customer data and the example policies that reproduce every example of the
//! domain notes. It exists so that `stratum init` gives a first-day user a workspace that runs
//! end to end, so benchmarks have data of any size (`stratum gen`), and so tests share one
//! generator. Everything is seeded: the same arguments give the same files.

mod bench;
mod demo;

use std::path::{Path, PathBuf};

pub use bench::{BENCH_POLICY, GenOptions, generate_bench};
pub use demo::{AS_OF, DemoData, generate};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} already exists and is not empty; pass --force to overwrite")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

pub(crate) fn write_err(path: &Path, e: impl std::fmt::Display) -> DemoError {
    DemoError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The example policies: (file name relative to the workspace, text).
pub const POLICIES: [(&str, &str); 7] = [
    ("stratum.toml", include_str!("policies/stratum.toml")),
    ("policies/bank.toml", include_str!("policies/bank.toml")),
    ("policies/b2b.toml", include_str!("policies/b2b.toml")),
    (
        "policies/property.toml",
        include_str!("policies/property.toml"),
    ),
    (
        "policies/retail_members.toml",
        include_str!("policies/retail_members.toml"),
    ),
    (
        "policies/lifecycle.toml",
        include_str!("policies/lifecycle.toml"),
    ),
    (
        "policies/segments.toml",
        include_str!("policies/segments.toml"),
    ),
];

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub files: Vec<PathBuf>,
}

/// Creates a demo workspace: data under `data/`, the main policy as `stratum.toml`, the other
/// examples under `policies/`.
pub fn init(dir: &Path, customers: usize, force: bool) -> Result<InitReport, DemoError> {
    if dir.exists()
        && !force
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(DemoError::NotEmpty(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir.join("data")).map_err(|e| write_err(dir, e))?;
    std::fs::create_dir_all(dir.join("policies")).map_err(|e| write_err(dir, e))?;
    let data = generate(customers.max(50), 7);
    let mut files = data.write_csv(&dir.join("data"))?;
    for (name, text) in POLICIES {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| write_err(&path, e))?;
        files.push(path);
    }
    Ok(InitReport { files })
}
