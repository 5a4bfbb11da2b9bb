#!/usr/bin/env bash
# Benchmark (prints numbers; not a test, not part of CI): the load generator in release mode
# against (1) the embedded shop in one process and (2) OMS + IMS as processes on DynamoDB + SQS
# served by a local moto server — moto is not AWS, so (2) is a local reference only. Each run
# also measures a minimal axum JSON endpoint as its baseline.
#   BENCH_SECONDS (10)  BENCH_CONCURRENCY (32)  BENCH_RATE (1000)  BENCH_MOTO_RATE (50)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-10}
concurrency=${BENCH_CONCURRENCY:-32}

cargo build --release --locked -p oms -p ims -p shop-tests --bins
bin=target/release

echo "== embedded: SQLite, both services in one process"
"$bin/loadgen" --seconds "$seconds" --concurrency "$concurrency" --rate "${BENCH_RATE:-1000}"

echo
echo "== moto-backed: OMS + IMS processes on DynamoDB + SQS (local reference, not AWS numbers)"
source tests/moto.sh
start_moto
pick_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
oms_port=$(pick_port); ims_port=$(pick_port)
export SALVE_API_KEYS=loadgen OMS_STORE=dynamodb OMS_BUS=sqs IMS_STORE=dynamodb IMS_BUS=sqs
export OMS_LISTEN=127.0.0.1:$oms_port IMS_LISTEN=127.0.0.1:$ims_port
export OMS_IMS_URL=http://127.0.0.1:$ims_port IMS_OMS_URL=http://127.0.0.1:$oms_port RUST_LOG=error
"$bin/oms" init-aws >/dev/null && "$bin/ims" init-aws >/dev/null
"$bin/ims" > target/bench-ims.log 2>&1 & ims_pid=$!
"$bin/oms" > target/bench-oms.log 2>&1 & oms_pid=$!
trap 'kill "$oms_pid" "$ims_pid" "$MOTO_PID" 2>/dev/null || true' EXIT
for url in "$OMS_IMS_URL" "$IMS_OMS_URL"; do
  for _ in $(seq 1 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
"$bin/loadgen" --seconds "$seconds" --concurrency "$concurrency" --rate "${BENCH_MOTO_RATE:-50}" \
  --oms-url "$IMS_OMS_URL" --ims-url "$OMS_IMS_URL"
