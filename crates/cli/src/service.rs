//! Service commands: `serve` (the REST API), `user`, `key` and `sla`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use stratum_core::{Call, fmt_num};

use stratum_store::Store;

use crate::Settings;

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Serve the REST API (see docs/API.md); every route but /health needs an API key
    Serve(ServeArgs),
    /// API users and their roles (admin, analyst, agent, service)
    #[command(subcommand)]
    User(UserCommand),
    /// API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Share of calls answered within each level's target, from a call-centre log (CSV with
    /// customer_id, queued_at, answered_at; an empty answered_at is an abandoned call)
    Sla { calls: PathBuf },
}

/// `stratum serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds a client has to send a request's headers (also an idle connection's next
    /// request) before the connection is closed
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Seconds a request may take before it is answered 503 (runs excepted)
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Seconds a simulation or recomputed explanation may evaluate before it is stopped
    #[arg(long, default_value_t = 50, value_name = "SECONDS")]
    pub evaluation_timeout: u64,
    /// Memory (MiB) the query engine may hold during a simulation or recomputed
    /// explanation
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub evaluation_memory: usize,
    /// Connections served at once; more wait in the listen backlog
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Minutes a console session may stay unused before it has to sign in again
    #[arg(long, default_value_t = 30, value_name = "MINUTES")]
    pub session_idle: u64,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    Add {
        name: String,
        /// admin, analyst, agent or service
        #[arg(long)]
        role: stratum_store::Role,
        /// Also set a console password, read from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's console password (asked for on a terminal, else the first line of
    /// standard input); signs the user's browsers out
    Passwd {
        name: String,
    },
    List,
    /// Disable a user: none of its keys is accepted any more
    Disable {
        name: String,
    },
    /// Enable a disabled user again: its keys that were not revoked work again
    Enable {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key for a user and print it (shown once; only its hash is kept)
    Create { user: String },
    /// Revoke a key by its id (the part after `stk_`, before the next `_`)
    Revoke { id: String },
    /// The keys: id, user, who made it and when, whether it works
    List,
}

/// A new console password, hashed: asked for twice on a terminal (not echoed), else the
/// first line of standard input.
fn password_hash(ask: bool) -> Result<String> {
    let password = if ask {
        let first = rpassword::prompt_password("new password: ")?;
        let second = rpassword::prompt_password("again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    stratum_server::hash_password(&password).map_err(anyhow::Error::msg)
}

fn load(settings: &Settings) -> Result<stratum_runner::LoadedPolicy> {
    let path = settings.policy_path(None);
    Ok(stratum_runner::load_policy(&path)?)
}

pub async fn run(settings: &Settings, cmd: &ServiceCommand) -> Result<ExitCode> {
    let store = settings.open_store().await?;
    match cmd {
        ServiceCommand::Serve(args) => serve(settings, &store, args).await?,
        ServiceCommand::User(cmd) => users(settings, &store, cmd).await?,
        ServiceCommand::Key(cmd) => keys(settings, &store, cmd).await?,
        ServiceCommand::Sla { calls } => sla(settings, &store, calls).await?,
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: &Settings, store: &Store, args: &ServeArgs) -> Result<()> {
    let ServeArgs {
        listen,
        header_timeout,
        request_timeout,
        evaluation_timeout,
        evaluation_memory,
        max_connections,
        session_idle,
    } = args;
    let policy = load(settings)?;
    eprintln!(
        "stratum: serving {} on http://{listen} (history: {})",
        policy.path.display(),
        store.url()
    );
    let seconds = std::time::Duration::from_secs;
    let limits = stratum_server::Limits {
        header_read_timeout: seconds(*header_timeout),
        request_timeout: seconds(*request_timeout),
        evaluation_timeout: seconds(*evaluation_timeout),
        max_connections: *max_connections,
        evaluation_memory: evaluation_memory << 20,
        session_idle: seconds(session_idle * 60),
    };
    let state = stratum_server::AppState::new(store.clone(), policy).with_limits(limits);
    stratum_server::serve(state, *listen)
        .await
        .with_context(|| format!("cannot serve on {listen}"))?;
    Ok(())
}

async fn sla(settings: &Settings, store: &Store, calls: &std::path::Path) -> Result<()> {
    let policy = load(settings)?;
    let Some(service) = policy.policy.service.as_ref() else {
        bail!(
            "{}: the policy has no [service] section",
            policy.path.display()
        );
    };
    let name = policy.policy.history_name();
    let Some(run) = store.latest_run_id(name).await? else {
        bail!("no run of `{name}` recorded yet: run `stratum run` first");
    };
    let mut reader = csv::Reader::from_path(calls)
        .with_context(|| format!("cannot read {}", calls.display()))?;
    let mut parsed = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{}:{line}", calls.display()))?;
        let field = |n: usize, name: &str| -> Result<String> {
            rec.get(n)
                .map(|s| s.trim().to_string())
                .with_context(|| format!("{}:{line}: missing column `{name}`", calls.display()))
        };
        // RFC 3339 with its offset, or a local time as sources write them, in the
        // service's time zone.
        let time = |text: &str, name: &str| -> Result<DateTime<Utc>> {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                return Ok(t.with_timezone(&Utc));
            }
            stratum_engine::load::parse_timestamp(text)
                .and_then(|naive| {
                    use chrono::TimeZone;
                    service.timezone.from_local_datetime(&naive).earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .with_context(|| {
                    format!(
                        "{}:{line}: column `{name}`: `{text}` is not a time; write e.g. \
                             `2026-11-24 09:00:00` (in {}) or `2026-11-24T09:00:00+08:00`",
                        calls.display(),
                        service.timezone.name()
                    )
                })
        };
        let customer = field(0, "customer_id")?;
        let queued = time(&field(1, "queued_at")?, "queued_at")?;
        let answered = match field(2, "answered_at")?.as_str() {
            "" => None,
            t => Some(time(t, "answered_at")?),
        };
        let levels = store.levels_of(run, &customer).await?;
        if levels.is_empty() {
            unknown.push(customer.clone());
        }
        let level = levels
            .iter()
            .find(|l| l.ladder == service.ladder_name)
            .and_then(|l| service.level_index(&l.level));
        parsed.push(Call {
            customer_id: customer,
            level,
            queued_at: queued,
            answered_at: answered,
        });
    }
    out!(
        "SLA by level of `{}` (run #{run}), {} calls",
        service.ladder_name,
        fmt_num(parsed.len() as f64)
    );
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        let shown: Vec<&str> = unknown.iter().take(5).map(String::as_str).collect();
        out!(
            "  {} customer(s) not in run #{run}, counted under (no level): {}{}",
            fmt_num(unknown.len() as f64),
            shown.join(", "),
            if unknown.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    out!(
        "  {:<12} {:>7} {:>9} {:>9} {:>8} {:>8}  met",
        "level",
        "calls",
        "answered",
        "abandoned",
        "within",
        "target"
    );
    for r in service.sla_report(&parsed) {
        out!(
            "  {:<12} {:>7} {:>9} {:>9} {:>8} {:>8}  {}",
            r.level.as_deref().unwrap_or("(no level)"),
            r.calls,
            r.answered,
            r.abandoned,
            r.share_within_target
                .map(|s| format!("{:.1}%", s * 100.0))
                .unwrap_or_else(|| "-".into()),
            format!("{:.0}% in {}s", r.target_share * 100.0, r.target_seconds),
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
    }
    Ok(())
}

async fn users(settings: &Settings, store: &Store, cmd: &UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            // Read and checked first: a bad password adds no user.
            let hash = if *password_stdin {
                Some(password_hash(false)?)
            } else {
                None
            };
            store.add_user(name, *role, &settings.actor()).await?;
            if let Some(hash) = hash {
                store.set_password(name, &hash, &settings.actor()).await?;
            }
            out!("added user {name} ({role})");
        }
        UserCommand::Passwd { name } => {
            let hash = password_hash(std::io::IsTerminal::is_terminal(&std::io::stdin()))?;
            store.set_password(name, &hash, &settings.actor()).await?;
            out!("password of {name} set; its console sessions are ended");
        }
        UserCommand::Disable { name } => {
            store.disable_user(name, &settings.actor()).await?;
            out!("disabled user {name}");
        }
        UserCommand::Enable { name } => {
            store.enable_user(name, &settings.actor()).await?;
            out!("enabled user {name}: its keys that were not revoked work again");
        }
        UserCommand::List => {
            for u in store.users().await? {
                let state = if u.disabled_at.is_some() {
                    " (disabled)"
                } else {
                    ""
                };
                out!(
                    "{:<20} {:<8} added by {} at {}{state}",
                    u.name,
                    u.role,
                    u.created_by,
                    u.created_at
                );
            }
        }
    }
    Ok(())
}

async fn keys(settings: &Settings, store: &Store, cmd: &KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::List => {
            let keys = store.api_keys().await?;
            if keys.is_empty() {
                out!("no keys (create one with `stratum key create USER`)");
            }
            for k in keys {
                let state = match (&k.revoked_at, k.user_disabled) {
                    (Some(at), _) => format!("revoked at {at}"),
                    (None, true) => "user disabled".to_string(),
                    (None, false) => "active".to_string(),
                };
                out!(
                    "{:<14} {:<20} made by {} at {}  {state}",
                    k.id,
                    k.user_name,
                    k.created_by,
                    k.created_at
                );
            }
        }
        KeyCommand::Create { user } => {
            let token = stratum_server::create_key(store, user, &settings.actor()).await?;
            out!("{token}");
            eprintln!("stratum: key for {user} created; it is shown only now");
        }
        KeyCommand::Revoke { id } => {
            store.revoke_api_key(id, &settings.actor()).await?;
            out!("revoked key {id}");
        }
    }
    Ok(())
}
