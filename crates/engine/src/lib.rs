//! # stratum-engine
//!
//! Turns a company's event exports into one row of metrics per customer. It exists to keep
//! the query engine (Apache DataFusion) in one place: it loads the policy's sources (CSV and
//! JSON lines through a strict row reader that names file, line and column; Parquet straight
//! into DataFusion), compiles the metric definitions to SQL relative to `as_of`, runs them and
//! hands [`stratum_core`] a [`Frame`]. It knows nothing about levels, stores or HTTP.

pub mod blocking;
pub mod cluster;
pub mod dense;
pub mod error;
pub mod lifetime;
pub mod load;
pub mod sql;
pub mod udf;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use stratum_core::model::{MetricKind, Policy};
use stratum_core::policy::{CUSTOMERS, SourceFormat};
use stratum_core::{Column, Frame, Ids};

pub use error::{EngineError, UserError};
pub use load::{BadRows, LoadStats, Reject, TextSpec, load_csv, load_jsonl};

/// How the engine runs.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub on_bad_rows: BadRows,
    /// DataFusion partitions (threads); 0 means one per core.
    pub target_partitions: usize,
    /// The manual inputs kept in the store, for `format = "inputs"` sources.
    pub inputs: Vec<ManualInput>,
    /// Bytes DataFusion's operators may hold at once (joins, aggregations, sorts); beyond
    /// it a query fails with a user error instead of growing. `None`: no limit. The server
    /// sets one for drafts; text sources loaded into memory are not counted.
    pub memory_limit: Option<usize>,
    /// Where stage one's aggregations over Parquet event sources run; `None`: where the
    /// policy's `[engine] cluster` says (here if it says nothing).
    pub cluster: Option<cluster::ClusterTarget>,
}

/// One person-entered value: a customer's field (e.g. relationship_top = 18).
#[derive(Debug, Clone, PartialEq)]
pub struct ManualInput {
    pub customer_id: String,
    pub field: String,
    pub value: String,
}

/// One loaded source and what loading it did.
#[derive(Debug, Clone)]
pub struct LoadedSource {
    pub name: String,
    pub file: String,
    pub path: PathBuf,
    pub format: SourceFormat,
    pub schema: SchemaRef,
    pub stats: LoadStats,
}

/// Event rows that name a customer id the customers source does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphans {
    pub source: String,
    pub rows: u64,
    pub customer_ids: u64,
}

/// The metrics of one evaluation and what they left out.
#[derive(Debug)]
pub struct MetricsOutput {
    pub frame: Frame,
    pub orphans: Vec<Orphans>,
    /// The lifetime models, when the policy has lifetime metrics.
    pub lifetime: Option<stratum_core::clv::LifetimeFit>,
    /// Metrics that came out infinite or not a number (an overflowing sum, a division by
    /// zero) for some customers: such values are missing in the frame, and said so here.
    pub non_finite: Vec<NonFinite>,
}

/// A metric's values that were not finite numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    pub metric: String,
    pub customers: u64,
    /// A few of the customers, in key order.
    pub examples: Vec<String>,
}

/// Customers named per metric in a [`NonFinite`].
const NON_FINITE_EXAMPLES: usize = 3;

/// Event rows per customer below which stage one skips partial aggregation.
const FEW_ROWS_PER_CUSTOMER: u64 = 64;
/// Customers from which a whole-base hash table no longer fits a core's cache.
const MANY_CUSTOMERS: u64 = 100_000;
/// Final aggregations per thread that stage one splits the customers into when it skips
/// partial aggregation: the more, the smaller (and more cache-resident) each hash table, but
/// each partition also scans and holds a row group of the input. At 1M customers, 4 per
/// thread made the whole run 4-6% faster than 2 for 3-5% more peak memory.
const STAGE_ONE_PARTITIONS_PER_THREAD: usize = 4;

/// Event rows per customer below which stage one keeps DataFusion's hash aggregation: the
/// dense one allocates, zeroes and merges a slot per customer and thread, which a source of a
/// row or two per customer does not pay back (1M customers, 2M invoices: 80-105 ms dense
/// against 63-78 ms hashed; 20M transactions: 533-778 ms against 728-831 ms).
const DENSE_MIN_ROWS_PER_CUSTOMER: u64 = 4;

/// Whether stage one groups `rows` event rows straight into final aggregations: when the
/// customers are too many for one hash table to stay in cache and each has few rows.
fn skips_partial_aggregation(customers: u64, rows: u64) -> bool {
    customers >= MANY_CUSTOMERS && rows / customers < FEW_ROWS_PER_CUSTOMER
}

pub struct Engine {
    ctx: SessionContext,
    /// Threads a query may use at once (the session's partitions before stage one's split).
    threads: usize,
    pub sources: Vec<LoadedSource>,
    pub rejects: Vec<Reject>,
    /// Parquet sources whose keys `load` did not check for duplicates.
    deferred_key_checks: Vec<UniqueKeyCheck>,
    /// The cluster stage one runs on, with the sources registered there.
    remote: Option<Remote>,
}

/// A Ballista session and the event sources it can read (Parquet, by absolute path).
struct Remote {
    ctx: SessionContext,
    target: cluster::ClusterTarget,
    sources: Vec<String>,
    /// How long one aggregation may take there.
    timeout: std::time::Duration,
}

