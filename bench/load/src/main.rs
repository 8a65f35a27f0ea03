//! # stratum-load
//!
//! The load client of the API benchmark (`bench/serve.py`). No HTTP benchmarking tool ships
//! with the machine image (wrk, oha), so this is one: keep-alive HTTP/1.1 connections on one
//! thread by default (so the server under test keeps the other core), each sending one
//! request at a time.
//!
//! Two modes:
//! - closed loop (default): every connection sends its next request as soon as the previous
//!   answer arrives; measures the highest throughput and the latency at that load;
//! - fixed rate (`--rate N`): requests are due on a schedule of N per second in total, and
//!   each latency is measured from when the request was *due*, not when it was sent, so a
//!   server that falls behind shows it (no coordinated omission).
//!
//! Prints one JSON object: requests, errors, HTTP statuses, throughput and latency
//! percentiles in milliseconds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
#[command(about = "HTTP load client for the Stratum API benchmark")]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// API key sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "STRATUM_API_KEY")]
    key: String,
    /// What each request does.
    #[arg(long, value_enum, default_value = "lookup")]
    mode: Mode,
    /// Customer ids are drawn uniformly from ID_FROM..=ID_TO.
    #[arg(long, default_value_t = 1)]
    id_from: u64,
    #[arg(long, default_value_t = 1_000_000)]
    id_to: u64,
    /// Benefit redeemed in `redeem` mode.
    #[arg(long, default_value = "lounge")]
    benefit: String,
    /// Open connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per second in total (fixed-rate mode); 0: closed loop.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds of measured load, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unmeasured load first.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Client threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the customer-id draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `GET /api/customers/{id}/levels`: the tier lookup.
    Lookup,
    /// `GET /api/customers/{id}`: the customer card (levels, owner, tags, benefits with usage).
    Card,
    /// `POST /api/customers/{id}/redemptions`: redeem one unit of `--benefit`.
    Redeem,
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    /// From when each request was due (fixed rate) or sent (closed loop).
    latencies_us: Vec<u32>,
    /// From when each request was sent: the server's answer time alone.
    service_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    first_error: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.id_from > args.id_to {
        bail!("--id-from must not exceed --id-to");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = runtime.block_on(drive(args))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn drive(args: Args) -> Result<serde_json::Value> {
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            connection(&args, c, start, measure_from, stop).await
        }));
    }
    let mut all = Tally::default();
    for t in tasks {
        let tally = t.await??;
        all.latencies_us.extend(tally.latencies_us);
        all.service_us.extend(tally.service_us);
        for (s, n) in tally.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.errors += tally.errors;
        all.first_error = all.first_error.or(tally.first_error);
    }
    let mut lat = all.latencies_us;
    lat.sort_unstable();
    let mut service = all.service_us;
    service.sort_unstable();
    let percentile = |sorted: &[u32], p: f64| -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i] as f64 / 1000.0
    };
    let pct = |p: f64| percentile(&lat, p);
    let n = lat.len() as f64;
    Ok(serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections,
        "rate": if args.rate == 0 { serde_json::Value::from("closed loop") } else { args.rate.into() },
        "duration_s": args.duration,
        "requests": lat.len(),
        "requests_per_s": n / args.duration,
        "statuses": all.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "errors": all.errors,
        "first_error": all.first_error,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
        // Fixed rate: the percentiles above count from when each request was due, so they
        // include the client's own lateness (tokio's timer has 1 ms granularity); these
        // count from when it was sent.
        "sent_p50_ms": percentile(&service, 0.50),
        "sent_p99_ms": percentile(&service, 0.99),
    }))
}

async fn connection(
    args: &Args,
    index: usize,
    start: Instant,
    measure_from: Instant,
    stop: Instant,
) -> Result<Tally> {
    let stream = TcpStream::connect(args.addr)
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_mul(1_000_003) + index as u64);
    let bearer = format!("Bearer {}", args.key);
    let host = args.addr.to_string();
    let redeem_body = Bytes::from(format!(r#"{{"benefit":"{}"}}"#, args.benefit));
    // Fixed rate: this connection's share of the schedule, staggered across connections.
    let interval = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.connections as f64 / args.rate as f64));
    let mut due = start
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / args.connections as f64)
        });
    let mut tally = Tally::default();
    tokio::time::sleep_until(start.into()).await;
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        let sent_at = match interval {
            Some(i) => {
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                }
                let d = due;
                due += i;
                d
            }
            None => now,
        };
        if sent_at >= stop {
            break;
        }
        let id = rng.random_range(args.id_from..=args.id_to);
        let (method, path, body) = match args.mode {
            Mode::Lookup => (
                Method::GET,
                format!("/api/customers/{id}/levels"),
                Bytes::new(),
            ),
            Mode::Card => (Method::GET, format!("/api/customers/{id}"), Bytes::new()),
            Mode::Redeem => (
                Method::POST,
                format!("/api/customers/{id}/redemptions"),
                redeem_body.clone(),
            ),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &host)
            .header("authorization", &bearer);
        if args.mode == Mode::Redeem {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(body))?;
        let sent = Instant::now();
        let outcome = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            Ok::<u16, hyper::Error>(status)
        }
        .await;
        let done = Instant::now();
        let measured = sent_at >= measure_from;
        match outcome {
            Ok(status) => {
                if measured {
                    let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                    tally.latencies_us.push(us(done - sent_at));
                    tally.service_us.push(us(done - sent));
                    *tally.statuses.entry(status).or_default() += 1;
                }
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| e.to_string());
                break; // the connection is gone
            }
        }
    }
    Ok(tally)
}
