#!/usr/bin/env bash
# Fails when the chart's CRDs differ from the generated ones in crds/ (the source of truth,
# itself checked against the Rust types by operator/tests/crd_drift.rs).
# Fix a failure with:  cp crds/*.yaml charts/salve/crds/
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! diff -r crds charts/salve/crds; then
  echo "charts/salve/crds differs from crds/; run: cp crds/*.yaml charts/salve/crds/" >&2
  exit 1
fi
echo "charts/salve/crds matches crds/"