impl Remote {
    /// A session on `target` with the policy's Parquet event sources registered by their
    /// absolute paths (the executors read them there: shared storage). Other sources stay
    /// here, and so do their aggregations.
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    async fn connect(
        target: &cluster::ClusterTarget,
        policy: &Policy,
        loaded: &[LoadedSource],
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Remote, EngineError> {
        let refuse = |message: String| {
            user(UserError::Cluster {
                cluster: target.to_string(),
                message,
            })
        };
        #[cfg(not(feature = "cluster"))]
        {
            // `load` refuses earlier; kept for any other caller.
            Err(refuse(cluster::NOT_BUILT.to_string()))
        }
        #[cfg(feature = "cluster")]
        {
            progress(&format!("connecting to the cluster {target}"));
            let ctx = cluster::session(target)
                .await
                .map_err(|e| refuse(clean(&e)))?;
            let mut sources = Vec::new();
            for s in loaded {
                let def = policy.source(&s.name);
                let travels = s.format == SourceFormat::Parquet
                    && def.is_some_and(|d| d.time.is_some() && d.from.is_none());
                if !travels {
                    continue;
                }
                let path = std::path::absolute(&s.path).map_err(|e| refuse(e.to_string()))?;
                let path = path
                    .to_str()
                    .ok_or_else(|| refuse("path is not valid UTF-8".into()))?;
                ctx.register_parquet(s.name.as_str(), path, ParquetReadOptions::default())
                    .await
                    .map_err(|e| refuse(format!("registering {}: {}", s.file, clean(&e))))?;
                sources.push(s.name.clone());
            }
            let timeout = policy
                .settings
                .cluster_timeout_seconds
                .unwrap_or(stratum_core::model::DEFAULT_CLUSTER_TIMEOUT_SECONDS);
            Ok(Remote {
                ctx,
                target: target.clone(),
                sources,
                timeout: std::time::Duration::from_secs(timeout),
            })
        }
    }

    /// Runs one stage-one aggregate there (over `file`), waiting at most the timeout.
    async fn aggregate(
        &self,
        a: &sql::Aggregate,
        file: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        let df = self
            .ctx
            .sql(&a.sql)
            .await
            .map_err(|e| self.error(clean(&e)))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = tokio::time::timeout(self.timeout, df.collect())
            .await
            .map_err(|_| {
                self.error(format!(
                    "no result for {} within {} s ([engine] timeout_seconds); is an executor \
                     registered with the scheduler, and can it read {file}?",
                    a.metrics.join(", "),
                    self.timeout.as_secs(),
                ))
            })?
            .map_err(|e| self.error(clean(&e)))?;
        Ok((schema, batches))
    }

    fn error(&self, e: impl std::fmt::Display) -> EngineError {
        user(UserError::Cluster {
            cluster: self.target.to_string(),
            message: e.to_string(),
        })
    }
}

/// A Parquet source that must have one row per key (one without a time column).
#[derive(Debug)]
struct UniqueKeyCheck {
    source_name: String,
    file: String,
    key: String,
}

impl UniqueKeyCheck {
    /// Fails naming a key that appears twice, if one does.
    async fn run(&self, ctx: &SessionContext) -> Result<(), EngineError> {
        let started = std::time::Instant::now();
        let dup = ctx
            .sql(&format!(
                "SELECT CAST({k} AS VARCHAR) FROM {t} GROUP BY {k} HAVING count(*) > 1 LIMIT 1",
                k = sql::ident(&self.key),
                t = sql::ident(&self.source_name)
            ))
            .await?
            .collect()
            .await?;
        tracing::debug!(source = %self.source_name, elapsed = ?started.elapsed(), "duplicate key check");
        match dup.iter().find(|b| b.num_rows() > 0) {
            Some(b) => {
                let key = cast(b.column(0), &DataType::Utf8)?;
                let key = key
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .map(|a| a.value(0).to_string())
                    .unwrap_or_default();
                Err(user(UserError::DuplicateKey {
                    source_name: self.source_name.clone(),
                    file: self.file.clone(),
                    key,
                }))
            }
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("sources", &self.sources)
            .finish()
    }
}

/// "No field named amout" gets "did you mean `amount`?" and the source's columns.
fn with_column_suggestion(message: String, source: Option<&LoadedSource>) -> String {
    let Some(source) = source else {
        return message;
    };
    let Some(rest) = message.split("No field named ").nth(1) else {
        return message;
    };
    let name: String = rest
        .trim_start_matches(['`', '"'])
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let columns: Vec<&str> = source
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let head = message.split(". Valid fields").next().unwrap_or(&message);
    let hint = stratum_core::diagnostic::did_you_mean(&name, columns.iter().copied())
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default();
    format!(
        "{head}{hint} (columns of source `{}` in {}: {})",
        source.name,
        source.file,
        columns.join(", ")
    )
}

/// Whether a DataFusion error is, at its root, the memory limit.
fn out_of_memory(e: &datafusion::error::DataFusionError) -> bool {
    matches!(
        e.find_root(),
        datafusion::error::DataFusionError::ResourcesExhausted(_)
    )
}

/// Whether a DataFusion error is, at its root, an integer division by zero.
fn divides_by_zero(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::arrow::error::ArrowError;
    use datafusion::error::DataFusionError;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if matches!(
            err.downcast_ref::<ArrowError>(),
            Some(ArrowError::DivideByZero)
        ) {
            return true;
        }
        if let Some(DataFusionError::ArrowError(a, _)) = err.downcast_ref::<DataFusionError>()
            && matches!(**a, ArrowError::DivideByZero)
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// A division by zero in `metrics` as the user error it is; any other error as it was.
fn division_error(e: datafusion::error::DataFusionError, metrics: &[String]) -> EngineError {
    if divides_by_zero(&e) {
        division_user_error(metrics)
    } else {
        e.into()
    }
}

fn division_user_error(metrics: &[String]) -> EngineError {
    let message = "divides a whole number by zero for some customer; write the divisor as \
                   nullif(…, 0) (the metric is then missing there) or divide by a decimal"
        .to_string();
    match metrics {
        [one] => user(UserError::Metric {
            metric: one.clone(),
            message,
        }),
        _ => user(UserError::Config(format!(
            "one of the metrics {} {message}",
            metrics
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn user(e: UserError) -> EngineError {
    EngineError::User(e)
}

/// DataFusion's messages carry a prefix and a backtrace hint that mean nothing to users.
pub(crate) fn clean(e: &datafusion::error::DataFusionError) -> String {
    let text = e.to_string();
    let text = text
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("SQL error: ");
    text.split("\n\nThis issue")
        .next()
        .unwrap_or(text)
        .to_string()
}

impl Engine {
    /// Loads every source of the policy. Paths are relative to `base_dir`.
    pub async fn load(
        policy: &Policy,
        base_dir: &Path,
        options: &EngineOptions,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Engine, EngineError> {
        let target = match &options.cluster {
            Some(cluster::ClusterTarget::Local) => None,
            Some(target) => Some(target.clone()),
            None => policy
                .settings
                .cluster
                .clone()
                .map(cluster::ClusterTarget::Scheduler),
        };
        // Refused before any file is read.
        if let Some(target) = &target
            && !cluster::SUPPORTED
        {
            return Err(user(UserError::Cluster {
                cluster: target.to_string(),
                message: cluster::NOT_BUILT.to_string(),
            }));
        }
        let mut config = SessionConfig::new().with_information_schema(false);
        // Window filters are not pushed into the Parquet decoder: row groups outside a window
        // are still skipped by their statistics (time-ordered exports), and over unordered
        // data a window keeps a large share of the rows, where selecting them while decoding
        // cost more than filtering after (BENCHMARKS.md, "Memory and wall time").
        if options.target_partitions > 0 {
            config = config.with_target_partitions(options.target_partitions);
        }
        apply_datafusion_env(&mut config)?;
        let ctx = match options.memory_limit {
            Some(bytes) => {
                let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                    .with_memory_limit(bytes, 1.0)
                    .build_arc()?;
                SessionContext::new_with_config_rt(config, runtime)
            }
            None => SessionContext::new_with_config(config),
        };
        ctx.register_udf(udf::DaysBetween::udf());
        let mut sources = Vec::new();
        let mut rejects = Vec::new();
        let mut deferred_key_checks = Vec::new();
        for (name, def) in &policy.sources {
            if def.from.is_some() {
                // Derived from an event source once every file is loaded (below).
                continue;
            }
            if def.format == SourceFormat::Inputs {
                progress(&format!("loading {name} (manual inputs)"));
                let (schema, batch) = inputs_table(name, def, &options.inputs)?;
                let rows = batch.num_rows() as u64;
                let table = MemTable::try_new(schema.clone(), vec![vec![batch]])?;
                ctx.register_table(name.as_str(), Arc::new(table))?;
                sources.push(LoadedSource {
                    name: name.clone(),
                    file: "(manual inputs)".into(),
                    path: PathBuf::new(),
                    format: SourceFormat::Inputs,
                    schema,
                    stats: LoadStats {
                        read: rows,
                        accepted: rows,
                        rejected: 0,
                    },
                });
                continue;
            }
            let path = base_dir.join(&def.path);
            let display = def.path.clone();
            if !path.exists() {
                return Err(user(UserError::FileNotFound {
                    source_name: name.clone(),
                    file: path.display().to_string(),
                }));
            }
            progress(&format!("loading {name} ({display})"));
            let format = def.format;
            let declared: Vec<(String, stratum_core::ColumnType)> =
                def.columns.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let unique_key = def.time.is_none();
            let (schema, stats) = match format {
                SourceFormat::Inputs => unreachable!("handled above"),
                SourceFormat::Csv | SourceFormat::Jsonl => {
                    let delimiter = match def.delimiter.as_deref() {
                        None => {
                            if display.to_lowercase().ends_with(".tsv") {
                                b'\t'
                            } else {
                                b','
                            }
                        }
                        Some("\\t") | Some("\t") => b'\t',
                        Some(d) if d.len() == 1 => d.as_bytes()[0],
                        Some(d) => {
                            return Err(user(UserError::Unreadable {
                                source_name: name.clone(),
                                file: display,
                                message: format!("delimiter `{d}` must be one character"),
                            }));
                        }
                    };
                    let (source, path, display) = (name.clone(), path.clone(), display.clone());
                    let (key, time) = (def.key.clone(), def.time.clone());
                    let on_bad_rows = options.on_bad_rows;
                    let loaded = blocking::blocking(move || {
                        let spec = load::TextSpec {
                            source: &source,
                            path: &path,
                            display: &display,
                            key: &key,
                            time: time.as_deref(),
                            declared: &declared,
                            delimiter,
                            unique_key,
                        };
                        match format {
                            SourceFormat::Csv => load::load_csv(&spec, on_bad_rows),
                            _ => load::load_jsonl(&spec, on_bad_rows),
                        }
                    })
                    .await?;
                    let table = MemTable::try_new(loaded.schema.clone(), vec![loaded.batches])?;
                    ctx.register_table(name.as_str(), Arc::new(table))?;
                    rejects.extend(loaded.rejects);
                    (loaded.schema, loaded.stats)
                }
                SourceFormat::Parquet => {
                    let path_str = path.to_str().ok_or_else(|| {
                        user(UserError::Unreadable {
                            source_name: name.clone(),
                            file: display.clone(),
                            message: "path is not valid UTF-8".into(),
                        })
                    })?;
                    ctx.register_parquet(name.as_str(), path_str, ParquetReadOptions::default())
                        .await
                        .map_err(|e| {
                            user(UserError::Unreadable {
                                source_name: name.clone(),
                                file: display.clone(),
                                message: clean(&e),
                            })
                        })?;
                    let schema: SchemaRef =
                        Arc::new(ctx.table(name.as_str()).await?.schema().as_arrow().clone());
                    let mut required: Vec<&str> = vec![def.key.as_str()];
                    required.extend(def.time.as_deref());
                    required.extend(def.tags.as_deref());
                    required.extend(def.columns.keys().map(String::as_str));
                    for col in required {
                        if schema.field_with_name(col).is_err() {
                            return Err(user(UserError::MissingColumn {
                                source_name: name.clone(),
                                file: display.clone(),
                                column: col.to_string(),
                                available: schema
                                    .fields()
                                    .iter()
                                    .map(|f| f.name().clone())
                                    .collect(),
                            }));
                        }
                    }
                    let rows =
                        count(&ctx, &format!("SELECT count(*) FROM {}", sql::ident(name))).await?;
                    // The customers' keys are checked for free in stage two, where every
                    // customer is a row (`check_unique_keys` names a duplicate); other
                    // sources here, since a duplicate there need not reach stage two.
                    if unique_key {
                        let check = UniqueKeyCheck {
                            source_name: name.clone(),
                            file: display.clone(),
                            key: def.key.clone(),
                        };
                        if name == CUSTOMERS {
                            deferred_key_checks.push(check);
                        } else {
                            check.run(&ctx).await?;
                        }
                    }
                    (
                        schema,
                        LoadStats {
                            read: rows,
                            accepted: rows,
                            rejected: 0,
                        },
                    )
                }
            };
            if let Some(t) = &def.time {
                let ty = schema
                    .field_with_name(t)
                    .map(|f| f.data_type().clone())
                    .unwrap_or(DataType::Null);
                if !matches!(
                    ty,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
                ) {
                    return Err(user(UserError::WrongType {
                        source_name: name.clone(),
                        file: display.clone(),
                        column: t.clone(),
                        found: ty.to_string(),
                        expected: "the time column must hold dates or timestamps".into(),
                    }));
                }
            }
            sources.push(LoadedSource {
                name: name.clone(),
                file: display,
                path,
                format,
                schema,
                stats,
            });
        }
        for (name, def) in &policy.sources {
            let Some(from) = &def.from else { continue };
            let event = policy.source(from).expect("compiled: an event source");
            let time = event
                .time
                .as_deref()
                .expect("compiled: it has a time column");
            progress(&format!("deriving {name} from {from}"));
            let query = format!(
                "SELECT {} AS {}, min({t}) AS first_seen, max({t}) AS last_seen FROM {} GROUP BY {}",
                sql::ident(&event.key),
                sql::ident(&def.key),
                sql::ident(from),
                sql::ident(&event.key),
                t = sql::ident(time),
            );
            let df = ctx.sql(&query).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            ctx.register_table(
                name.as_str(),
                Arc::new(MemTable::try_new(schema.clone(), vec![batches])?),
            )?;
            let from_file = sources
                .iter()
                .find(|s: &&LoadedSource| &s.name == from)
                .map(|s| s.file.clone())
                .unwrap_or_default();
            sources.push(LoadedSource {
                name: name.clone(),
                file: format!("(distinct {} of {from_file})", event.key),
                path: PathBuf::new(),
                format: event.format,
                schema,
                stats: LoadStats {
                    read: rows,
                    accepted: rows,
                    rejected: 0,
                },
            });
        }
        let threads = ctx.state().config().options().execution.target_partitions;
        let remote = match &target {
            Some(target) => Some(Remote::connect(target, policy, &sources, progress).await?),
            None => None,
        };
        Ok(Engine {
            ctx,
            threads,
            sources,
            rejects,
            deferred_key_checks,
            remote,
        })
    }

    /// Checks that every source that must have one row per customer has, including those
    /// whose check `load` leaves to stage two (`stratum check` runs no stage two).
    pub async fn check_unique_keys(&self) -> Result<(), EngineError> {
        for check in &self.deferred_key_checks {
            check.run(&self.ctx).await?;
        }
        Ok(())
    }

    /// The session a stage-one aggregate of `source` runs in. It groups every event row by
    /// customer, and event logs hold few rows per customer: a partial aggregation per input
    /// partition then reduces little and builds a hash table the size of the customer base in
    /// each, most of it out of cache. From [`MANY_CUSTOMERS`] customers with under
    /// [`FEW_ROWS_PER_CUSTOMER`] rows each, the rows go straight to final aggregations by
    /// customer hash, [`STAGE_ONE_PARTITIONS_PER_THREAD`] per thread,
    /// each table a fraction of the size. `DATAFUSION_*` settings in the environment still win.
    ///
    /// Where the customer key is an integer, [`dense::DenseAggregation`] replaces the hash
    /// aggregation altogether (one flat array of slots by key); the settings above then only
    /// decide how many partitions the scan feeds it.
    fn stage_one_context(&self, source: &str) -> Result<SessionContext, EngineError> {
        let rows = |name: &str| self.source(name).map_or(0, |s| s.stats.accepted);
        let customers = rows(CUSTOMERS);
        let mut state = self.ctx.state();
        if skips_partial_aggregation(customers, rows(source)) {
            let config = state.config_mut();
            let options = config.options_mut();
            options
                .execution
                .skip_partial_aggregation_probe_ratio_threshold = 0.0;
            options.execution.target_partitions *= STAGE_ONE_PARTITIONS_PER_THREAD;
            apply_datafusion_env(config)?;
        }
        if !dense::enabled()? || rows(source) < DENSE_MIN_ROWS_PER_CUSTOMER * customers {
            return Ok(SessionContext::new_with_state(state));
        }
        let dense = dense::DenseAggregation {
            workers: self.threads,
            expected_groups: usize::try_from(customers).unwrap_or(usize::MAX),
        };
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
            .with_physical_optimizer_rule(Arc::new(dense))
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    pub fn source(&self, name: &str) -> Option<&LoadedSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    fn key_types<'a>(&'a self, policy: &'a Policy) -> SourceTypes<'a> {
        SourceTypes {
            engine: self,
            policy,
        }
    }

    /// Plans every metric on its own so a mistake (unknown column, wrong type) is reported
    /// against the metric that made it. Nothing is executed.
    pub async fn validate(&self, policy: &Policy, as_of: NaiveDate) -> Result<(), EngineError> {
        let customers = policy.source(CUSTOMERS).expect("compiled");
        let cschema = &self.source(CUSTOMERS).expect("loaded").schema;
        for m in &policy.metrics {
            if let MetricKind::Rollup { group, .. } = &m.kind
                && cschema.field_with_name(group).is_err()
            {
                return Err(user(UserError::Metric {
                    metric: m.name.clone(),
                    message: format!(
                        "rollup group `{group}` is not a column of the customers source (columns: {})",
                        cschema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }));
            }
        }
        if let Some(tags) = &customers.tags
            && cschema.field_with_name(tags).is_err()
        {
            return Err(user(UserError::MissingColumn {
                source_name: CUSTOMERS.into(),
                file: self
                    .source(CUSTOMERS)
                    .map(|s| s.file.clone())
                    .unwrap_or_default(),
                column: tags.clone(),
                available: cschema.fields().iter().map(|f| f.name().clone()).collect(),
            }));
        }
        for m in &policy.metrics {
            let probe = match &m.kind {
                MetricKind::Event {
                    source,
                    expr,
                    filter,
                    ..
                } => {
                    let key = sql::ident(&policy.source(source).expect("compiled").key);
                    format!(
                        "SELECT ({}) FROM {} {} GROUP BY {key}",
                        sql::with_as_of(expr, as_of),
                        sql::ident(source),
                        filter
                            .as_ref()
                            .map(|f| format!("WHERE ({})", sql::with_as_of(f, as_of)))
                            .unwrap_or_default()
                    )
                }
                MetricKind::Attribute { source, expr, .. } => {
                    format!(
                        "SELECT ({}) FROM {}",
                        sql::with_as_of(expr, as_of),
                        sql::ident(source)
                    )
                }
                _ => continue,
            };
            if let Err(e) = self.ctx.sql(&probe).await {
                let source = match &m.kind {
                    MetricKind::Event { source, .. } | MetricKind::Attribute { source, .. } => {
                        self.source(source)
                    }
                    _ => None,
                };
                return Err(user(UserError::Metric {
                    metric: m.name.clone(),
                    message: with_column_suggestion(clean(&e), source),
                }));
            }
        }
        Ok(())
    }

    /// The SQL the engine runs for `as_of`, for people who want to see it.
    pub fn explain_sql(&self, policy: &Policy, as_of: NaiveDate) -> String {
        let types = self.key_types(policy);
        let aggs = sql::aggregates(policy, as_of, &types);
        let mut out = String::new();
        for a in &aggs {
            out.push_str(&format!("-- {}\n{};\n\n", a.table, a.sql));
        }
        if let Some(spec) = self.lifetime_spec(policy, as_of, &types) {
            out.push_str(&format!(
                "-- {} (the lifetime models are fitted to this summary in Rust)\n{};\n\n",
                lifetime::TABLE,
                lifetime::summary_sql(&spec.borrowed())
            ));
        }
        out.push_str(&sql::frame_query(policy, &aggs, as_of, None, &types));
        out
    }

    /// Evaluates every metric for every customer as of a date.
    pub async fn metrics(
        &self,
        policy: &Policy,
        as_of: NaiveDate,
    ) -> Result<MetricsOutput, EngineError> {
        self.validate(policy, as_of).await?;
        let types = self.key_types(policy);
        let aggs = sql::aggregates(policy, as_of, &types);
        // Stage one: each aggregate is computed once and kept; it is small (a row per customer).
        let mut registered = Vec::new();
        for a in &aggs {
            let started = std::time::Instant::now();
            let remote = self
                .remote
                .as_ref()
                .filter(|r| r.sources.contains(&a.source));
            let (schema, batches) = match remote {
                Some(remote) => {
                    let file = self
                        .source(&a.source)
                        .map_or("the files", |s| s.file.as_str());
                    remote.aggregate(a, file).await?
                }
                None => {
                    let df = self
                        .stage_one_context(&a.source)?
                        .sql(&a.sql)
                        .await
                        .map_err(|e| {
                            user(UserError::Metric {
                                metric: a.metrics.join(", "),
                                message: clean(&e),
                            })
                        })?;
                    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                    let batches = df
                        .collect()
                        .await
                        .map_err(|e| division_error(e, &a.metrics))?;
                    (schema, batches)
                }
            };
            tracing::debug!(table = %a.table, cluster = ?remote.map(|r| r.target.to_string()), elapsed = ?started.elapsed(), "stage one aggregate");
            let table = MemTable::try_new(schema, vec![batches])?;
            self.ctx.register_table(a.table.as_str(), Arc::new(table))?;
            registered.push(a.table.clone());
        }
        let lifetime = match self.lifetime_spec(policy, as_of, &types) {
            Some(spec) => {
                let spec = spec.borrowed();
                match lifetime::register_policy_table(&self.ctx, policy, &spec, as_of).await {
                    Ok(fit) => fit,
                    Err(e) => {
                        for t in registered {
                            self.ctx.deregister_table(t.as_str())?;
                        }
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        if lifetime.is_some() {
            registered.push(lifetime::TABLE.to_string());
        }
        let result = self
            .stage_two(policy, &aggs, as_of, &types)
            .await
            .map_err(|e| match e {
                EngineError::Division(_) => {
                    // Stage two computes the derived metrics: name those that divide.
                    let dividing: Vec<String> = policy
                        .metrics
                        .iter()
                        .filter(|m| matches!(&m.kind, stratum_core::MetricKind::Derived { expr, .. } if expr.contains('/')))
                        .map(|m| m.name.clone())
                        .collect();
                    division_user_error(&dividing)
                }
                e => e,
            });
        let totals = match &result {
            Ok(_) => self.aggregate_totals(&aggs).await,
            Err(_) => Ok(Vec::new()),
        };
        for t in registered {
            self.ctx.deregister_table(t.as_str())?;
        }
        let batches = result?;
        let totals = totals?;
        let (frame, non_finite) = to_frame(policy, &batches)?;
        // Rows are in key order, so a customer listed twice is two neighbours.
        let ids = frame.ids();
        if let Some(row) = (1..ids.len()).find(|&row| ids[row] == ids[row - 1]) {
            self.check_unique_keys().await?;
            return Err(EngineError::Internal(format!(
                "customer `{}` has two rows of metrics",
                &ids[row]
            )));
        }
        let orphans = orphans(&aggs, &totals, &batches)?;
        Ok(MetricsOutput {
            frame,
            orphans,
            lifetime,
            non_finite,
        })
    }

    /// The summary query's parts for the policy's `[lifetime]`, when a metric uses it.
    fn lifetime_spec(
        &self,
        policy: &Policy,
        as_of: NaiveDate,
        types: &SourceTypes<'_>,
    ) -> Option<OwnedSummarySpec> {
        let (l, _) = policy.lifetime_metrics()?;
        use sql::KeyTypes;
        let src = policy.source(&l.source)?;
        let native = types.same_key_type(&l.source);
        let key = sql::ident(&src.key);
        Some(OwnedSummarySpec {
            table: sql::ident(&l.source),
            key: if native {
                key
            } else {
                format!("CAST({key} AS VARCHAR)")
            },
            time: sql::ident(src.time.as_deref()?),
            amount: l.amount.as_ref().map(|a| sql::with_as_of(a, as_of)),
            filter: l.filter.as_ref().map(|f| sql::with_as_of(f, as_of)),
            end: sql::bound(as_of + chrono::Days::new(1), &types.time_type(&l.source)),
        })
    }

    async fn stage_two(
        &self,
        policy: &Policy,
        aggs: &[sql::Aggregate],
        as_of: NaiveDate,
        types: &SourceTypes<'_>,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let query = sql::frame_query(policy, aggs, as_of, None, types);
        match self.ctx.sql(&query).await {
            Ok(df) => {
                let started = std::time::Instant::now();
                let batches = df.collect().await?;
                tracing::debug!(elapsed = ?started.elapsed(), "stage two frame query");
                Ok(batches)
            }
            Err(e) => {
                // Find the first derived metric whose layer fails to plan, to name it.
                for m in &policy.metrics {
                    if matches!(
                        m.kind,
                        MetricKind::Derived { .. } | MetricKind::Rollup { .. }
                    ) {
                        let partial = sql::frame_query(policy, aggs, as_of, Some(&m.name), types);
                        if let Err(inner) = self.ctx.sql(&partial).await {
                            return Err(user(UserError::Metric {
                                metric: m.name.clone(),
                                message: clean(&inner),
                            }));
                        }
                    }
                }
                Err(EngineError::Internal(format!("{e}\nquery: {query}")))
            }
        }
    }

    /// Rows and keys of each stage-one aggregate: the totals orphans are measured against.
    async fn aggregate_totals(
        &self,
        aggs: &[sql::Aggregate],
    ) -> Result<Vec<(u64, u64)>, EngineError> {
        let mut out = Vec::new();
        for a in aggs {
            let q = format!(
                "SELECT COALESCE(sum(\"__rows\"), 0), count(*) FROM {}",
                sql::ident(&a.table)
            );
            let batches = self.ctx.sql(&q).await?.collect().await?;
            out.push((first_u64(&batches, 0), first_u64(&batches, 1)));
        }
        Ok(out)
    }
}

/// [`lifetime::SummarySpec`] with its strings owned.
struct OwnedSummarySpec {
    table: String,
    key: String,
    time: String,
    amount: Option<String>,
    filter: Option<String>,
    end: String,
}

impl OwnedSummarySpec {
    fn borrowed(&self) -> lifetime::SummarySpec<'_> {
        lifetime::SummarySpec {
            table: &self.table,
            key: &self.key,
            time: &self.time,
            amount: self.amount.as_deref(),
            filter: self.filter.as_deref(),
            end: &self.end,
        }
    }
}

/// The manual inputs as a table: the key column, then every declared column and every field
/// anyone entered. Declared columns take their type (a value that does not parse is an error
/// naming the customer and field); other fields are numbers when every value parses as one.
fn inputs_table(
    name: &str,
    def: &stratum_core::Source,
    inputs: &[ManualInput],
) -> Result<(SchemaRef, RecordBatch), EngineError> {
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::collections::BTreeMap;

    let mut customers: Vec<&str> = inputs.iter().map(|i| i.customer_id.as_str()).collect();
    customers.sort_unstable();
    customers.dedup();
    let row_of: BTreeMap<&str, usize> =
        customers.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut fields: Vec<String> = def.columns.keys().cloned().collect();
    for i in inputs {
        if !fields.contains(&i.field) {
            fields.push(i.field.clone());
        }
    }
    let mut schema_fields = vec![Field::new(&def.key, DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        customers.iter().copied(),
    ))];
    for field in &fields {
        let mut values: Vec<Option<&str>> = vec![None; customers.len()];
        for i in inputs.iter().filter(|i| &i.field == field) {
            values[row_of[i.customer_id.as_str()]] = Some(i.value.as_str());
        }
        let declared = def.columns.get(field).copied();
        let numeric = match declared {
            Some(stratum_core::ColumnType::Float) | Some(stratum_core::ColumnType::Int) => true,
            Some(_) => false,
            None => values
                .iter()
                .flatten()
                .all(|v| v.trim().parse::<f64>().is_ok()),
        };
        if numeric {
            let mut nums = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                nums.push(match v {
                    None => None,
                    Some(text) => Some(text.trim().parse::<f64>().map_err(|_| {
                        user(UserError::Metric {
                            metric: format!("{name}.{field}"),
                            message: format!(
                                "manual input `{field}` of customer `{}` is `{text}`, not a number \
                                 (`stratum input set` corrects it)",
                                customers[row]
                            ),
                        })
                    })?),
                });
            }
            schema_fields.push(Field::new(field, DataType::Float64, true));
            columns.push(Arc::new(Float64Array::from(nums)));
        } else {
            schema_fields.push(Field::new(field, DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(values)));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(schema_fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok((schema, batch))
}

/// Any DataFusion setting can be tuned from the environment, e.g.
/// `DATAFUSION_EXECUTION_BATCH_SIZE=16384` sets `datafusion.execution.batch_size`; these win
/// over stratum's own defaults.
fn apply_datafusion_env(config: &mut SessionConfig) -> Result<(), EngineError> {
    let keys: Vec<String> = config
        .options()
        .entries()
        .into_iter()
        .map(|e| e.key)
        .collect();
    for key in keys {
        let var = key.to_uppercase().replace('.', "_");
        if let Ok(value) = std::env::var(&var) {
            config.options_mut().set(&key, &value).map_err(|e| {
                user(UserError::Config(format!(
                    "environment variable {var}={value}: {}",
                    clean(&e)
                )))
            })?;
        }
    }
    Ok(())
}

/// Event rows whose key matched no customer: each aggregate's total rows and keys minus those
/// the join onto the customers matched. Windows of one source overlap, so each source reports
/// its widest window, not a sum.
fn orphans(
    aggs: &[sql::Aggregate],
    totals: &[(u64, u64)],
    batches: &[RecordBatch],
) -> Result<Vec<Orphans>, EngineError> {
    let mut out: Vec<Orphans> = Vec::new();
    for (i, a) in aggs.iter().enumerate() {
        let name = format!("__rows_{i}");
        let (mut rows, mut ids) = (0u64, 0u64);
        for b in batches {
            let col = b
                .column_by_name(&name)
                .ok_or_else(|| EngineError::Internal(format!("{name} missing")))?;
            let col = cast(col, &DataType::UInt64)?;
            let col = col
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .expect("cast to UInt64");
            rows += col.iter().flatten().sum::<u64>();
            ids += (col.len() - col.null_count()) as u64;
        }
        let (total_rows, total_ids) = totals[i];
        let o = Orphans {
            source: a.source.clone(),
            rows: total_rows.saturating_sub(rows),
            customer_ids: total_ids.saturating_sub(ids),
        };
        match out.iter_mut().find(|x| x.source == o.source) {
            Some(x) if o.rows > x.rows => *x = o,
            Some(_) => {}
            None => out.push(o),
        }
    }
    out.retain(|o| o.rows > 0);
    Ok(out)
}

/// Key and time types of the loaded sources, for SQL generation.
struct SourceTypes<'a> {
    engine: &'a Engine,
    policy: &'a Policy,
}

impl SourceTypes<'_> {
    fn column_type(&self, source: &str, column: &str) -> Option<DataType> {
        let s = self.engine.source(source)?;
        s.schema
            .field_with_name(column)
            .ok()
            .map(|f| f.data_type().clone())
    }
}

impl sql::KeyTypes for SourceTypes<'_> {
    fn time_type(&self, source: &str) -> DataType {
        self.policy
            .source(source)
            .and_then(|d| d.time.as_ref())
            .and_then(|t| self.column_type(source, t))
            .unwrap_or(DataType::Date32)
    }
    fn same_key_type(&self, source: &str) -> bool {
        let key = |s: &str| {
            self.policy
                .source(s)
                .and_then(|d| self.column_type(s, &d.key))
        };
        matches!((key(source), key(CUSTOMERS)), (Some(a), Some(b)) if a == b)
    }
}

async fn count(ctx: &SessionContext, q: &str) -> Result<u64, EngineError> {
    let batches = ctx.sql(q).await?.collect().await?;
    Ok(first_u64(&batches, 0))
}

fn first_u64(batches: &[RecordBatch], col: usize) -> u64 {
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| cast(b.column(col), &DataType::UInt64).ok())
        .and_then(|a| {
            a.as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .map(|x| if x.is_null(0) { 0 } else { x.value(0) })
        })
        .unwrap_or(0)
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean | DataType::Null)
}

/// Converts the stage-two result into the core's frame.
/// Metrics are rounded to 6 decimal places. Parallel aggregation adds partial sums in whatever
/// order partitions finish, so two customers whose totals are equal can differ in the last
/// bits, and percentile ties would then break differently from run to run.
pub(crate) fn round_metric(v: f64) -> f64 {
    if v.abs() < 1e12 {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}

fn to_frame(
    policy: &Policy,
    batches: &[RecordBatch],
) -> Result<(Frame, Vec<NonFinite>), EngineError> {
    use datafusion::arrow::compute::concat;

    if batches.is_empty() {
        let mut frame = Frame::new(Ids::default(), Vec::new());
        for m in &policy.metrics {
            frame
                .push(m.name.clone(), Column::Num(Vec::new()))
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        return Ok((frame, Vec::new()));
    }
    // A column across every batch, once: everything below reads it in key order.
    let column = |name: &str| -> Result<ArrayRef, EngineError> {
        let parts = batches
            .iter()
            .map(|b| {
                b.column_by_name(name)
                    .map(|c| c.as_ref())
                    .ok_or_else(|| EngineError::Internal(format!("`{name}` missing from result")))
            })
            .collect::<Result<Vec<&dyn Array>, EngineError>>()?;
        Ok(concat(&parts)?)
    };
    let (order, ids) = frame_order(&column("__key")?)?;
    let sep = policy
        .source(CUSTOMERS)
        .and_then(|c| c.tag_separator.clone())
        .unwrap_or_else(|| ";".to_string());
    let has_tags = policy.source(CUSTOMERS).is_some_and(|c| c.tags.is_some());
    // Tags and metrics are put in key order side by side.
    let (tags, metrics) = rayon::join(
        || -> Result<Vec<Vec<String>>, EngineError> {
            if !has_tags {
                return Ok(Vec::new());
            }
            let tags = text_in_order(&column("__tags")?, &order)?
                .into_iter()
                .map(|t| {
                    t.map(|s| {
                        s.split(sep.as_str())
                            .map(str::trim)
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
                })
                .collect();
            Ok(tags)
        },
        || -> Result<(Vec<Column>, NonFiniteRows), EngineError> {
            let mut columns: Vec<Option<Column>> = vec![None; policy.metrics.len()];
            let mut numeric: Vec<(usize, ArrayRef)> = Vec::new();
            for (i, m) in policy.metrics.iter().enumerate() {
                let values = column(&m.name)?;
                if is_numeric(values.data_type()) {
                    numeric.push((i, cast(&values, &DataType::Float64)?));
                } else {
                    columns[i] = Some(Column::Text(text_in_order(&values, &order)?));
                }
            }
            let (at, values): (Vec<usize>, Vec<ArrayRef>) = numeric.into_iter().unzip();
            let non_finite: NonFiniteRows = at
                .iter()
                .zip(&values)
                .filter_map(|(&i, v)| {
                    let (count, rows) = non_finite_rows(v);
                    (count > 0).then_some((i, count, rows))
                })
                .collect();
            for (i, gathered) in at.into_iter().zip(numbers_in_order(values, &order)) {
                columns[i] = Some(Column::Num(gathered));
            }
            Ok((
                columns
                    .into_iter()
                    .map(|c| c.expect("every metric has a column"))
                    .collect(),
                non_finite,
            ))
        },
    );
    let (metrics, non_finite) = metrics?;
    let mut frame = Frame::new(ids, tags?);
    for (m, values) in policy.metrics.iter().zip(metrics) {
        frame
            .push(m.name.clone(), values)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
    }
    // Arrival rows to customers: `order` maps key order to arrival order.
    let non_finite = non_finite
        .into_iter()
        .map(|(i, customers, rows)| {
            let mut examples: Vec<usize> = rows
                .iter()
                .filter_map(|r| order.iter().position(|&o| o as usize == *r))
                .collect();
            examples.sort_unstable();
            NonFinite {
                metric: policy.metrics[i].name.clone(),
                customers,
                examples: examples
                    .into_iter()
                    .map(|p| frame.ids()[p].to_string())
                    .collect(),
            }
        })
        .collect();
    Ok((frame, non_finite))
}

/// Per numeric metric (by index) with non-finite values: how many, and a few arrival rows.
type NonFiniteRows = Vec<(usize, u64, Vec<usize>)>;

/// How many valid values of a Float64 column are infinite or NaN, and the arrival rows of
/// the first few.
fn non_finite_rows(values: &ArrayRef) -> (u64, Vec<usize>) {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    let values = values.as_primitive::<Float64Type>();
    let mut count = 0u64;
    let mut rows = Vec::new();
    for (row, v) in values.iter().enumerate() {
        if v.is_some_and(|v| !v.is_finite()) {
            count += 1;
            if rows.len() < NON_FINITE_EXAMPLES {
                rows.push(row);
            }
        }
    }
    (count, rows)
}

/// The stage-two rows in customer key order (nulls last; ties, which only a duplicate key
/// makes, in arrival order), whatever order the partitions finished in, and each customer's
/// id (the key as text) in that order.
fn frame_order(keys: &ArrayRef) -> Result<(Vec<u32>, Ids), EngineError> {
    use datafusion::arrow::array::{AsArray, UInt32Array};
    use datafusion::arrow::compute::{SortOptions, sort_to_indices, take};
    use datafusion::arrow::datatypes::Int64Type;
    use rayon::slice::ParallelSliceMut;
    use std::fmt::Write as _;

    // Integer keys, the common case, are sorted on every core and written out from the
    // sorted pairs, without going back to the rows.
    if let Some(ints) = keys.as_primitive_opt::<Int64Type>()
        && ints.null_count() == 0
    {
        let mut pairs: Vec<(i64, u32)> = ints.values().iter().copied().zip(0u32..).collect();
        pairs.par_sort_unstable();
        let mut ids = Ids::with_capacity(pairs.len(), pairs.len() * 8);
        for (key, _) in &pairs {
            ids.push_with(|text| {
                let _ = write!(text, "{key}");
            });
        }
        return Ok((pairs.into_iter().map(|(_, row)| row).collect(), ids));
    }
    let options = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let indices: UInt32Array = sort_to_indices(keys, Some(options), None)?;
    let ids = cast(&take(keys, &indices, None)?, &DataType::Utf8)?;
    let ids = ids
        .as_string::<i32>()
        .iter()
        .map(Option::unwrap_or_default)
        .collect();
    Ok((indices.values().to_vec(), ids))
}

/// Numeric columns' values in [`frame_order`], rounded ([`round_metric`]), missing where null
/// or not finite. The join's row order is unrelated to the key's, so each value is a random
/// read, and over arrays of megabytes in a virtual machine most of its cost is a TLB miss:
/// the columns are first copied side by side (a row of every metric in arrival order), then
/// read once per customer for all of them, then split into columns again. `columns` are
/// Float64 arrays; each is dropped once copied.
fn numbers_in_order(columns: Vec<ArrayRef>, order: &[u32]) -> Vec<Vec<Option<f64>>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    use rayon::iter::{
        IndexedParallelIterator, IntoParallelIterator, IntoParallelRefIterator, ParallelIterator,
    };
    use rayon::slice::{ParallelSlice, ParallelSliceMut};

    let width = columns.len();
    if width == 0 {
        return Vec::new();
    }
    let mut arrived = vec![f64::NAN; order.len() * width];
    {
        let columns: Vec<&Float64Array> = columns
            .iter()
            .map(|c| c.as_primitive::<Float64Type>())
            .collect();
        arrived
            .par_chunks_mut(width)
            .enumerate()
            .for_each(|(row, cells)| {
                for (cell, column) in cells.iter_mut().zip(&columns) {
                    if column.is_valid(row) {
                        *cell = column.value(row);
                    }
                }
            });
    }
    drop(columns);
    let mut sorted = vec![f64::NAN; order.len() * width];
    sorted
        .par_chunks_mut(width)
        .zip(order.par_iter())
        .for_each(|(cells, &row)| {
            let row = row as usize * width;
            cells.copy_from_slice(&arrived[row..row + width]);
        });
    drop(arrived);
    (0..width)
        .into_par_iter()
        .map(|j| {
            sorted
                .par_chunks(width)
                .map(|cells| Some(cells[j]).filter(|x| x.is_finite()).map(round_metric))
                .collect()
        })
        .collect()
}

/// A text column's values in [`frame_order`]. They are copied out in that order so that the
/// strings lie in memory as they are read and freed: a million freed in random order took a
/// third of a second at the end of a run.
fn text_in_order(values: &ArrayRef, order: &[u32]) -> Result<Vec<Option<String>>, EngineError> {
    use datafusion::arrow::array::AsArray;

    let all = cast(values, &DataType::Utf8)?;
    let all = all.as_string::<i32>();
    Ok(order
        .iter()
        .map(|&row| {
            let row = row as usize;
            all.is_valid(row).then(|| all.value(row).to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::compute::concat;

    use stratum_core::Ids;

    use super::{frame_order, numbers_in_order, skips_partial_aggregation, text_in_order};

    #[test]
    fn frame_rows_follow_the_customer_key_across_batches() {
        // Two batches, as `to_frame` joins them.
        let first: ArrayRef = Arc::new(Int64Array::from(vec![30, 10, 40]));
        let second: ArrayRef = Arc::new(Int64Array::from(vec![20, 5]));
        let (order, ids) =
            frame_order(&concat(&[first.as_ref(), second.as_ref()]).unwrap()).unwrap();
        assert_eq!(order, [4, 1, 3, 0, 2]);
        assert_eq!(ids, Ids::from(vec!["5", "10", "20", "30", "40"]));
        let names: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["thirty", "ten", "forty"])),
            Arc::new(StringArray::from(vec!["twenty", "five"])),
        ];
        let names = concat(&[names[0].as_ref(), names[1].as_ref()]).unwrap();
        let names = text_in_order(&names, &order).unwrap();
        let names: Vec<&str> = names.iter().map(|n| n.as_deref().unwrap()).collect();
        assert_eq!(names, ["five", "ten", "twenty", "thirty", "forty"]);
        // Text keys (and any other type) go through Arrow's sort, missing keys last.
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), None, Some("a")]));
        let (order, ids) = frame_order(&text).unwrap();
        assert_eq!(order, [2, 0, 1]);
        assert_eq!(ids, Ids::from(vec!["a", "b", ""]));
        // Parquet text reads as string views.
        let views: ArrayRef = Arc::new(datafusion::arrow::array::StringViewArray::from(vec![
            "C2", "C10", "C1",
        ]));
        assert_eq!(
            frame_order(&views).unwrap().1,
            Ids::from(vec!["C1", "C10", "C2"])
        );
        let dates: ArrayRef = Arc::new(datafusion::arrow::array::Date32Array::from(vec![1, 0]));
        assert_eq!(
            frame_order(&dates).unwrap().1,
            Ids::from(vec!["1970-01-01", "1970-01-02"])
        );
        let none: ArrayRef = Arc::new(Int64Array::from(Vec::<i64>::new()));
        assert!(frame_order(&none).unwrap().0.is_empty());
    }

    #[test]
    fn numbers_are_gathered_into_frame_order_together() {
        use datafusion::arrow::array::Float64Array;
        let revenue: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(3.0),
            None,
            Some(1.123_456_7),
            Some(f64::NAN),
        ]));
        let rate: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.5),
            Some(f64::INFINITY),
            Some(0.25),
            Some(1.0),
        ]));
        let columns = numbers_in_order(vec![revenue, rate.clone()], &[2, 0, 3, 1]);
        assert_eq!(
            columns,
            [
                vec![Some(1.123_457), Some(3.0), None, None],
                vec![Some(0.25), Some(0.5), Some(1.0), None],
            ]
        );
        assert!(numbers_in_order(Vec::new(), &[1, 0]).is_empty());
        let empty: ArrayRef = Arc::new(Float64Array::from(Vec::<f64>::new()));
        assert_eq!(
            numbers_in_order(vec![empty], &[]),
            [Vec::<Option<f64>>::new()]
        );
    }

    #[test]
    fn partial_aggregation_is_skipped_for_many_customers_with_few_rows_each() {
        // The benchmark's shape: a million customers, twenty transactions each.
        assert!(skips_partial_aggregation(1_000_000, 20_000_000));
        assert!(skips_partial_aggregation(100_000, 6_399_999));
        // Many rows per customer: partial aggregation shrinks the rows a lot.
        assert!(!skips_partial_aggregation(100_000, 6_400_000));
        // Few customers: one hash table per partition is small anyway.
        assert!(!skips_partial_aggregation(99_999, 100_000));
        assert!(!skips_partial_aggregation(0, 0));
    }
}
