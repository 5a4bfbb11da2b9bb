//! Load generator (a benchmark, not a test): drives POST /orders and GET /orders/{id} against
//! the embedded shop (both services in this process, SQLite, in-process delivery) — or, with
//! `--oms-url`/`--ims-url`, against services running elsewhere (e.g. on DynamoDB + SQS) — and,
//! as the baseline, the same client against a minimal axum JSON endpoint started in the same
//! run. Prints throughput, p50/p99 latency, the ratio to the baseline, and the time from POST
//! to CONFIRMED at a fixed arrival rate.
//!
//!     cargo run --release -p shop-tests --bin loadgen -- --seconds 10 --concurrency 32 --rate 1000

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use shop_tests::client::ShopClient;
use shop_tests::in_process::{Shop, ShopOptions};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Length of each closed-loop phase.
    #[arg(long, env = "LOADGEN_SECONDS", default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients in the closed-loop phases.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Arrival rate (orders/s) of the fixed-rate phase.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 1000)]
    rate: u64,
    /// Drive this OMS instead of starting the embedded shop in-process (needs --ims-url).
    #[arg(long, env = "LOADGEN_OMS_URL", requires = "ims_url")]
    oms_url: Option<String>,
    #[arg(long, env = "LOADGEN_IMS_URL", requires = "oms_url")]
    ims_url: Option<String>,
    /// API key for --oms-url/--ims-url.
    #[arg(long, env = "LOADGEN_API_KEY", default_value = "loadgen")]
    api_key: String,
}

