//! Load generator (a benchmark, not a test). It drives services running in OTHER processes —
//! `tests/bench.sh` starts them and pins them to other cores — so the client never competes
//! with the server for a runtime:
//!
//! 1. the baseline (`baseline` binary: bare axum doing the same JSON work as create-order) and
//!    the shop's `POST /orders`, closed loop, with the same mixed order bodies (several lines,
//!    many SKUs, a share of orders on one hot SKU); then `GET /orders/{id}` on both;
//! 2. `POST /orders` at a fixed arrival rate (open loop: latency from the scheduled send time,
//!    so a stall is charged to every request it delays), and POST -> CONFIRMED from the
//!    scheduled send time to the order's `updated_at` (same machine clock).
//!
//! Every response body is read. With `--server-pid`/`--baseline-pid` it also prints the
//! context switches of those processes per request (all their threads, from /proc).
//!
//!     cargo run --release -p shop-tests --bin loadgen -- --help

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use shop_tests::client::ShopClient;

#[derive(Parser)]
struct Args {
    /// The OMS to drive.
    #[arg(long, env = "LOADGEN_OMS_URL")]
    oms_url: String,
    /// Its IMS (products and stock are created there).
    #[arg(long, env = "LOADGEN_IMS_URL")]
    ims_url: String,
    /// The baseline server (`baseline` binary); without it no ratio is printed.
    #[arg(long, env = "LOADGEN_BASELINE_URL")]
    baseline_url: Option<String>,
    #[arg(long, env = "LOADGEN_API_KEY", default_value = "loadgen")]
    api_key: String,
    /// Length of each phase.
    #[arg(long, env = "LOADGEN_SECONDS", default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients in the closed-loop phases.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Arrival rate (orders/s) of the fixed-rate phase; 0 skips it.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 1000)]
    rate: u64,
    /// Distinct ordinary SKUs the orders draw from.
    #[arg(long, env = "LOADGEN_SKUS", default_value_t = 1000)]
    skus: usize,
    /// Lines per order: uniformly 1..=this, each a different SKU.
    #[arg(long, env = "LOADGEN_MAX_LINES", default_value_t = 5)]
    max_lines: usize,
    /// Share of orders (0..=1) that include the one hot SKU (contended stock row).
    #[arg(long, env = "LOADGEN_HOT_SHARE", default_value_t = 0.2)]
    hot_share: f64,
    /// Process id of the shop, for its context switches per request.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Process id of the baseline server.
    #[arg(long)]
    baseline_pid: Option<u32>,
}

const HOT_SKU: &str = "HOT-0";
/// Enough stock that no order is refused: the benchmark measures the confirm path.
const STOCK: i64 = 1_000_000_000;
/// Distinct request bodies, generated before any clock starts and cycled through.
const BODIES: usize = 4096;

/// A minimal HTTP/1.1 client: keep-alive connections in a pool, one request at a time on
/// each, the whole body read. Lighter than a general-purpose client so the load generator
/// is not what limits the baseline.
#[derive(Clone)]
struct Http {
    authority: String,
    key: String,
    idle: Arc<std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

impl Http {
    fn new(base: &str, key: &str) -> anyhow::Result<Http> {
        let authority = base.strip_prefix("http://").with_context(|| format!("{base}: only http:// URLs"))?.trim_end_matches('/');
        Ok(Http { authority: authority.to_string(), key: key.to_string(), idle: Arc::default() })
    }

    async fn connection(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                None => break,
            }
        }
        let tcp = tokio::net::TcpStream::connect(&self.authority).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Sends and reads the whole answer.
    async fn send(&self, method: Method, path: &str, body: Option<Bytes>) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut sender = self.connection().await?;
        let mut request = Request::builder().method(method).uri(path).header("host", &self.authority).header("x-api-key", &self.key);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let response = sender.send_request(request.body(Full::new(body.unwrap_or_default()))?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
        Ok((status, bytes))
    }
}

#[derive(Deserialize)]
struct Created {
    order_id: String,
}

struct Stats {
    name: String,
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    /// Context switches of the serving process during the phase, when known.
    switches: Option<u64>,
    /// CPU time the serving process spent during the phase (and the saga it caused), when known.
    cpu: Option<Duration>,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn per_request(&self) -> String {
        match self.switches {
            Some(n) if self.ok > 0 => format!("{:.1}", n as f64 / self.ok as f64),
            _ => "n/a".into(),
        }
    }

