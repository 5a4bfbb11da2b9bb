#!/usr/bin/env bash
# The operator's benchmark (prints numbers; not a test, not part of CI): release build of the
# sandbox and its two controllers, a local moto server for the alarm path through SNS and SQS,
# then `salve-sandbox bench` with the arguments given (e.g. --incidents 1000, --json).
# Without moto (plain `salve-sandbox bench`) the SQS rows print n/a. moto and everything the
# bench started are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p salve-sandbox
source tests/moto.sh
start_moto
"${CARGO_TARGET_DIR:-target}/release/salve-sandbox" bench "$@"
