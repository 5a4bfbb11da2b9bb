#!/usr/bin/env bash
# Benchmark (prints numbers; not a test, not part of CI). Release build, then:
#   (1) the embedded shop (`shop`: OMS + IMS in one process, SQLite with durable commits, data
#       on disk under target/) and the baseline (`baseline`: bare axum, same JSON work), each
#       its own process, driven by `loadgen` in a third process. Servers and load generator
#       are pinned to different cores with taskset when there are at least 2.
#   (2) OMS + IMS as processes on DynamoDB + SQS served by a local moto server — moto is not
#       AWS, so (2) is a local reference only. BENCH_MOTO=0 skips it.
# Everything started here is stopped on exit, however the script ends.
#   BENCH_SECONDS (10)  BENCH_CONCURRENCY (32)  BENCH_RATE (1000)  BENCH_SKUS (1000)
#   BENCH_MAX_LINES (5)  BENCH_HOT_SHARE (0.2)  BENCH_MOTO (1)  BENCH_MOTO_RATE (50)
#   BENCH_SHOP_BIN (target/release/shop: another build of the shop, to compare builds)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-10}
concurrency=${BENCH_CONCURRENCY:-32}

cargo build --release --locked -p oms -p ims -p shop-tests --bins
bin=target/release
shop_bin=${BENCH_SHOP_BIN:-$bin/shop}

pids=()
data=""
cleanup() {
  # Our processes, then moto's and ministack's (moto.sh's own EXIT trap is replaced by this one).
  for pid in "${pids[@]}" ${MOTO_PID:+"$MOTO_PID"} ${MINISTACK_PID:+"$MINISTACK_PID"}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}" ${MOTO_PID:+"$MOTO_PID"} ${MINISTACK_PID:+"$MINISTACK_PID"}; do
    wait "$pid" 2>/dev/null || true
  done
  [ -n "$data" ] && rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Servers on the upper half of the cores, the load generator on the lower half.
cores=$(nproc)
if [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
  half=$((cores / 2))
  server_cpus="$half-$((cores - 1))"
  client_cpus="0-$((half - 1))"
  # Arrays, not functions: taskset execs the program, so `$!` is the server's own pid.
  server=(taskset -c "$server_cpus")
  client=(taskset -c "$client_cpus")
  echo "pinning: servers on CPU $server_cpus, load generator on CPU $client_cpus"
else
  server=()
  client=()
  echo "not pinning: $cores core(s) or no taskset"
fi

pick_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_healthy() {
  for _ in $(seq 1 200); do curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not become healthy" >&2
  return 1
}
loadgen_shape=(--seconds "$seconds" --concurrency "$concurrency" --max-lines "${BENCH_MAX_LINES:-5}" --hot-share "${BENCH_HOT_SHARE:-0.2}")

echo "== embedded: SQLite (synchronous=FULL), both services in one process"
export SALVE_API_KEYS=loadgen RUST_LOG=warn
data=$(mktemp -d "$PWD/target/bench-data.XXXXXX")
base_port=$(pick_port); oms_port=$(pick_port); ims_port=$(pick_port)
"${server[@]}" "$bin/baseline" --listen "127.0.0.1:$base_port" > target/bench-baseline.log 2>&1 & base_pid=$!; pids+=("$base_pid")
"${server[@]}" "$shop_bin" --oms-listen "127.0.0.1:$oms_port" --ims-listen "127.0.0.1:$ims_port" --data-dir "$data" \
  > target/bench-shop.log 2>&1 & shop_pid=$!; pids+=("$shop_pid")
wait_healthy "http://127.0.0.1:$base_port"
wait_healthy "http://127.0.0.1:$oms_port"
"${client[@]}" "$bin/loadgen" "${loadgen_shape[@]}" --rate "${BENCH_RATE:-1000}" --skus "${BENCH_SKUS:-1000}" \
  --oms-url "http://127.0.0.1:$oms_port" --ims-url "http://127.0.0.1:$ims_port" \
  --baseline-url "http://127.0.0.1:$base_port" --server-pid "$shop_pid" --baseline-pid "$base_pid"
kill "$shop_pid" "$base_pid" 2>/dev/null || true
wait "$shop_pid" "$base_pid" 2>/dev/null || true

if [ "${BENCH_MOTO:-1}" = 0 ]; then exit 0; fi
echo
echo "== moto-backed: OMS + IMS processes on DynamoDB + SQS (local reference, not AWS numbers)"
source tests/moto.sh
start_moto
trap cleanup EXIT
oms_port=$(pick_port); ims_port=$(pick_port)
export OMS_STORE=dynamodb OMS_BUS=sqs IMS_STORE=dynamodb IMS_BUS=sqs
export OMS_LISTEN=127.0.0.1:$oms_port IMS_LISTEN=127.0.0.1:$ims_port
export OMS_IMS_URL=http://127.0.0.1:$ims_port IMS_OMS_URL=http://127.0.0.1:$oms_port RUST_LOG=error
"$bin/oms" init-aws >/dev/null && "$bin/ims" init-aws >/dev/null
"${server[@]}" "$bin/ims" > target/bench-ims.log 2>&1 & pids+=($!)
"${server[@]}" "$bin/oms" > target/bench-oms.log 2>&1 & pids+=($!)
wait_healthy "$OMS_IMS_URL"
wait_healthy "$IMS_OMS_URL"
"${client[@]}" "$bin/loadgen" "${loadgen_shape[@]}" --rate "${BENCH_MOTO_RATE:-50}" --skus 50 \
  --oms-url "$IMS_OMS_URL" --ims-url "$OMS_IMS_URL"