    /// Server CPU time per request, in µs. Other tenants of a shared machine move it less than
    /// throughput (they take time from the core, not from each request), so builds compare by it.
    fn cpu_us_per_request(&self) -> Option<f64> {
        self.cpu.filter(|cpu| self.ok > 0 && !cpu.is_zero()).map(|cpu| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }

    fn cpu_per_request(&self) -> String {
        self.cpu_us_per_request().map_or("n/a".into(), |us| format!("{us:.1}"))
    }

    fn print(&self) {
        println!(
            "{:<40} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ok {:>7}  errors {:>4}  ctx-switches/req {}  cpu-us/req {}",
            self.name,
            self.throughput(),
            self.latency_us.value_at_quantile(0.50) as f64 / 1000.0,
            self.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
            self.ok,
            self.errors,
            self.per_request(),
            self.cpu_per_request(),
        );
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds")
}

/// Voluntary + involuntary context switches of every live thread of `pid` (from /proc).
fn context_switches(pid: Option<u32>) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pid?)).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may end between listing and reading; it simply no longer counts.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("voluntary_ctxt_switches:").or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:")) {
                total += rest.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// User + system CPU time of `pid` so far (all its threads), from /proc/<pid>/stat.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces; utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // In clock ticks of sysconf(_SC_CLK_TCK) (proc_pid_stat(5)): USER_HZ, 100 on Linux's x86 and
    // arm64 ABIs whatever the kernel's own HZ.
    Some(Duration::from_millis(ticks * 10))
}

type Requester = Arc<dyn Fn(usize) -> futures::future::BoxFuture<'static, Option<Bytes>> + Send + Sync>;

/// `concurrency` workers issue requests back to back for `length`; `request(n)` answers the
/// body of a successful response.
async fn closed_loop(name: &str, concurrency: usize, length: Duration, request: Requester, keep: bool) -> (Stats, Vec<Bytes>) {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (request, counter) = (request.clone(), counter.clone());
            tokio::spawn(async move {
                let (mut hist, mut ok, mut errors, mut kept) = (histogram(), 0u64, 0u64, Vec::new());
                while started.elapsed() < length {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    match request(n).await {
                        Some(body) => {
                            ok += 1;
                            let _ = hist.record(t.elapsed().as_micros() as u64);
                            if keep {
                                kept.push(body);
                            }
                        }
                        None => errors += 1,
                    }
                }
                (hist, ok, errors, kept)
            })
        })
        .collect();
    let mut stats =
        Stats { name: name.into(), ok: 0, errors: 0, elapsed: Duration::ZERO, latency_us: histogram(), switches: None, cpu: None };
    let mut bodies = Vec::new();
    for worker in workers {
        if let Ok((hist, ok, errors, kept)) = worker.await {
            let _ = stats.latency_us.add(&hist);
            stats.ok += ok;
            stats.errors += errors;
            bodies.extend(kept);
        }
    }
    stats.elapsed = started.elapsed();
    (stats, bodies)
}

/// POSTs `bodies[n % len]` to `path`; a 201 counts, with its body parsed as the shop's answer.
fn poster(http: &Http, path: &str, bodies: &Arc<Vec<Bytes>>) -> Requester {
    let (http, path, bodies) = (http.clone(), path.to_string(), bodies.clone());
    Arc::new(move |n| {
        let (http, path, body) = (http.clone(), path.clone(), bodies[n % bodies.len()].clone());
        Box::pin(async move {
            let (status, answer) = http.send(Method::POST, &path, Some(body)).await.ok()?;
            // Parsed, as a real client would, on both servers alike.
            serde_json::from_slice::<Created>(&answer).ok().filter(|_| status == StatusCode::CREATED)?;
            Some(answer)
        })
    })
}

/// GETs `/orders/{id}` cycling through `ids`; the order is parsed.
fn getter(http: &Http, ids: &Arc<Vec<String>>) -> Requester {
    let (http, ids) = (http.clone(), ids.clone());
    Arc::new(move |n| {
        let (http, path) = (http.clone(), format!("/orders/{}", ids[n % ids.len().max(1)]));
        Box::pin(async move {
            let (status, answer) = http.send(Method::GET, &path, None).await.ok()?;
            serde_json::from_slice::<Value>(&answer).ok().filter(|_| status == StatusCode::OK)?;
            Some(Bytes::new())
        })
    })
}

/// Runs a closed-loop phase and counts `pid`'s context switches over it, plus `settle` (the
/// background work the phase caused, e.g. the saga of the orders it placed).
async fn measured<S: std::future::Future<Output = ()>>(
    name: &str,
    args: &Args,
    pid: Option<u32>,
    request: Requester,
    keep: bool,
    settle: impl FnOnce() -> S,
) -> (Stats, Vec<Bytes>) {
    let (before, cpu_before) = (context_switches(pid), cpu_time(pid));
    let (mut stats, kept) = closed_loop(name, args.concurrency, Duration::from_secs(args.seconds), request, keep).await;
    settle().await;
    stats.switches = context_switches(pid).zip(before).map(|(after, before)| after.saturating_sub(before));
    stats.cpu = cpu_time(pid).zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    stats.print();
    (stats, kept)
}

