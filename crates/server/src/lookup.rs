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
    /// Customer ids by row.
    ids: Vec<Box<str>>,
    /// Rows in customer-id order: the order lists and pages show.
    order: Vec<u32>,
    /// Every customer's id and text metrics, lower-cased, one line per customer in `order`
    /// (a search is one scan of one buffer); `text_ends[i]` ends line `i`.
    text: String,
    text_ends: Vec<u32>,
    /// The rows carrying each tag, as the run recorded them.
    tagged: HashMap<String, std::collections::HashSet<u32>>,
    /// Rows per household (the policy's `household` metric), for the card's members.
    households: HashMap<Box<str>, Vec<u32>>,
    /// The manager assignments the owners include ([`Store::assignments_version`]).
    assignments: Option<i64>,
}

/// What a customer list is narrowed to: text anywhere in the id or a text metric (case
/// folded), a level on a ladder, a tag, an owner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub text: &'a str,
    pub level: Option<(&'a str, &'a str)>,
    pub tag: Option<&'a str>,
    /// Only customers of these owners (what an agent may see: its own, and its team's when
    /// it leads one).
    pub among: Option<&'a [String]>,
    pub owner: Option<&'a str>,
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
    /// The table of a run's standings, searchable by its text metrics (`texts`), with
    /// households grouped by the text metric `household` names.
    pub fn build(
        standings: RunStandings,
        texts: stratum_store::TextMetrics,
        household: Option<&str>,
    ) -> Result<LevelTable, StoreError> {
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
        let mut ids: Vec<Box<str>> = vec![Box::from(""); rows.len()];
        for (id, &row) in &rows {
            ids[row as usize] = id.clone();
        }
        let mut order: Vec<u32> = (0..rows.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
        let mut tagged: HashMap<String, std::collections::HashSet<u32>> = HashMap::new();
        for (customer, tags) in &standings.tags {
            if let Some(&row) = rows.get(customer.as_str()) {
                for tag in tags.split(',').filter(|t| !t.is_empty()) {
                    tagged.entry(tag.to_string()).or_default().insert(row);
                }
            }
        }
        // The text metrics by row (they come in id order, as `order` is, but a customer may
        // be missing from them: joined by id).
        let mut row_texts: Vec<String> = vec![String::new(); rows.len()];
        let mut households: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let household_column = household.and_then(|h| texts.names.iter().position(|n| n == h));
        for (i, customer) in texts.customers.iter().enumerate() {
            let Some(&row) = rows.get(customer.as_str()) else {
                continue;
            };
            let line = &mut row_texts[row as usize];
            for (c, column) in texts.values.iter().enumerate() {
                if let Some(v) = &column[i] {
                    line.push('\u{1f}');
                    line.push_str(&v.to_lowercase().replace('\n', " "));
                    if Some(c) == household_column && !v.is_empty() {
                        households.entry(v.as_str().into()).or_default().push(row);
                    }
                }
            }
        }
        let mut text = String::new();
        let mut text_ends = Vec::with_capacity(order.len());
        for &row in &order {
            text.push_str(&ids[row as usize].to_lowercase());
            text.push_str(&row_texts[row as usize]);
            text.push('\n');
            text_ends.push(u32::try_from(text.len()).map_err(|_| {
                StoreError::Internal("the search text of a run exceeds 4 GiB".into())
            })?);
        }
        for members in households.values_mut() {
            members.sort_unstable_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
        }
        Ok(LevelTable {
            run: standings.run,
            ladders,
            rows,
            cells,
            owners,
            owner_names,
            ids,
            order,
            text,
            text_ends,
            tagged,
            households,
            assignments: None,
        })
    }

    /// The customers matching `filter`, in id order: how many there are, and the ids of
    /// `limit` of them from `offset` (a page). One scan of the search text.
    pub fn search(&self, filter: &Filter<'_>, offset: usize, limit: usize) -> (usize, Vec<&str>) {
        let level = match filter.level {
            Some((ladder, level)) => {
                let Some(l) = self.ladders.iter().position(|(name, _)| name == ladder) else {
                    return (0, Vec::new());
                };
                let Some(v) = self.ladders[l].1.iter().position(|n| n == level) else {
                    return (0, Vec::new());
                };
                Some((l, v as u16))
            }
            None => None,
        };
        let owner = match filter.owner {
            Some(name) => match self.owner_names.iter().position(|n| n == name) {
                Some(id) => Some(id as u32),
                None => return (0, Vec::new()),
            },
            None => None,
        };
        let among: Option<Vec<u32>> = filter.among.map(|names| {
            names
                .iter()
                .filter_map(|n| self.owner_names.iter().position(|o| o == n))
                .map(|id| id as u32)
                .collect()
        });
        let tagged = match filter.tag {
            Some(tag) => match self.tagged.get(tag) {
                Some(rows) => Some(rows),
                None => return (0, Vec::new()),
            },
            None => None,
        };
        let width = self.ladders.len();
        let keep = |row: u32| {
            level.is_none_or(|(l, v)| self.cells[row as usize * width + l].level == v)
                && owner.is_none_or(|o| self.owners[row as usize] == o)
                && among
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&self.owners[row as usize]))
                && tagged.is_none_or(|t| t.contains(&row))
        };
        let (mut total, mut page) = (0, Vec::new());
        let mut take = |row: u32| {
            if keep(row) {
                if total >= offset && page.len() < limit {
                    page.push(&*self.ids[row as usize]);
                }
                total += 1;
            }
        };
        let needle = filter.text.trim().to_lowercase();
        if needle.is_empty() {
            self.order.iter().for_each(|&row| take(row));
        } else {
            let mut last = usize::MAX;
            for hit in memchr::memmem::find_iter(self.text.as_bytes(), needle.as_bytes()) {
                let line = self.text_ends.partition_point(|&end| end as usize <= hit);
                if line != last {
                    last = line;
                    take(self.order[line]);
                }
            }
        }
        (total, page)
    }

    /// The other customers of the household `household` names, in id order.
    pub fn household(&self, household: &str, except: &str) -> Vec<&str> {
        self.households
            .get(household)
            .map_or_else(Vec::new, |rows| {
                rows.iter()
                    .map(|&r| &*self.ids[r as usize])
                    .filter(|id| *id != except)
                    .collect()
            })
    }

    /// The tags some customer of the run carries, sorted (the console's filter).
    pub fn tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.tagged.keys().map(String::as_str).collect();
        tags.sort_unstable();
        tags
    }

    /// The owners of the run's customers, sorted.
    pub fn owner_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.owner_names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The levels of a ladder that some customer holds, as recorded.
    pub fn levels_of(&self, ladder: &str) -> Vec<&str> {
        self.ladders
            .iter()
            .find(|(name, _)| name == ladder)
            .map_or_else(Vec::new, |(_, names)| {
                names.iter().map(String::as_str).collect()
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

    /// The customers of `owners` whose id starts with `prefix`, in id order, at most
    /// `limit`: an agent's search, filtered before the limit (one pass over the table).
    pub fn owned_by(&self, owners: &[String], prefix: &str, limit: usize) -> Vec<&str> {
        let ids: Vec<u32> = owners
            .iter()
            .filter_map(|o| self.owner_names.iter().position(|n| n == o))
            .map(|id| id as u32)
            .collect();
        let mut found: Vec<&str> = self
            .rows
            .iter()
            .filter(|(c, row)| ids.contains(&self.owners[**row as usize]) && c.starts_with(prefix))
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

    /// Stops serving any run; whether one was served.
    pub(crate) fn clear(&self) -> bool {
        self.current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .is_some()
    }

    /// The table of run `latest` with the policy's manager assignments as they are now,
    /// building it if the one served is of an older run or older assignments. Returns
    /// whether a new table was built.
    pub(crate) async fn ensure(
        &self,
        store: &Store,
        latest: i64,
        household: Option<&str>,
    ) -> Result<bool, StoreError> {
        let policy_name = store.run(latest).await?.policy_name;
        let assigned = store.assignments_version(&policy_name).await?;
        let fresh = |t: &LevelTable| t.run.id == latest && t.assignments == assigned;
        if self.current().is_some_and(|t| fresh(&t)) {
            return Ok(false);
        }
        let _building = self.building.lock().await;
        if self.current().is_some_and(|t| fresh(&t)) {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let standings = store.run_standings(latest).await?;
        let texts = store.text_metrics(latest).await?;
        let household = household.map(str::to_string);
        let mut table = stratum_runner::blocking::blocking(move || {
            LevelTable::build(standings, texts, household.as_deref())
        })
        .await?;
        table.assignments = assigned;
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

#[cfg(test)]
mod tests {
    use super::*;
    use stratum_store::{StandingRow, TextMetrics};

    fn table() -> LevelTable {
        let run = RunInfo {
            id: 7,
            policy_name: "p".into(),
            policy_file: "p.toml".into(),
            policy_hash: String::new(),
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            started_at: String::new(),
            finished_at: String::new(),
            customers: 120,
            inputs: "[]".into(),
            recorded_by: "test".into(),
            retired_at: None,
            retired_by: None,
        };
        // 120 customers C000..C119: gold below 30, the rest basic; owners alternate; C1xx
        // are in the north region; every tenth is a vip.
        let ids: Vec<String> = (0..120).map(|i| format!("C{i:03}")).collect();
        let rows = ids
            .iter()
            .enumerate()
            .map(|(i, id)| StandingRow {
                ladder: "tier".into(),
                customer_id: id.clone(),
                level: if i < 30 { "gold" } else { "basic" }.into(),
                score: Some(i as f64),
                rank: Some(i as i64 + 1),
            })
            .collect();
        let owners = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    if i % 2 == 0 { "wang" } else { "li" }.to_string(),
                )
            })
            .collect();
        let tags = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 == 0)
            .map(|(_, id)| (id.clone(), "vip,web".to_string()))
            .collect();
        let texts = TextMetrics {
            names: vec!["region".into(), "household".into()],
            customers: ids.clone(),
            values: vec![
                ids.iter()
                    .map(|id| {
                        Some(
                            if id.starts_with("C1") {
                                "North"
                            } else {
                                "South"
                            }
                            .into(),
                        )
                    })
                    .collect(),
                (0..120).map(|i| Some(format!("H{}", i / 3))).collect(),
            ],
        };
        let standings = RunStandings {
            run,
            rows,
            owners,
            tags,
        };
        LevelTable::build(standings, texts, Some("household")).unwrap()
    }

    #[test]
    fn search_finds_text_anywhere_filters_and_pages_in_id_order() {
        let t = table();
        // Text in a metric, case folded: the 20 northern customers.
        let north = Filter {
            text: "NORTH",
            ..Filter::default()
        };
        let (total, page) = t.search(&north, 0, 5);
        assert_eq!(total, 20);
        assert_eq!(page, ["C100", "C101", "C102", "C103", "C104"]);
        let (_, last) = t.search(&north, 15, 10);
        assert_eq!(last, ["C115", "C116", "C117", "C118", "C119"]);
        // An id fragment, a level, an owner and a tag together.
        let narrow = Filter {
            text: "c0",
            level: Some(("tier", "gold")),
            owner: Some("wang"),
            tag: Some("vip"),
            among: None,
        };
        assert_eq!(t.search(&narrow, 0, 50), (3, vec!["C000", "C010", "C020"]));
        // Among some owners (a lead's team): wang's and an unknown name's are wang's.
        let team = ["wang".to_string(), "zhao".to_string()];
        let wangs = Filter {
            among: Some(&team),
            ..Filter::default()
        };
        let li = ["li".to_string()];
        let lis = Filter {
            among: Some(&li),
            ..Filter::default()
        };
        assert_eq!(t.search(&wangs, 0, 0).0 + t.search(&lis, 0, 0).0, 120);
        assert_eq!(t.search(&wangs, 0, 2).1, ["C000", "C002"]);
        assert_eq!(t.owned_by(&team, "C00", 3), ["C000", "C002", "C004"]);
        // Nothing matches: an unknown level, owner or tag, or absent text.
        for f in [
            Filter {
                level: Some(("tier", "platinum")),
                ..Filter::default()
            },
            Filter {
                owner: Some("zhao"),
                ..Filter::default()
            },
            Filter {
                tag: Some("gone"),
                ..Filter::default()
            },
            Filter {
                text: "east",
                ..Filter::default()
            },
        ] {
            assert_eq!(t.search(&f, 0, 50), (0, vec![]));
        }
        // No filter: everyone, a page from the offset.
        assert_eq!(
            t.search(&Filter::default(), 118, 50),
            (120, vec!["C118", "C119"])
        );
        // A customer matching in two metrics counts once.
        let h = Filter {
            text: "h1",
            ..Filter::default()
        };
        let (total, _) = t.search(&h, 0, 0);
        assert_eq!(total, 3 + 30, "H1 and H10..H19 (the text is a substring)");
        assert_eq!(t.household("H2", "C006"), ["C007", "C008"]);
        assert_eq!(t.tags(), ["vip", "web"]);
        assert_eq!(t.owner_names(), ["li", "wang"]);
    }
}
