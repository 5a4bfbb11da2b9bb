//! OMS and IMS as processes on DynamoDB + SQS, against the moto server that tests/run.sh
//! starts (real AWS wire protocols; moto is the emulator, not a fake in our code).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use reqwest::{Method, StatusCode};
use salve_common::aws::dynamo::{DynamoOutbox, outbox_put, transact};
use salve_common::messages::{Envelope, Message};
use salve_common::messaging::outbox::{Outbox, OutboxStore};
use salve_common::messaging::relay::Relay;
use salve_common::messaging::sink::{DeliveryError, MessageSink, OutgoingMessage};
use salve_common::metrics::Metrics;
use salve_common::time::SystemClock;
use salve_common::trace_context::TraceParent;
use serde_json::{Value, json};
use shop_tests::aws::{AwsNames, sqs};
use shop_tests::client::ShopClient;
use shop_tests::processes::TwoProcesses;

const KEY: &str = "aws-key";
const SETTLE: Duration = Duration::from_secs(60);

async fn start(
    names: &AwsNames,
    dir: &std::path::Path,
    oms_extra: &[(String, String)],
    ims_extra: &[(String, String)],
) -> (TwoProcesses, ShopClient) {
    names.init().unwrap();
    let mut oms_env = names.env("oms");
    oms_env.extend(oms_extra.iter().cloned());
    let mut ims_env = names.env("ims");
    ims_env.extend(ims_extra.iter().cloned());
    let shop = TwoProcesses::start(dir, KEY, &AwsNames::env_refs(&oms_env), &AwsNames::env_refs(&ims_env)).await.unwrap();
    let client = ShopClient::new(&shop.oms.url, &shop.ims.url, KEY);
    (shop, client)
}