/// Random orders: 1..=max_lines lines of distinct SKUs, the hot SKU in `hot_share` of them.
fn order_bodies(customers: &[String], args: &Args) -> Vec<Bytes> {
    let mut rng = rand::rng();
    (0..BODIES)
        .map(|_| {
            let lines = rng.random_range(1..=args.max_lines.max(1));
            let mut skus = HashSet::new();
            if rng.random_bool(args.hot_share.clamp(0.0, 1.0)) {
                skus.insert(HOT_SKU.to_string());
            }
            while skus.len() < lines.min(args.skus + 1) {
                skus.insert(sku(rng.random_range(0..args.skus.max(1))));
            }
            let items: Vec<Value> = skus.into_iter().map(|s| json!({"sku": s, "quantity": rng.random_range(1..=3)})).collect();
            let customer = customers.choose(&mut rng).cloned().unwrap_or_default();
            Bytes::from(json!({"customer_id": customer, "items": items}).to_string())
        })
        .collect()
}

fn sku(i: usize) -> String {
    format!("SKU-{i:05}")
}

/// Products (all SKUs plus the hot one, with ample stock) and a few customers.
async fn setup(client: &ShopClient, args: &Args) -> anyhow::Result<Vec<String>> {
    let skus: Vec<String> = std::iter::once(HOT_SKU.to_string()).chain((0..args.skus).map(sku)).collect();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(skus.iter().enumerate())
        .map(|(i, s)| async move { client.product_with_stock(s, &format!("Product {s}"), 1.0 + (i % 50) as f64 / 4.0, STOCK).await })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let mut customers = Vec::new();
    for i in 0..20 {
        customers.push(client.customer(&format!("Bench {i}"), &format!("bench{i}@example.com")).await?);
    }
    Ok(customers)
}

/// Until both outboxes are empty: every message the load caused has been delivered and
/// handled. OMS first: while its outbox is not empty, IMS may still get work.
async fn drained(client: &ShopClient, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let mut empty = true;
        for base in [&client.oms, &client.ims] {
            let depth = match client.http.get(format!("{base}/readyz")).send().await {
                Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["outbox_depth"].as_i64()),
                Err(_) => None,
            };
            empty &= depth == Some(0);
        }
        if empty {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salve_common::telemetry::install_crypto_provider();
    let args = Args::parse();
    let client = ShopClient::new(&args.oms_url, &args.ims_url, &args.api_key);
    let setup_started = Instant::now();
    let customers = setup(&client, &args).await?;
    let bodies = Arc::new(order_bodies(&customers, &args));
    let lines: usize =
        bodies.iter().filter_map(|b| serde_json::from_slice::<Value>(b).ok()).map(|v| v["items"].as_array().map_or(0, Vec::len)).sum();
    println!(
        "loadgen: {} s per phase, {} concurrent clients, fixed rate {}/s; orders of 1..={} lines (mean {:.1}) over {} SKUs, {:.0}% with the hot SKU; setup {:.1} s",
        args.seconds,
        args.concurrency,
        args.rate,
        args.max_lines,
        lines as f64 / bodies.len() as f64,
        args.skus,
        args.hot_share * 100.0,
        setup_started.elapsed().as_secs_f64()
    );
    let oms = Http::new(&args.oms_url, &args.api_key)?;
    let baseline = args.baseline_url.as_deref().map(|url| Http::new(url, &args.api_key)).transpose()?;

    let base_post = match &baseline {
        Some(http) => Some(
            measured("baseline: POST /orders (bare axum)", &args, args.baseline_pid, poster(http, "/orders", &bodies), false, || async {})
                .await
                .0,
        ),
        None => None,
    };
    let (create, answers) = measured("POST /orders", &args, args.server_pid, poster(&oms, "/orders", &bodies), true, || async {
        if !drained(&client, Duration::from_secs(120)).await {
            println!("  (the outboxes did not drain within 120 s)");
        }
    })
    .await;
    let ids: Arc<Vec<String>> =
        Arc::new(answers.iter().filter_map(|b| serde_json::from_slice::<Created>(b).ok()).map(|c| c.order_id).collect());
    if ids.is_empty() {
        bail!("no order was placed");
    }
    let base_get = match &baseline {
        Some(http) => Some(
            measured("baseline: GET /orders/{id} (bare axum)", &args, args.baseline_pid, getter(http, &ids), false, || async {}).await.0,
        ),
        None => None,
    };
    let (read, _) = measured("GET /orders/{id}", &args, args.server_pid, getter(&oms, &ids), false, || async {}).await;
    if let (Some(bp), Some(bg)) = (&base_post, &base_get) {
        println!(
            "ratio to baseline: POST /orders {:.1}%  GET /orders/{{id}} {:.1}%   (context switches per request: POST {} vs {}, GET {} vs {})",
            100.0 * create.throughput() / bp.throughput(),
            100.0 * read.throughput() / bg.throughput(),
            create.per_request(),
            bp.per_request(),
            read.per_request(),
            bg.per_request(),
        );
        // The same comparison by server CPU time per request, which noise on a shared machine
        // moves far less than throughput.
        let cpu_ratio = |shop: &Stats, base: &Stats| match (shop.cpu_us_per_request(), base.cpu_us_per_request()) {
            (Some(s), Some(b)) => format!("{:.1}%", 100.0 * b / s),
            _ => "n/a".into(),
        };
        println!(
            "ratio to baseline by CPU per request: POST /orders {}  GET /orders/{{id}} {}   (cpu-us/req: POST {} vs {}, GET {} vs {})",
            cpu_ratio(&create, bp),
            cpu_ratio(&read, bg),
            create.cpu_per_request(),
            bp.cpu_per_request(),
            read.cpu_per_request(),
            bg.cpu_per_request(),
        );
    }
    if args.rate > 0 {
        fixed_rate(&client, &oms, &bodies, &args).await;
    }
    Ok(())
}