struct Stats {
    name: String,
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        println!(
            "{:<34} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ok {:>7}  errors {}",
            self.name,
            self.throughput(),
            self.latency_us.value_at_quantile(0.50) as f64 / 1000.0,
            self.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
            self.ok,
            self.errors
        );
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

/// `concurrency` workers issue requests back to back for `length`.
async fn closed_loop<F, Fut>(name: &str, concurrency: usize, length: Duration, request: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (request, counter) = (request.clone(), counter.clone());
            tokio::spawn(async move {
                let (mut hist, mut ok, mut errors) = (histogram(), 0u64, 0u64);
                while started.elapsed() < length {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    if request(n).await {
                        ok += 1;
                        let _ = hist.record(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (hist, ok, errors)
            })
        })
        .collect();
    let mut stats = Stats { name: name.into(), ok: 0, errors: 0, elapsed: Duration::ZERO, latency_us: histogram() };
    for worker in workers {
        if let Ok((hist, ok, errors)) = worker.await {
            let _ = stats.latency_us.add(&hist);
            stats.ok += ok;
            stats.errors += errors;
        }
    }
    stats.elapsed = started.elapsed();
    stats
}

async fn baseline_server() -> anyhow::Result<String> {
    let router = Router::new().route("/echo", post(|Json(body): Json<Value>| async move { Json(json!({"received": body})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    salve_common::telemetry::install_crypto_provider();
    let args = Args::parse();
    let length = Duration::from_secs(args.seconds);
    let dir = tempfile::tempdir()?;
    let (shop, client, target) = match (&args.oms_url, &args.ims_url) {
        (Some(oms), Some(ims)) => (None, ShopClient::new(oms, ims, &args.api_key), format!("OMS {oms}, IMS {ims}")),
        _ => {
            let shop = Shop::start(dir.path(), ShopOptions::local(&args.api_key)).await?;
            let client = ShopClient::new(&shop.oms_url(), &shop.ims_url(), &args.api_key);
            (Some(shop), client, format!("embedded shop in-process, SQLite in {}", dir.path().display()))
        }
    };
    client.product_with_stock("BENCH", "Benchmark item", 1.0, 1_000_000_000).await?;
    let customer = client.customer("Bench", "bench@example.com").await?;
    let baseline = baseline_server().await?;
    let key = args.api_key.clone();
    println!("loadgen: {} s per phase, {} concurrent clients, fixed rate {} orders/s; {target}", args.seconds, args.concurrency, args.rate);

    let order_body = json!({"customer_id": customer, "items": [{"sku": "BENCH", "quantity": 1}]}).to_string();
    let http = client.http.clone();
    let base = {
        let (http, url, key) = (http.clone(), format!("{baseline}/echo"), key.clone());
        let body = order_body.clone();
        closed_loop("baseline: minimal axum JSON POST", args.concurrency, length, move |_| {
            let request = http.post(&url).header("content-type", "application/json").header("x-api-key", &key).body(body.clone());
            async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await
    };
    base.print();

    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let create = {
        let (http, url, sink, key) = (http.clone(), format!("{}/orders", client.oms), created.clone(), key.clone());
        let body = order_body.clone();
        closed_loop("POST /orders", args.concurrency, length, move |_| {
            let request = http.post(&url).header("content-type", "application/json").header("x-api-key", &key).body(body.clone());
            let sink = sink.clone();
            async move {
                let Ok(response) = request.send().await else { return false };
                if response.status() != 201 {
                    return false;
                }
                let Ok(v) = response.json::<Value>().await else { return false };
                if let Some(id) = v["order_id"].as_str() {
                    sink.lock().await.push(id.to_string());
                }
                true
            }
        })
        .await
    };
    create.print();

    let ids = Arc::new(created.lock().await.clone());
    let read = {
        let (http, oms, ids, key) = (http.clone(), client.oms.clone(), ids.clone(), key.clone());
        closed_loop("GET /orders/{id}", args.concurrency, length, move |n| {
            let id = &ids[n % ids.len().max(1)];
            let request = http.get(format!("{oms}/orders/{id}")).header("x-api-key", &key);
            async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await
    };
    read.print();
    println!(
        "ratio to baseline: POST /orders {:.1}%  GET /orders/{{id}} {:.1}%",
        100.0 * create.throughput() / base.throughput(),
        100.0 * read.throughput() / base.throughput()
    );

    fixed_rate(&client, &order_body, args.rate, length).await;
    if let Some(shop) = shop {
        shop.stop().await;
    }
    Ok(())
}

/// Open loop: one POST every 1/rate s whatever the answers do, latency counted from the
/// scheduled send time (no coordinated omission); then POST -> CONFIRMED per order, from the
/// scheduled send to the order's updated_at (same machine clock).
async fn fixed_rate(client: &ShopClient, body: &str, rate: u64, length: Duration) {
    let total = rate * length.as_secs();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let sent_at = chrono::Utc::now();
        let request = client
            .http
            .post(format!("{}/orders", client.oms))
            .header("content-type", "application/json")
            .header("x-api-key", &client.key)
            .body(body.to_string());
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.ok()?;
            let latency = scheduled.elapsed();
            let v: Value = response.json().await.ok()?;
            Some((v["order_id"].as_str()?.to_string(), sent_at, latency))
        }));
    }
    let mut latency = histogram();
    let mut placed = Vec::new();
    for t in tasks {
        if let Ok(Some((id, sent_at, l))) = t.await {
            let _ = latency.record(l.as_micros() as u64);
            placed.push((id, sent_at));
        }
    }
    let achieved = placed.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "fixed rate {rate}/s: achieved {achieved:.0}/s  POST /orders p50 {:.2} ms  p99 {:.2} ms  ({} of {total} placed)",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        placed.len()
    );
    let mut confirm = histogram();
    for (id, sent_at) in &placed {
        if let Ok(order) = client.settled(id, Duration::from_secs(60)).await
            && let Some(updated) = order["updated_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            let us = (updated.with_timezone(&chrono::Utc) - *sent_at).num_microseconds().unwrap_or(0).max(1);
            let _ = confirm.record(us as u64);
        }
    }
    println!(
        "POST -> CONFIRMED at {rate}/s: p50 {:.2} ms  p99 {:.2} ms  ({} orders)",
        confirm.value_at_quantile(0.5) as f64 / 1000.0,
        confirm.value_at_quantile(0.99) as f64 / 1000.0,
        confirm.len()
    );
}