async fn wait_for_stock(client: &ShopClient, sku: &str, want: i64) {
    for _ in 0..600 {
        if client.stock(sku).await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stock of {sku} never reached {want}");
}

#[tokio::test]
async fn saga_on_dynamodb_and_sqs_confirms_cancels_releases_and_pages() {
    let (dir, names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    let (_shop, client) = start(&names, dir.path(), &[], &[]).await;
    client.product_with_stock("PEN", "Pen", 1.5, 4).await.unwrap();
    client.product_with_stock("INK", "Ink", 2.0, 1).await.unwrap();
    let customer = client.customer("Ada", "ada@example.com").await.unwrap();

    // Conditional checks on DynamoDB: a second create and a negative stock are refused.
    let (status, _) = client
        .call(Method::POST, &format!("{}/products", client.ims), Some(json!({"sku": "PEN", "name": "Pen", "price": 1})))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) =
        client.call(Method::POST, &format!("{}/inventory/PEN/adjust", client.ims), Some(json!({"delta": -5}))).await.unwrap();
    assert_eq!((status, body["error"]["details"]["available"].as_i64()), (StatusCode::CONFLICT, Some(4)));

    let confirmed = client.order(&customer, &[("PEN", 3), ("INK", 1)]).await.unwrap();
    assert_eq!(client.settled(&confirmed, SETTLE).await.unwrap()["status"], "CONFIRMED");
    // The transaction is cancelled on INK; the reason names the SKU, and PEN is untouched.
    let cancelled = client.order(&customer, &[("PEN", 1), ("INK", 1)]).await.unwrap();
    let order = client.settled(&cancelled, SETTLE).await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert!(order["cancellation_reason"].as_str().unwrap().contains("INK (requested 1, available 0)"), "{order}");
    assert_eq!(client.stock("PEN").await.unwrap(), 1);

    let (status, _) = client.call(Method::DELETE, &format!("{}/orders/{confirmed}", client.oms), None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_for_stock(&client, "PEN", 4).await;
    assert_eq!(client.stock("INK").await.unwrap(), 1);

    // GSI pagination: newest first, opaque tokens, status filter.
    let mut ids = vec![cancelled.clone()];
    for _ in 0..4 {
        let id = client.order(&customer, &[("PEN", 1)]).await.unwrap();
        client.settled(&id, SETTLE).await.unwrap();
        ids.push(id);
    }
    let mut seen = Vec::new();
    let mut url = format!("{}/orders?customer_id={customer}&limit=2", client.oms);
    loop {
        let (_, page) = client.call(Method::GET, &url, None).await.unwrap();
        seen.extend(page["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next_token"].as_str() {
            Some(t) => url = format!("{}/orders?customer_id={customer}&limit=2&next_token={t}", client.oms),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let (_, only_cancelled) =
        client.call(Method::GET, &format!("{}/orders?customer_id={customer}&status=CANCELLED&limit=1", client.oms), None).await.unwrap();
    let listed: Vec<&str> = only_cancelled["orders"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(listed, ["CANCELLED"]);

    // Every message was deleted once handled, not left to come back and be deduplicated.
    let sqs = aws_sdk_sqs::Client::new(&salve_common::aws::sdk_config().await);
    for queue in [&names.oms_queue, &names.ims_queue] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while messages_in(&sqs, queue).await > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(messages_in(&sqs, queue).await, 0, "{queue} still holds messages, visible or in flight");
    }
}

#[tokio::test]
async fn concurrent_orders_never_oversell_on_dynamodb() {
    let (dir, names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    let (shop, client) = start(&names, dir.path(), &[], &[]).await;
    const STOCK: i64 = 8;
    client.product_with_stock("HOT", "Hot", 5.0, STOCK).await.unwrap();
    let customer = client.customer("Crowd", "crowd@example.com").await.unwrap();
    let placed = futures::future::join_all((0..30).map(|_| {
        let (client, customer) = (client.clone(), customer.clone());
        async move { client.order(&customer, &[("HOT", 1)]).await.unwrap() }
    }))
    .await;
    let mut confirmed = 0;
    for id in &placed {
        let order = client.settled(id, SETTLE).await.unwrap_or_else(|e| panic!("{e}\n{}", shop.log_tails(4000)));
        if order["status"] == "CONFIRMED" {
            confirmed += 1;
        }
    }
    assert_eq!(confirmed, STOCK);
    assert_eq!(client.stock("HOT").await.unwrap(), 0);
}

#[tokio::test]
async fn traceparent_travels_through_sqs_both_ways() {
    let (dir, names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    let info = [("RUST_LOG".to_string(), "info".to_string())];
    let (shop, client) = start(&names, dir.path(), &info, &info).await;
    client.product_with_stock("TEA", "Tea", 3.0, 5).await.unwrap();
    let customer = client.customer("Tia", "tia@example.com").await.unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .http
        .post(format!("{}/orders", client.oms))
        .header("x-api-key", KEY)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"customer_id": customer, "items": [{"sku": "TEA", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    let id = response.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_string();
    assert_eq!(client.settled(&id, SETTLE).await.unwrap()["status"], "CONFIRMED");
    // The order is CONFIRMED in the database a moment before the line that says so reaches the
    // captured output of the process, so each log is read until the line is there (bounded).
    // HTTP -> OMS -> SQS -> IMS: the reservation is logged under the caller's trace ...
    let ims_log = logged(&shop.ims, "stock reserved", trace_id).await;
    assert!(ims_log.lines().any(|l| l.contains("stock reserved") && l.contains(trace_id)), "IMS log:\n{ims_log}");
    // ... and IMS -> SQS -> OMS: so is the confirmation.
    let oms_log = logged(&shop.oms, "inventory answer applied", trace_id).await;
    assert!(oms_log.lines().any(|l| l.contains("inventory answer applied") && l.contains(trace_id)), "OMS log:\n{oms_log}");
}

/// The process's log once a line with `what` and `trace_id` is in it (or after 10 s).
async fn logged(process: &shop_tests::processes::ServiceProcess, what: &str, trace_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = process.log();
        if text.lines().any(|l| l.contains(what) && l.contains(trace_id)) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Messages in the queue, waiting or received and not yet deleted.
async fn messages_in(client: &aws_sdk_sqs::Client, queue: &str) -> i64 {
    let url = client.get_queue_url().queue_name(queue).send().await.unwrap().queue_url.unwrap();
    let attrs = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name| attrs.get(&name).and_then(|v: &String| v.parse::<i64>().ok()).unwrap_or(0);
    count(QueueAttributeName::ApproximateNumberOfMessages) + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

#[tokio::test]
async fn poison_messages_end_in_the_dlq_and_redrive_brings_them_back() {
    let (dir, mut names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    names.max_receives = 2;
    let settings = dir.path().join("ims-settings.toml");
    std::fs::write(&settings, "[faults]\nconsumer_paused = true\n").unwrap();
    let (_shop, client) = start(&names, dir.path(), &[], &[("IMS_SETTINGS_FILE".into(), settings.display().to_string())]).await;
    let sqs = sqs().await;
    let ims_queue = sqs.get_queue_url().queue_name(&names.ims_queue).send().await.unwrap().queue_url.unwrap();

    // An unreadable message is moved to the DLQ at once, with the reason, and never blocks
    // the queue.
    sqs.send_message().queue_url(&ims_queue).message_body(POISON).send().await.unwrap();
    // While IMS cannot process, a real order's ReserveInventory is received, fails, and after
    // maxReceiveCount (2) receives SQS moves it to the DLQ: kept, not lost.
    client.product_with_stock("BOX", "Box", 1.0, 3).await.unwrap();
    let customer = client.customer("Dee", "dee@example.com").await.unwrap();
    let order = client.order(&customer, &[("BOX", 1)]).await.unwrap();
    let parked = dlq_until(&sqs, &names.ims_queue, |kinds| kinds.contains(&POISON) && kinds.contains(&"ReserveInventory")).await;
    assert!(
        parked.contains(&POISON) && parked.contains(&"ReserveInventory"),
        "the poison message and the unprocessable reservation are in the DLQ: {parked:?}"
    );
    assert_eq!(client.get_order(&order).await.unwrap().1["status"], "PENDING_INVENTORY");

    // IMS recovers; `ims redrive` moves the DLQ back; the order completes. The unreadable
    // message is rejected again and returns to the DLQ, alone. (SQS delivers at least once: a
    // second receiver may get the same message, so a rejected message can be parked twice.
    // What must hold is what the DLQ holds, not how many copies.)
    std::fs::write(&settings, "[faults]\nconsumer_paused = false\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = names.redrive("ims").unwrap();
    assert!(out.contains("moved") && !out.contains("moved 0 "), "{out}");
    assert_eq!(client.settled(&order, SETTLE).await.unwrap()["status"], "CONFIRMED");
    let back = dlq_until(&sqs, &names.ims_queue, |kinds| kinds.iter().all(|k| *k == POISON)).await;
    assert!(back.contains(&POISON) && back.iter().all(|k| *k == POISON), "only the unreadable message is back in the DLQ: {back:?}");
}

const POISON: &str = "{not json";

/// The kinds of message in `queue`'s DLQ (the message type, or the body when it has none),
/// polled until `done` holds for them (at most 30 s). Peeked with a zero visibility timeout,
/// so they stay where they are.
async fn dlq_until(client: &aws_sdk_sqs::Client, queue: &str, done: impl Fn(&[&str]) -> bool) -> Vec<&'static str> {
    let url = client.get_queue_url().queue_name(format!("{queue}-dlq")).send().await.unwrap().queue_url.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let peeked = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let kinds: Vec<&'static str> = peeked
            .iter()
            .map(|m| match m.body() {
                Some(POISON) => POISON,
                Some(body) if body.contains("ReserveInventory") => "ReserveInventory",
                _ => "other",
            })
            .collect();
        if (!kinds.is_empty() && done(&kinds)) || tokio::time::Instant::now() > deadline {
            return kinds;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_duplicated_sqs_delivery_has_no_second_effect() {
    let (dir, names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    let (_shop, client) = start(&names, dir.path(), &[], &[]).await;
    client.product_with_stock("CUP", "Cup", 2.0, 10).await.unwrap();
    let customer = client.customer("Eve", "eve@example.com").await.unwrap();
    let order = client.order(&customer, &[("CUP", 4)]).await.unwrap();
    assert_eq!(client.settled(&order, SETTLE).await.unwrap()["status"], "CONFIRMED");
    let sqs = sqs().await;
    let ims_queue = sqs.get_queue_url().queue_name(&names.ims_queue).send().await.unwrap().queue_url.unwrap();
    let reserve = json!({"message_id": "dup-1", "type": "ReserveInventory", "order_id": order, "customer_id": customer,
                         "items": [{"sku": "CUP", "quantity": 4}], "timestamp": "2026-01-01T00:00:00Z"})
    .to_string();
    for _ in 0..2 {
        sqs.send_message().queue_url(&ims_queue).message_body(&reserve).send().await.unwrap();
    }
    let release =
        json!({"message_id": "rel-1", "type": "ReleaseInventory", "order_id": "never-reserved", "timestamp": "2026-01-01T00:00:00Z"});
    sqs.send_message().queue_url(&ims_queue).message_body(release.to_string()).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(client.stock("CUP").await.unwrap(), 6, "reserved once");
    assert_eq!(client.get_order(&order).await.unwrap().1["status"], "CONFIRMED");
}

#[tokio::test]
async fn a_missing_table_is_a_clear_503_not_a_crash() {
    let (dir, names) = (tempfile::tempdir().unwrap(), AwsNames::unique());
    names.init().unwrap();
    let mut oms_env = names.env("oms");
    for (k, v) in oms_env.iter_mut() {
        if k == "OMS_TABLE_PREFIX" {
            *v = "missing-".into();
        }
    }
    let shop = TwoProcesses::start(dir.path(), KEY, &AwsNames::env_refs(&oms_env), &AwsNames::env_refs(&names.env("ims"))).await.unwrap();
    let client = ShopClient::new(&shop.oms.url, &shop.ims.url, KEY);
    let (status, body) = client.get_order("x").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"]["message"].as_str().unwrap().contains("ResourceNotFoundException"), "{body}");
    let ready = client.http.get(format!("{}/readyz", client.oms)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(shop.oms.log().contains("missing-oms-orders"), "the log names the table");
}

/// A sink that takes every message and remembers which.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl MessageSink for Recorder {
    async fn deliver(&self, message: &OutgoingMessage) -> Result<(), DeliveryError> {
        self.0.lock().unwrap().push(message.message_id.clone());
        Ok(())
    }
}

/// Writes `count` outbox messages whose next attempt is at `at`, as the stores do.
async fn outbox_messages(client: &aws_sdk_dynamodb::Client, table: &str, tag: &str, count: usize, at: chrono::DateTime<chrono::Utc>) {
    let trace = TraceParent::continue_or_start(None);
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let items = chunk
            .iter()
            .map(|i| {
                let envelope =
                    Envelope::new(format!("{tag}-{i}"), Message::ReleaseInventory { order_id: format!("o-{tag}-{i}"), timestamp: at });
                outbox_put(table, &envelope, &trace, at)
            })
            .collect();
        assert_eq!(transact(client, items, table).await.unwrap(), None);
    }
}

/// The relay's cost follows what it delivers, not the size of the outbox: with a thousand
/// messages waiting out a backoff and hundreds delivered before, finding the few that are due
/// reads those few (DynamoDB bills a Query by the items it evaluates).
#[tokio::test]
async fn the_outbox_relay_reads_what_is_due_not_the_backlog() {
    let names = AwsNames::unique();
    names.init().unwrap();
    let client = aws_sdk_dynamodb::Client::new(&salve_common::aws::sdk_config().await);
    let table = format!("{}oms-outbox", names.prefix);
    let store = Arc::new(DynamoOutbox::new(client.clone(), &table));
    let sink = Arc::new(Recorder::default());
    let relay = Relay {
        store: store.clone(),
        outbox: Outbox::new(),
        sink: sink.clone(),
        metrics: Arc::new(Metrics::new("relay-test")),
        clock: Arc::new(SystemClock),
    };
    let now = chrono::Utc::now();
    outbox_messages(&client, &table, "waiting", 1000, now + chrono::Duration::hours(1)).await;
    outbox_messages(&client, &table, "old", 300, now - chrono::Duration::seconds(5)).await;
    // The delivered history: 300 messages go out (in batches) and leave the index.
    let mut delivered = 0;
    while delivered < 300 {
        let n = relay.deliver_due_batch().await.unwrap();
        assert!(n > 0, "due messages were found");
        delivered += n;
    }
    assert_eq!(delivered, 300);

    outbox_messages(&client, &table, "fresh", 5, chrono::Utc::now() - chrono::Duration::seconds(1)).await;
    sink.0.lock().unwrap().clear();
    let read_before = store.items_read();
    assert_eq!(relay.deliver_due_batch().await.unwrap(), 5);
    let mut got = sink.0.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, (0..5).map(|i| format!("fresh-{i}")).collect::<Vec<_>>(), "exactly the due messages went out");
    assert_eq!(store.items_read() - read_before, 5, "only the due messages were read, not the 1000 waiting or the 300 delivered");
    assert_eq!(relay.deliver_due_batch().await.unwrap(), 0);
    assert_eq!(store.items_read() - read_before, 5, "an idle poll reads nothing");
    // The backlog is still there for when it falls due, and the readiness gauge sees it.
    assert_eq!(store.stats(chrono::Utc::now()).await.unwrap().depth, 1000);
}