/// Open loop: one POST every 1/rate s whatever the answers do; latency counted from the
/// scheduled send time (no coordinated omission). Then POST -> CONFIRMED per order, from the
/// scheduled send time to the order's updated_at.
async fn fixed_rate(client: &ShopClient, oms: &Http, bodies: &Arc<Vec<Bytes>>, args: &Args) {
    let rate = args.rate;
    let total = rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let before = context_switches(args.server_pid);
    let (started, started_wall) = (tokio::time::Instant::now(), chrono::Utc::now());
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let offset = interval.mul_f64(i as f64);
        let scheduled = started + offset;
        tokio::time::sleep_until(scheduled).await;
        let scheduled_wall = started_wall + chrono::Duration::from_std(offset).unwrap_or_default();
        let (oms, body) = (oms.clone(), bodies[i as usize % bodies.len()].clone());
        tasks.push(tokio::spawn(async move {
            let (status, answer) = oms.send(Method::POST, "/orders", Some(body)).await.ok()?;
            let latency = scheduled.elapsed();
            let created: Created = serde_json::from_slice(&answer).ok().filter(|_| status == StatusCode::CREATED)?;
            Some((created.order_id, scheduled_wall, latency))
        }));
    }
    let mut latency = histogram();
    let mut placed = Vec::new();
    for t in tasks {
        if let Ok(Some((id, scheduled_wall, l))) = t.await {
            let _ = latency.record(l.as_micros() as u64);
            placed.push((id, scheduled_wall));
        }
    }
    let achieved = placed.len() as f64 / started.elapsed().as_secs_f64();
    let drained_in_time = drained(client, Duration::from_secs(120)).await;
    let switches = context_switches(args.server_pid).zip(before).map(|(a, b)| a.saturating_sub(b));
    println!(
        "fixed rate {rate}/s: achieved {achieved:.0}/s  POST /orders p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} of {total} placed)  ctx-switches/order {}",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
        placed.len(),
        switches.filter(|_| !placed.is_empty()).map_or("n/a".into(), |n| format!("{:.1}", n as f64 / placed.len() as f64)),
    );
    if !drained_in_time {
        println!("  (the outboxes did not drain within 120 s)");
    }
    let confirmed: Vec<Option<u64>> = futures::stream::iter(placed.iter())
        .map(|(id, scheduled_wall)| async move {
            let order = client.settled(id, Duration::from_secs(60)).await.ok()?;
            if order["status"] != "CONFIRMED" {
                return None;
            }
            let updated = chrono::DateTime::parse_from_rfc3339(order["updated_at"].as_str()?).ok()?;
            let us = (updated.with_timezone(&chrono::Utc) - *scheduled_wall).num_microseconds()?;
            Some(us.max(1) as u64)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut confirm = histogram();
    for us in confirmed.iter().flatten() {
        let _ = confirm.record(*us);
    }
    println!(
        "POST -> CONFIRMED at {rate}/s: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} of {} confirmed)",
        confirm.value_at_quantile(0.5) as f64 / 1000.0,
        confirm.value_at_quantile(0.99) as f64 / 1000.0,
        confirm.max() as f64 / 1000.0,
        confirm.len(),
        placed.len()
    );
}
