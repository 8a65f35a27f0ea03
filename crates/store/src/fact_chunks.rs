//! What service needs of each customer under a policy — its owning agent and its tags from
//! the data — kept with the run that computed them, in the layout of the metrics
//! (`metric_chunks`): [`CHUNK_ROWS`](crate::chunks::CHUNK_ROWS) customers in byte order of the id per row of
//! `fact_chunks`, a zstd-compressed Arrow IPC stream of `customer_id`, `owner`, `tags` each.
//!
//! A policy's current facts are those of its latest run that recorded any (a run of a
//! policy without `[service]` records none). One chunk per thousand customers instead of one
//! upserted row per customer: at a million customers the row table's B-trees cost seconds of
//! every run, the chunks a few hundred milliseconds.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::{CustomerFacts, Store, StoreError};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("fact chunk: {e}"))
}

/// `facts` (any order, each customer once) as chunks: each chunk's first customer and blob.
pub(crate) fn encode(facts: &[CustomerFacts]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut order: Vec<&CustomerFacts> = facts.iter().collect();
    // Given in byte order by the runner, so one pass to check.
    order.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
    if let Some(twice) = order
        .windows(2)
        .find(|w| w[0].customer_id == w[1].customer_id)
    {
        return Err(StoreError::Internal(format!(
            "customer {} has facts twice",
            twice[0].customer_id
        )));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("owner", DataType::Utf8, true),
        Field::new("tags", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                order.iter().map(|f| f.customer_id.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                order.iter().map(|f| f.owner.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                order.iter().map(|f| f.tags.as_str()),
            )),
        ],
    )
    .map_err(corrupt)?;
    crate::metric_chunks::encode(&batch)
}

/// One decoded chunk: its customers in byte order, with owner and tags.
struct FactsChunk {
    customers: StringArray,
    owners: StringArray,
    tags: StringArray,
}

impl FactsChunk {
    fn decode(blob: &[u8]) -> Result<FactsChunk, StoreError> {
        let batch = crate::metric_chunks::decode(blob)?;
        let text = |name: &str| -> Result<StringArray, StoreError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .cloned()
                .ok_or_else(|| corrupt(format!("no {name} column")))
        };
        Ok(FactsChunk {
            customers: text("customer_id")?,
            owners: text("owner")?,
            tags: text("tags")?,
        })
    }

    fn len(&self) -> usize {
        self.customers.len()
    }

    fn facts(&self, i: usize) -> CustomerFacts {
        CustomerFacts {
            customer_id: self.customers.value(i).to_string(),
            owner: (!self.owners.is_null(i)).then(|| self.owners.value(i).to_string()),
            tags: self.tags.value(i).to_string(),
        }
    }

    fn find(&self, customer_id: &str) -> Option<usize> {
        crate::chunks::find_sorted(&self.customers, customer_id)
    }
}

impl Store {
    /// The run a policy's current facts come from: its latest that recorded any.
    async fn facts_run(&self, policy_name: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT max(r.id) FROM runs r WHERE r.policy_name = $1 \
             AND EXISTS (SELECT 1 FROM fact_chunks f WHERE f.run_id = r.id)",
        )
        .bind(policy_name)
        .fetch_one(self.pool())
        .await?)
    }

    /// One customer's current facts under a policy, if its latest facts hold the customer.
    pub(crate) async fn facts_of(
        &self,
        policy_name: &str,
        customer_id: &str,
    ) -> Result<Option<CustomerFacts>, StoreError> {
        let Some(run) = self.facts_run(policy_name).await? else {
            return Ok(None);
        };
        let blob =
            crate::chunks::holding_blob(self, "fact_chunks", "facts", run, customer_id).await?;
        let Some(blob) = blob else {
            return Ok(None);
        };
        let chunk = FactsChunk::decode(&blob)?;
        Ok(chunk.find(customer_id).map(|i| chunk.facts(i)))
    }

    /// Every customer's current facts under a policy, in byte order of the id; empty when
    /// no run of it recorded any.
    pub(crate) async fn all_facts(
        &self,
        policy_name: &str,
    ) -> Result<Vec<CustomerFacts>, StoreError> {
        let Some(run) = self.facts_run(policy_name).await? else {
            return Ok(Vec::new());
        };
        let blobs: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT facts FROM fact_chunks WHERE run_id = $1 ORDER BY first_customer",
        )
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for blob in blobs {
            let chunk = FactsChunk::decode(&blob)?;
            out.extend((0..chunk.len()).map(|i| chunk.facts(i)));
        }
        Ok(out)
    }

    /// The current facts of some customers under a policy (those it holds), reading each
    /// chunk that holds any of them once.
    pub(crate) async fn facts_of_many(
        &self,
        policy_name: &str,
        customers: &[&str],
    ) -> Result<Vec<CustomerFacts>, StoreError> {
        let Some(run) = self.facts_run(policy_name).await? else {
            return Ok(Vec::new());
        };
        let firsts: Vec<String> = sqlx::query_scalar(
            "SELECT first_customer FROM fact_chunks WHERE run_id = $1 ORDER BY first_customer",
        )
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        // Customers by the chunk that would hold them (the last starting at or before).
        let mut wanted: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
        for &customer in customers {
            let at = firsts.partition_point(|first| first.as_str() <= customer);
            if at > 0 {
                wanted.entry(at - 1).or_default().push(customer);
            }
        }
        let mut out = Vec::new();
        for (at, of_chunk) in wanted {
            let blob: Vec<u8> = sqlx::query_scalar(
                "SELECT facts FROM fact_chunks WHERE run_id = $1 AND first_customer = $2",
            )
            .bind(run)
            .bind(&firsts[at])
            .fetch_one(self.pool())
            .await?;
            let chunk = FactsChunk::decode(&blob)?;
            out.extend(
                of_chunk
                    .into_iter()
                    .filter_map(|c| chunk.find(c))
                    .map(|i| chunk.facts(i)),
            );
        }
        Ok(out)
    }
}
