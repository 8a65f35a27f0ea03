//! The latest run's levels in memory, so a tier lookup (`GET /api/customers/{id}/levels`) and
//! an agent's ownership check cost a hash lookup instead of database round trips.
//!
//! A run's results never change once recorded, so the table needs no invalidation, only
//! replacing when a newer run is recorded (by another process: `stratum run`). `serve` polls
//! for that every [`REFRESH_EVERY`] and swaps the new table in when it is built; until then the
//! previous run keeps being served, whole. Manual changes (overrides, inputs, tags) take effect
//! with the next run, as everywhere else.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use stratum_store::{RunInfo, RunStandings, Store, StoreError};

/// How often `serve` checks for a newer run.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

const NO_LEVEL: u16 = u16::MAX;
const NO_RANK: u32 = u32::MAX;
const NO_OWNER: u32 = u32::MAX;

/// One customer on one ladder, packed: a million customers on two ladders take 32 MB.
#[derive(Clone, Copy)]
struct Cell {
    score: f64,
    rank: u32,
    level: u16,
}

/// One run's levels for every customer.
pub struct LevelTable {
    pub run: RunInfo,
    ladders: Vec<(String, Vec<String>)>,
    rows: HashMap<Box<str>, u32>,
    /// `rows.len() × ladders.len()`, customer-major.
    cells: Vec<Cell>,
    owners: Vec<u32>,
    owner_names: Vec<String>,
}

/// A customer's level on one ladder, as the lookup returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LadderLevel<'a> {
    pub ladder: &'a str,
    pub level: &'a str,
    pub score: Option<f64>,
    pub rank: Option<u32>,
}

impl LevelTable {
    pub fn build(standings: RunStandings) -> Result<LevelTable, StoreError> {
        let mut ladders: Vec<(String, Vec<String>)> = Vec::new();
        let mut level_ids: Vec<HashMap<String, u16>> = Vec::new();
        let mut rows: HashMap<Box<str>, u32> = HashMap::new();
        // Two passes: ladders and customers first, so the cells can be laid out densely.
        for r in &standings.rows {
            if !ladders.iter().any(|(name, _)| *name == r.ladder) {
                ladders.push((r.ladder.clone(), Vec::new()));
                level_ids.push(HashMap::new());
            }
            let next = rows.len() as u32;
            rows.entry(r.customer_id.as_str().into()).or_insert(next);
        }
        let width = ladders.len();
        let empty = Cell {
            score: f64::NAN,
            rank: NO_RANK,
            level: NO_LEVEL,
        };
        let mut cells = vec![empty; rows.len() * width];
        for r in standings.rows {
            let l = ladders
                .iter()
                .position(|(name, _)| *name == r.ladder)
                .expect("ladder seen in the first pass");
            let names = &mut ladders[l].1;
            let level = *level_ids[l].entry(r.level).or_insert_with_key(|name| {
                names.push(name.clone());
                (names.len() - 1) as u16
            });
            if names.len() >= NO_LEVEL as usize {
                return Err(StoreError::Corrupt(format!(
                    "ladder {} of run {} has more than {} levels",
                    r.ladder, standings.run.id, NO_LEVEL
                )));
            }
            let row = rows[r.customer_id.as_str()] as usize;
            cells[row * width + l] = Cell {
                score: r.score.unwrap_or(f64::NAN),
                rank: r
                    .rank
                    .and_then(|k| u32::try_from(k).ok())
                    .unwrap_or(NO_RANK),
                level,
            };
        }
        let mut owners = vec![NO_OWNER; rows.len()];
        let mut owner_names: Vec<String> = Vec::new();
        let mut owner_ids: HashMap<String, u32> = HashMap::new();
        for (customer, owner) in standings.owners {
            let Some(&row) = rows.get(customer.as_str()) else {
                continue;
            };
            let id = *owner_ids.entry(owner).or_insert_with_key(|name| {
                owner_names.push(name.clone());
                (owner_names.len() - 1) as u32
            });
            owners[row as usize] = id;
        }
        Ok(LevelTable {
            run: standings.run,
            ladders,
            rows,
            cells,
            owners,
            owner_names,
        })
    }

    pub fn customers(&self) -> usize {
        self.rows.len()
    }

    /// The customer's level on every ladder of the run, in ladder order; `None` when the
    /// customer is not in the run.
    pub fn levels(&self, customer: &str) -> Option<Vec<LadderLevel<'_>>> {
        let row = *self.rows.get(customer)? as usize;
        let width = self.ladders.len();
        Some(
            self.cells[row * width..(row + 1) * width]
                .iter()
                .zip(&self.ladders)
                .filter(|(cell, _)| cell.level != NO_LEVEL)
                .map(|(cell, (ladder, names))| LadderLevel {
                    ladder,
                    level: &names[cell.level as usize],
                    score: (!cell.score.is_nan()).then_some(cell.score),
                    rank: (cell.rank != NO_RANK).then_some(cell.rank),
                })
                .collect(),
        )
    }

    /// The customer's level on one ladder, by name; `None` when not placed on it or not in
    /// the run.
    pub fn level_on(&self, customer: &str, ladder: &str) -> Option<&str> {
        let row = *self.rows.get(customer)? as usize;
        let l = self.ladders.iter().position(|(name, _)| name == ladder)?;
        let cell = self.cells[row * self.ladders.len() + l];
        (cell.level != NO_LEVEL).then(|| self.ladders[l].1[cell.level as usize].as_str())
    }

    /// The customers `owner` owns whose id starts with `prefix`, in id order, at most
    /// `limit`: an agent's search, filtered before the limit (one pass over the table).
    pub fn owned_by(&self, owner: &str, prefix: &str, limit: usize) -> Vec<&str> {
        let Some(id) = self.owner_names.iter().position(|n| n == owner) else {
            return Vec::new();
        };
        let mut found: Vec<&str> = self
            .rows
            .iter()
            .filter(|(c, row)| self.owners[**row as usize] == id as u32 && c.starts_with(prefix))
            .map(|(c, _)| &**c)
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        found
    }

    /// The agent who owns the customer, as recorded with the runs.
    pub fn owner(&self, customer: &str) -> Option<&str> {
        let row = *self.rows.get(customer)? as usize;
        let id = self.owners[row];
        (id != NO_OWNER).then(|| self.owner_names[id as usize].as_str())
    }
}

/// The table being served, replaced whole when a newer run is recorded.
#[derive(Default)]
pub(crate) struct Lookup {
    current: RwLock<Option<Arc<LevelTable>>>,
    /// Held while a table is built, so concurrent first requests build it once.
    building: tokio::sync::Mutex<()>,
}

impl Lookup {
    pub(crate) fn current(&self) -> Option<Arc<LevelTable>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The table of run `latest`, building it if the one served is older. Returns whether a
    /// new table was built.
    /// Stops serving any run; whether one was served.
    pub(crate) fn clear(&self) -> bool {
        self.current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .is_some()
    }

    pub(crate) async fn ensure(&self, store: &Store, latest: i64) -> Result<bool, StoreError> {
        if self.current().is_some_and(|t| t.run.id == latest) {
            return Ok(false);
        }
        let _building = self.building.lock().await;
        if self.current().is_some_and(|t| t.run.id == latest) {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let standings = store.run_standings(latest).await?;
        let table =
            stratum_runner::blocking::blocking(move || LevelTable::build(standings)).await?;
        tracing::info!(
            run = latest,
            customers = table.customers(),
            took_ms = started.elapsed().as_millis() as u64,
            "serving levels of run {latest}"
        );
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(table));
        Ok(true)
    }
}
