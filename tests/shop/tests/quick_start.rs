//! The quick-start `shop` binary, run as a user runs it: with settings files for its fault
//! switches, restarted on the same data, its logs sent to a file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use shop_tests::processes::free_port;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Only a guard against a binary that never comes up, so that the test fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(60);

struct Running {
    child: Child,
    /// The sample customer the binary printed in its curl line.
    printed: String,
}

async fn start(dir: &Path, oms_port: u16, ims_port: u16, run: usize) -> Running {
    let stderr = std::fs::File::create(dir.join(format!("shop-{run}.log"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--oms-listen", &format!("127.0.0.1:{oms_port}"), "--ims-listen", &format!("127.0.0.1:{ims_port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--oms-settings-file")
        .arg(dir.join("oms.toml"))
        // The environment works as well as the flag.
        .env("IMS_SETTINGS_FILE", dir.join("ims.toml"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let ready = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("\"customer_id\":\"").nth(1) {
                printed = rest.split('"').next().unwrap_or_default().to_string();
            }
            if line.contains("Ctrl-C stops both") {
                return;
            }
        }
        panic!(
            "shop exited before it was ready; log: {}",
            std::fs::read_to_string(dir.join(format!("shop-{run}.log"))).unwrap_or_default()
        );
    };
    tokio::time::timeout(HANG_GUARD, ready).await.expect("shop did not start");
    Running { child, printed }
}

async fn stop(mut running: Running) {
    let pid = running.child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    assert!(running.child.wait().await.unwrap().success(), "shop exits cleanly on SIGTERM");
}

fn customers_in(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("data/oms/oms.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0)).unwrap()
}

async fn get(client: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    let response = client.get(url).header("x-api-key", "dev-key").send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn shop_takes_settings_files_keeps_its_data_across_restarts_and_logs_plain_text_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oms.toml"), "[faults.routes.\"GET /orders/{id}\"]\nerror_rate = 1.0\n").unwrap();
    std::fs::write(dir.path().join("ims.toml"), "[faults.routes.\"GET /products/{sku}\"]\nerror_rate = 1.0\n").unwrap();
    let (oms_port, ims_port) = (free_port(), free_port());
    let (oms, ims) = (format!("http://127.0.0.1:{oms_port}"), format!("http://127.0.0.1:{ims_port}"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let first = start(dir.path(), oms_port, ims_port, 1).await;
    // The fault switches of both settings files are in force.
    let (status, body) = get(&client, format!("{oms}/orders/any")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (500, Some("injected_fault")));
    let (status, body) = get(&client, format!("{ims}/products/KETTLE")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (500, Some("injected_fault")));
    // What a user does between runs: sell the kettles.
    let sold = client.put(format!("{ims}/inventory/KETTLE")).header("x-api-key", "dev-key").json(&serde_json::json!({"quantity": 0}));
    assert_eq!(sold.send().await.unwrap().status(), 200);
    let customer = first.printed.clone();
    stop(first).await;
    let seeded = customers_in(dir.path());
    assert_eq!(seeded, 2, "the sample customers");

    let second = start(dir.path(), oms_port, ims_port, 2).await;
    assert_eq!(second.printed, customer, "the same sample customer is offered again");
    let (status, kettle) = get(&client, format!("{ims}/inventory/KETTLE")).await;
    assert_eq!((status, &kettle["quantity"]), (200, &serde_json::json!(0)), "a restart does not restock");
    let (status, _) = get(&client, format!("{oms}/customers/{customer}")).await;
    assert_eq!(status, 200, "the printed customer exists");
    stop(second).await;
    assert_eq!(customers_in(dir.path()), seeded, "a restart adds no customers");

    for run in [1, 2] {
        let log = std::fs::read_to_string(dir.path().join(format!("shop-{run}.log"))).unwrap();
        assert!(log.contains("WARN"), "run {run} logged (the default API key warning): {log:?}");
        assert!(!log.contains('\u{1b}'), "run {run} wrote terminal colour codes to a file: {log:?}");
    }
}
