//! The previous run of a policy, lined up with this run's rows: what the holds continue
//! from and what the recorded migration and churn compare with.
//!
//! The store gives each ladder of that run as columns in byte order of the customer id
//! (`RecordedLadder`); this run's rows are put in the same order once
//! (`stratum_core::Ids::byte_order`), and one merge of the two finds each row's customer in
//! the previous run. A million hash lookups of owned id strings cost more than the run's
//! scoring did.

use std::collections::HashMap;

use stratum_core::{Ids, PriorLadder};
use stratum_store::RecordedLadder;

/// This run's `n` rows in the store's order: `byte_order`
/// ([`stratum_core::Ids::byte_order`]), or as they are when that is `None`.
pub(crate) fn in_store_order(byte_order: Option<&[u32]>, n: usize) -> std::borrow::Cow<'_, [u32]> {
    match byte_order {
        Some(order) => std::borrow::Cow::Borrowed(order),
        None => std::borrow::Cow::Owned((0..n as u32).collect()),
    }
}

/// The previous run's ladders, each with this run's rows' places in it.
pub(crate) struct Previous {
    ladders: Vec<RecordedLadder>,
    /// Per ladder of `ladders`: for each row of this run, its customer's index in the
    /// recorded columns (`None`: not in the previous run).
    rows: Vec<Vec<Option<u32>>>,
}

/// One ladder of the previous run, seen from this run's rows.
pub(crate) struct PreviousLadder<'a> {
    recorded: &'a RecordedLadder,
    rows: &'a [Option<u32>],
}

impl Previous {
    /// `byte_order`: this run's rows in byte order of the id (`None`: they are in it).
    pub(crate) fn align(
        ladders: Vec<RecordedLadder>,
        ids: &Ids,
        byte_order: Option<&[u32]>,
    ) -> Self {
        let n = ids.len();
        let current = in_store_order(byte_order, n);
        let rows = ladders
            .iter()
            .map(|recorded| {
                let mut rows = vec![None; n];
                let stored = &recorded.customers;
                let mut at = 0;
                for &row in current.iter() {
                    let id = &ids[row as usize];
                    while at < stored.len() && &stored[at] < id {
                        at += 1;
                    }
                    if at < stored.len() && &stored[at] == id {
                        rows[row as usize] = Some(at as u32);
                    }
                }
                rows
            })
            .collect();
        Previous { ladders, rows }
    }

    pub(crate) fn ladder(&self, name: &str) -> Option<PreviousLadder<'_>> {
        let i = self.ladders.iter().position(|l| l.ladder == name)?;
        Some(PreviousLadder {
            recorded: &self.ladders[i],
            rows: &self.rows[i],
        })
    }

    /// The standings the holds continue from, per ladder, aligned with this run's rows.
    pub(crate) fn prior_ladders(&self) -> HashMap<String, PriorLadder> {
        self.ladders
            .iter()
            .zip(&self.rows)
            .map(|(recorded, rows)| {
                let aligned = rows
                    .iter()
                    .map(|at| at.and_then(|at| recorded.states[at as usize].clone()))
                    .collect();
                (
                    recorded.ladder.clone(),
                    PriorLadder {
                        level_names: recorded.level_names.clone(),
                        rows: aligned,
                    },
                )
            })
            .collect()
    }
}

impl<'a> PreviousLadder<'a> {
    /// Row `row`'s customer's level in the previous run and whether it was active then.
    pub(crate) fn at(&self, row: usize) -> Option<(&'a str, bool)> {
        let at = self.rows.get(row).copied().flatten()? as usize;
        Some((self.level_name(at), self.recorded.active[at]))
    }

    /// Every customer of the previous run (this run's or not): level and whether active.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&'a str, bool)> + '_ {
        (0..self.recorded.levels.len()).map(|at| (self.level_name(at), self.recorded.active[at]))
    }

    fn level_name(&self, at: usize) -> &'a str {
        &self.recorded.level_names[self.recorded.levels[at] as usize]
    }
}
