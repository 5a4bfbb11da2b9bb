#!/usr/bin/env bash
# Creates a kind cluster, builds the three images, loads them into the nodes and installs the
# chart in embedded mode (SQLite + outbox; nothing else to install).
#
#   kind/up.sh                 # then: kind/demo.sh
#   CLUSTER=salve NAMESPACE=shop TAG=dev kind/up.sh
#   kind delete cluster --name salve     # to clean up
#
# Needs: docker, kind, kubectl. helm is used from PATH, else fetched into .cache/helm by
# tests/helm.sh (which also lints the chart).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-salve}"
NAMESPACE="${NAMESPACE:-shop}"
RELEASE="${RELEASE:-salve}"
# A new tag per run, so that `helm upgrade` rolls the pods onto the freshly built images.
TAG="${TAG:-dev-$(date +%Y%m%d%H%M%S)}"

step() { printf '\n==> %s\n' "$*"; }
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind/up.sh: $tool is required" >&2; exit 1; }
done
if command -v helm >/dev/null; then
  HELM=helm
else
  step "helm not on PATH: fetching it (tests/helm.sh)"
  bash tests/helm.sh
  HELM=.cache/helm/bin/helm
fi

step "kind cluster '$CLUSTER'"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "exists"
else
  kind create cluster --name "$CLUSTER" --config kind/cluster.yaml --wait 180s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "building images (tag $TAG; the first build compiles the workspace, several minutes)"
for image in operator oms ims; do
  DOCKER_BUILDKIT=1 docker build -f kind/Dockerfile --target "$image" -t "salve/$image:$TAG" .
done

step "loading images into the kind nodes"
for image in operator oms ims; do
  kind load docker-image --name "$CLUSTER" "salve/$image:$TAG"
done

step "installing the chart (release $RELEASE, namespace $NAMESPACE, kind/values-kind.yaml)"
"$HELM" upgrade --install "$RELEASE" charts/salve \
  --namespace "$NAMESPACE" --create-namespace \
  -f kind/values-kind.yaml \
  --set operator.image.tag="$TAG" --set oms.image.tag="$TAG" --set ims.image.tag="$TAG" \
  --wait --timeout 5m

step "ready"
kubectl -n "$NAMESPACE" get deployments,pods,services
oms_svc=$(kubectl -n "$NAMESPACE" get service -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=oms" -o jsonpath='{.items[0].metadata.name}')
cat <<MSG

Try it (API key: dev-key):
  kubectl -n $NAMESPACE port-forward svc/$oms_svc 8080:8080 &
  curl -s localhost:8080/healthz
  kind/demo.sh            # break OMS's settings, raise an Incident, watch Salve fix it
MSG
