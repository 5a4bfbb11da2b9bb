#!/usr/bin/env bash
# Demo on the kind cluster from kind/up.sh: a bad settings change makes OMS crash-loop, an
# Incident is raised, and Salve diagnoses it (Config_Error: the ConfigMap changed, then the
# pods crash-looped), restores the previous value, verifies the pods recover and writes a
# post-mortem.
#
#   kind/demo.sh                       # NAMESPACE=shop RELEASE=salve TIMEOUT=600
# Exits 0 when the Incident is Resolved, 1 when it escalates or times out (used by the e2e workflow).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE="${NAMESPACE:-shop}"
RELEASE="${RELEASE:-salve}"
TIMEOUT="${TIMEOUT:-600}"
INCIDENT="${INCIDENT:-oms-crashloop}"
k() { kubectl -n "$NAMESPACE" "$@"; }
step() { printf '\n==> %s\n' "$*"; }
sel() { echo "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=$1"; }

step "waiting for the operator and OMS to be available"
k wait --for=condition=Available deployment -l "$(sel operator)" --timeout=300s
k wait --for=condition=Available deployment -l "$(sel oms)" --timeout=300s
deploy=$(k get deployment -l "$(sel oms)" -o jsonpath='{.items[0].metadata.name}')
cm="$deploy-settings"
k delete incident "$INCIDENT" --ignore-not-found >/dev/null

work=$(mktemp -d)
k get configmap "$cm" -o jsonpath='{.data.settings\.toml}' > "$work/good.toml"
as_patch() { printf 'data:\n  settings.toml: |\n'; sed 's/^/    /' "$1"; }
as_patch "$work/good.toml" > "$work/restore.yaml"
echo "current settings of $deploy (ConfigMap $cm):"; sed 's/^/  /' "$work/good.toml"

step "breaking it: pool_size = 0 (valid range 1..=64) in ConfigMap $cm"
# A running service rejects an invalid file and keeps its settings; a starting one refuses to
# start. So: change the file, then replace the pod, as a node drain or a deploy would.
sed 's/^pool_size *=.*/pool_size = 0/' "$work/good.toml" > "$work/bad.toml"
grep -q '^pool_size = 0' "$work/bad.toml" || echo 'pool_size = 0' >> "$work/bad.toml"
as_patch "$work/bad.toml" > "$work/break.yaml"
k patch configmap "$cm" --type merge --patch-file "$work/break.yaml"
sleep 2
k delete pod -l "$(sel oms)" --wait=false

step "waiting for the new OMS pod to crash-loop"
for _ in $(seq 1 60); do
  restarts=$(k get pods -l "$(sel oms)" -o jsonpath='{.items[*].status.containerStatuses[0].restartCount}' 2>/dev/null || true)
  if [ -n "$restarts" ] && [ "${restarts##* }" -ge 1 ] 2>/dev/null; then break; fi
  sleep 2
done
k get pods -l "$(sel oms)"

step "raising an Incident (intake would do this from a CloudWatch or Alertmanager alarm)"
cat <<YAML | k apply -f -
apiVersion: salve.dev/v1alpha1
kind: Incident
metadata:
  name: $INCIDENT
spec:
  service: oms
  severity: High
  source:
    kind: Manual
    reason: "OMS pods crash-looping since a settings change"
  target:
    kind: Deployment
    name: $deploy
YAML

step "watching (kubectl get incidents,remediations -n $NAMESPACE), up to ${TIMEOUT}s"
phase=""
deadline=$(( $(date +%s) + TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  echo "--- $(date -u +%H:%M:%S)"
  k get incidents,remediations 2>/dev/null || true
  phase=$(k get incident "$INCIDENT" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in Resolved|Escalated) break ;; esac
  sleep 10
done

step "result: ${phase:-no phase}"
k get incident "$INCIDENT" -o jsonpath='{"root cause: "}{.status.diagnosis.rootCauseCategory}{"\nsummary:    "}{.status.diagnosis.summary}{"\n"}' 2>/dev/null || true
k get pods -l "$(sel oms)"
echo "settings now:"; k get configmap "$cm" -o jsonpath='{.data.settings\.toml}' | sed 's/^/  /'
echo
echo "more: kubectl -n $NAMESPACE describe incident $INCIDENT    (timeline, events)"
echo "      kubectl -n $NAMESPACE get configmap $INCIDENT-postmortem -o yaml"
if [ "$phase" = Resolved ]; then
  exit 0
fi
echo "not resolved; restore the settings by hand with:" >&2
echo "  kubectl -n $NAMESPACE patch configmap $cm --type merge --patch-file $work/restore.yaml && kubectl -n $NAMESPACE delete pod -l $(sel oms)" >&2
exit 1
