"""Packaging checks of the Helm chart that need several renders, called by tests/helm.sh.

    python tests/helm_packaging.py HELM CHART OUT_DIR

Each check prints one line when it passes; the first failing check lists what is wrong and
exits 1. No cluster is needed: renders are `helm template` / `helm install --dry-run=client`,
and the commands that the install notes and operator/examples/README.md print are run by bash
against a recording `kubectl` (and a `helm` that renders), then checked against what the chart
renders, the namespaces created so far and the CRD schemas.

  api-keys    two renders of the same values give byte-identical Deployments (no pod restart
              on every Argo CD / Flux sync); the generated Secret is kept (resource-policy) and
              the checksum never comes from the generated key; existingSecret renders no Secret;
              a new apiKeys.value still rolls the pods
  rbac        where each grant lives: with a finite operator.policy.allowedNamespaces, a Role +
              RoleBinding in exactly each listed namespace, and the ClusterRole holds only
              cluster-wide reads (no write cluster-wide but Incident status and Events); with ["*"] one ClusterRole;
              the leader-election Lease only in the release namespace; the default render grants
              exactly what operator/examples/rbac.yaml grants, in the same places; every rule
              of the chart and of the example carries a comment saying why
  approvals   the default render holds one ValidatingAdmissionPolicy and its Deny binding, equal to
              operator/examples/approval-policy.yaml (names mapped), naming the operator's
              ServiceAccount and AUTO_APPROVER; highRiskGroup adds the group rule; enforce=false
              renders neither
  images      operator, oms and ims take the same image keys (repository, tag, digest,
              pullPolicy; one schema definition); the tag defaults to appVersion; a digest
              renders <repository>@sha256:...; operator/examples use the chart's default images
  notes       for several value sets, every command the install notes print runs and refers
              only to objects the release renders (no repository paths, files only on stdin);
              the Incident it applies validates against the CRD schema and targets a rendered
              Deployment
  examples    operator/examples/README.md, followed literally on a fresh cluster: every
              namespace exists before it is used, every file exists, every applied Incident /
              Remediation validates against its CRD and targets a Deployment that exists
"""

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import jsonschema
import yaml

HELM, CHART, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.getcwd()
RELEASE, NS = "salve", "shop"
def fail(check, msgs):
    for m in msgs:
        print(f"  [{check}] {m}", file=sys.stderr)
    sys.exit(1)


def helm(*args, ok=True):
    p = subprocess.run([HELM, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"  helm {' '.join(args)} failed:\n{p.stderr}")
    return p


def render(*values, release=RELEASE, ns=NS):
    """helm template with --set values; returns (text, docs)."""
    args = ["template", release, CHART, "-n", ns, "--include-crds"]
    for v in values:
        args += ["-f", v] if v.endswith(".yaml") else ["--set", v]
    text = helm(*args).stdout
    return text, [d for d in yaml.safe_load_all(text) if d]


def documents_text(text):
    """Rendered text split into documents: list of (kind, name, namespace, text)."""
    out = []
    for chunk in re.split(r"(?m)^---\s*$", text):
        d = yaml.safe_load(chunk)
        if isinstance(d, dict) and d.get("kind"):
            m = d.get("metadata") or {}
            out.append((d["kind"], m.get("name"), m.get("namespace"), chunk))
    return out


def by(docs, kind, name=None):
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def containers(docs):
    for d in by(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"].get("containers", []) + d["spec"]["template"]["spec"].get("initContainers", []):
            yield d, c


def env(docs, deployment):
    d = by(docs, "Deployment", deployment)
    if not d:
        return {}
    return {e["name"]: e for e in d[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}


chart_meta = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))
APP_VERSION = str(chart_meta["appVersion"])
values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
schema = json.load(open(os.path.join(CHART, "values.schema.json")))
aws_values = os.path.join(CHART, "ci", "aws-values.yaml")
kind_values = "kind/values-kind.yaml"
default_text, default_docs = render()
crd_schemas = {
    c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for c in by(default_docs, "CustomResourceDefinition")
}

# ----------------------------------------------------------------------------------------------
# api-keys: stable renders, kept Secret, checksum from values only
errs = []
for vals in ([], [aws_values], [kind_values], ["apiKeys.existingSecret=my-keys"]):
    a = [t for k, _, _, t in documents_text(render(*vals)[0]) if k == "Deployment"]
    b = [t for k, _, _, t in documents_text(render(*vals)[0]) if k == "Deployment"]
    if a != b:
        errs.append(f"two renders of the same values {vals or '(defaults)'} give different Deployments (pods would restart on every sync)")
secret = by(default_docs, "Secret", f"{RELEASE}-api-keys")
if not secret:
    errs.append("the default render has no Secret salve-api-keys")
else:
    s = secret[0]
    if (s["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") != "keep":
        errs.append("the generated API-key Secret lacks helm.sh/resource-policy: keep (uninstall/reinstall would rotate it)")
    import base64
    generated = base64.b64decode(s["data"][values["apiKeys"]["secretKey"]]).decode()
    for d in by(default_docs, "Deployment"):
        ann = (d["spec"]["template"]["metadata"].get("annotations") or {}).get("checksum/api-keys")
        if ann and ann == hashlib.sha256(generated.encode()).hexdigest():
            errs.append(f"Deployment/{d['metadata']['name']}: checksum/api-keys is computed from the generated key")
_, ext = render("apiKeys.existingSecret=my-keys")
if [s for s in by(ext, "Secret") if "api-keys" in s["metadata"]["name"]]:
    errs.append("apiKeys.existingSecret set, but the chart still renders an API-key Secret")
for dn in (f"{RELEASE}-oms", f"{RELEASE}-ims"):
    ref = ((env(ext, dn).get("SALVE_API_KEYS") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if ref.get("name") != "my-keys":
        errs.append(f"apiKeys.existingSecret=my-keys: {dn} reads SALVE_API_KEYS from {ref.get('name')!r}")


def checksums(*vals):
    return {d["metadata"]["name"]: (d["spec"]["template"]["metadata"].get("annotations") or {}).get("checksum/api-keys")
            for d in by(render(*vals)[1], "Deployment") if d["metadata"]["name"] != f"{RELEASE}-operator"}


if checksums("apiKeys.value=key-a") != checksums("apiKeys.value=key-a"):
    errs.append("apiKeys.value: two renders give different checksums")
if any(checksums("apiKeys.value=key-a")[k] == v for k, v in checksums("apiKeys.value=key-b").items()):
    errs.append("a new apiKeys.value does not change checksum/api-keys (the pods would keep the old keys)")
if errs:
    fail("api-keys", errs)
print("  [api-keys] renders are byte-identical per values; generated Secret kept; existingSecret and value behave")

# ----------------------------------------------------------------------------------------------
# rbac: placement of every grant
WRITE = {"create", "update", "patch", "delete", "deletecollection"}
# Nodes are cluster-scoped: evidence reads the conditions of the nodes a workload's pods run on.
CLUSTER_READ_RESOURCES = {("salve.dev", "incidents"), ("salve.dev", "remediations"), ("", "configmaps"), ("", "nodes")}
# The only writes granted cluster-wide: an Incident opened in a namespace the policy does not
# allow still gets its answer (status NamespaceNotAllowed and a Warning Event), never a 403 loop.
CLUSTER_WRITES = {("salve.dev", "incidents/status", "patch"), ("events.k8s.io", "events", "create"), ("events.k8s.io", "events", "patch")}


def rule_grants(rule):
    rn = tuple(sorted(rule.get("resourceNames") or []))
    return {(g, r, v, rn) for g in rule.get("apiGroups", []) for r in rule.get("resources", []) for v in rule.get("verbs", [])}


def rbac_layout(docs, sa_name, sa_ns):
    """{'cluster': grants via ClusterRoleBindings, ns: grants via RoleBindings in ns} for one SA,
    and {(kind, name): grants} per role."""
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in by(docs, "ClusterRole") + by(docs, "Role")}
    per_role = {}
    for (k, _, n), r in roles.items():
        per_role.setdefault((k, n), set()).update(g for rule in r.get("rules") or [] for g in rule_grants(rule))
    layout, errs = {}, []
    for b in by(docs, "ClusterRoleBinding") + by(docs, "RoleBinding"):
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and s.get("namespace") == sa_ns for s in b.get("subjects") or []):
            continue
        ns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
        ref = b["roleRef"]
        role = roles.get((ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"]))
        if not role:
            errs.append(f"{b['kind']}/{b['metadata']['name']} ({ns}): roleRef {ref['kind']}/{ref['name']} is not rendered there")
            continue
        grants = {g for rule in role.get("rules") or [] for g in rule_grants(rule)}
        layout.setdefault("cluster" if ns is None else ns, set()).update(grants)
    return layout, per_role, errs


def check_placement(label, docs, sa_name, sa_ns, allowed, lease):
    layout, _, errs = rbac_layout(docs, sa_name, sa_ns)
    errs = [f"{label}: {e}" for e in errs]
    cluster = layout.get("cluster", set())
    lease_grants = {g for grants in layout.values() for g in grants if g[1] == "leases"}
    for where, grants in layout.items():
        if any(g[1] == "leases" for g in grants) and where != sa_ns:
            errs.append(f"{label}: Lease access granted in {where}, not only in the operator's namespace {sa_ns}")
    want_lease = {("coordination.k8s.io", "leases", "get", (lease,)), ("coordination.k8s.io", "leases", "update", (lease,)),
                  ("coordination.k8s.io", "leases", "create", ())}
    if lease_grants != want_lease:
        errs.append(f"{label}: leader election should be get/update on lease {lease} and create, got {sorted(lease_grants)}")
    namespaced = {ns: {g for g in grants if g[1] != "leases"} for ns, grants in layout.items() if ns != "cluster"}
    namespaced = {ns: g for ns, g in namespaced.items() if g}
    if "*" in allowed:
        if namespaced:
            errs.append(f"{label}: allowedNamespaces is * but Roles grant in {sorted(namespaced)} too")
        if not any(g[0] == "apps" and g[1] == "deployments" and g[2] == "patch" for g in cluster):
            errs.append(f"{label}: allowedNamespaces is * but the ClusterRole cannot patch Deployments")
    else:
        for g in sorted(cluster):
            if (g[0], g[1], g[2]) in CLUSTER_WRITES:
                continue
            if g[2] in WRITE or (g[0], g[1]) not in CLUSTER_READ_RESOURCES:
                errs.append(f"{label}: cluster-wide {g[2]} {g[0] or 'core'}/{g[1]} although the policy allows only {sorted(allowed)}")
        if set(namespaced) != set(allowed):
            errs.append(f"{label}: namespaced grants in {sorted(namespaced)}, but the policy allows exactly {sorted(allowed)}")
        sets = {frozenset(g) for g in namespaced.values()}
        if len(sets) > 1:
            errs.append(f"{label}: the per-namespace Roles differ from each other")
    return errs, layout


def rule_comment_errors(label, text):
    errs = []
    for kind, name, _, chunk in documents_text(text):
        if kind not in ("Role", "ClusterRole"):
            continue
        lines = [ln for ln in chunk.splitlines() if ln.strip()]
        for i, ln in enumerate(lines):
            if re.match(r"^\s*- apiGroups:", ln) and (i == 0 or not lines[i - 1].lstrip().startswith("#")):
                errs.append(f"{label}: {kind}/{name}: a rule without a comment saying why it is needed: {ln.strip()}")
    return errs


errs = []
example_text = open("operator/examples/rbac.yaml").read()
example_docs = [d for d in yaml.safe_load_all(example_text) if d]
example_op = yaml.safe_load(open("operator/examples/operator.yaml"))
ex_env = {e["name"]: e.get("value") for e in example_op["spec"]["template"]["spec"]["containers"][0].get("env", [])}
ex_sa = example_op["spec"]["template"]["spec"]["serviceAccountName"]
ex_ns = example_op["metadata"]["namespace"]
e, ex_layout = check_placement("operator/examples", example_docs, ex_sa, ex_ns,
                               ex_env.get("SALVE_ALLOWED_NAMESPACES", "*").split(","), ex_env.get("SALVE_LEASE_NAME", "salve-operator-leader"))
errs += e + rule_comment_errors("operator/examples/rbac.yaml", example_text)

cases = [("default", [], None), ("aws", [aws_values], None), ("kind", [kind_values], None),
         ("two namespaces", ["operator.policy.allowedNamespaces={shop,payments}"], ["shop", "payments"]),
         ("all namespaces", ["operator.policy.allowedNamespaces={*}"], ["*"])]
for label, vals, want in cases:
    text, docs = render(*vals)
    op_env = env(docs, f"{RELEASE}-operator")
    allowed = op_env["SALVE_ALLOWED_NAMESPACES"]["value"].split(",")
    if want is not None and sorted(allowed) != sorted(want):
        errs.append(f"{label}: SALVE_ALLOWED_NAMESPACES is {allowed}, expected {want}")
    e, layout = check_placement(label, docs, f"{RELEASE}-operator", NS, allowed, op_env["SALVE_LEASE_NAME"]["value"])
    errs += e + rule_comment_errors(label, text)
    # The operator's tests check the example's (group, resource, verb) set against its requests:
    # every render must grant that same set, wherever it puts it.
    flat = lambda lay: {g[:3] for grants in lay.values() for g in grants}
    if flat(layout) != flat(ex_layout):
        errs.append(f"{label}: grants {sorted(flat(layout) ^ flat(ex_layout))} differ from operator/examples/rbac.yaml")
    if label == "default":
        # Same roles, same rules, same places (namespaces mapped: release <-> the example's).
        _, chart_roles, _ = rbac_layout(docs, f"{RELEASE}-operator", NS)
        _, ex_roles, _ = rbac_layout(example_docs, ex_sa, ex_ns)
        if chart_roles != ex_roles:
            diff = {k: sorted(chart_roles.get(k, set()) ^ ex_roles.get(k, set())) for k in set(chart_roles) | set(ex_roles)
                    if chart_roles.get(k) != ex_roles.get(k)}
            errs.append(f"default render and operator/examples/rbac.yaml differ (role -> differing grants): {diff}")
if errs:
    fail("rbac", errs)
print("  [rbac] Roles in exactly the allowed namespaces, cluster-wide reads plus Incident status and Events (other writes only with *), "
      "Lease in the release namespace, every rule commented, default render = operator/examples/rbac.yaml")

# ----------------------------------------------------------------------------------------------
# approvals: the ValidatingAdmissionPolicy that makes the API server vouch for spec.approval
errs = []
auto_approver = re.search(r'pub const AUTO_APPROVER: &str = "([^"]+)"', open("operator/src/domain/approval.rs").read()).group(1)
ex_docs = [d for d in yaml.safe_load_all(open("operator/examples/approval-policy.yaml")) if d]
ex_sa_user = f"system:serviceaccount:{ex_ns}:{ex_sa}"
_, docs = render()
chart_sa = by(docs, "Deployment", f"{RELEASE}-operator")[0]["spec"]["template"]["spec"]["serviceAccountName"]
chart_sa_user = f"system:serviceaccount:{NS}:{chart_sa}"
for label, ds, sa_user in (("default render", docs, chart_sa_user), ("operator/examples/approval-policy.yaml", ex_docs, ex_sa_user)):
    policies, bindings = by(ds, "ValidatingAdmissionPolicy"), by(ds, "ValidatingAdmissionPolicyBinding")
    if len(policies) != 1 or len(bindings) != 1:
        errs.append(f"{label}: expected one ValidatingAdmissionPolicy and one binding, got {len(policies)} and {len(bindings)}")
        continue
    spec, bspec = policies[0]["spec"], bindings[0]["spec"]
    text = json.dumps(spec)
    if bspec.get("policyName") != policies[0]["metadata"]["name"] or bspec.get("validationActions") != ["Deny"]:
        errs.append(f"{label}: the binding must name the policy and Deny, got {bspec}")
    if f"'{sa_user}'" not in text:
        errs.append(f"{label}: the policy does not name the operator's ServiceAccount {sa_user}")
    if f"'{auto_approver}'" not in text:
        errs.append(f"{label}: the policy does not name AUTO_APPROVER {auto_approver!r} (operator/src/domain/approval.rs)")
    if spec.get("failurePolicy") != "Fail":
        errs.append(f"{label}: failurePolicy must be Fail (an expression that cannot be evaluated refuses)")
if not errs:
    chart_spec = json.dumps(by(docs, "ValidatingAdmissionPolicy")[0]["spec"], sort_keys=True)
    ex_spec = json.dumps(by(ex_docs, "ValidatingAdmissionPolicy")[0]["spec"], sort_keys=True).replace(ex_sa_user, chart_sa_user)
    if chart_spec != ex_spec:
        errs.append("the default render's ValidatingAdmissionPolicy differs from operator/examples/approval-policy.yaml")
_, docs = render("operator.approvals.highRiskGroup=sre-leads")
group_rules = [v for p in by(docs, "ValidatingAdmissionPolicy") for v in p["spec"]["validations"]
               if "'sre-leads' in request.userInfo.groups" in v["expression"] and "'High'" in v["expression"]]
if len(group_rules) != 1:
    errs.append("operator.approvals.highRiskGroup=sre-leads does not render one validation requiring the group for High risk")
_, docs = render("operator.approvals.enforce=false")
if by(docs, "ValidatingAdmissionPolicy") or by(docs, "ValidatingAdmissionPolicyBinding"):
    errs.append("operator.approvals.enforce=false still renders the policy")
if errs:
    fail("approvals", errs)
print("  [approvals] one policy + Deny binding naming the operator's ServiceAccount and AUTO_APPROVER, default render = "
      "operator/examples/approval-policy.yaml, highRiskGroup adds the group rule, enforce=false renders none")

# ----------------------------------------------------------------------------------------------
# images
errs = []
COMPONENTS = ("operator", "oms", "ims")
for c in COMPONENTS:
    img = values[c]["image"]
    if set(img) != {"repository", "tag", "digest", "pullPolicy"}:
        errs.append(f"values.yaml {c}.image has keys {sorted(img)}, expected repository, tag, digest, pullPolicy")
    if img.get("repository") != f"ghcr.io/salve/{c}" or img.get("tag") or img.get("digest"):
        errs.append(f"values.yaml {c}.image: default should be ghcr.io/salve/{c} with empty tag and digest")
    if schema["properties"][c]["properties"]["image"] != {"$ref": "#/definitions/image"}:
        errs.append(f"values.schema.json: {c}.image should be the shared #/definitions/image")
defn = schema.get("definitions", {}).get("image", {})
if not re.fullmatch(defn.get("properties", {}).get("digest", {}).get("pattern", "x"), "sha256:" + "0" * 64) \
        or re.fullmatch(defn["properties"]["digest"]["pattern"], "sha256:abc"):
    errs.append("values.schema.json: image.digest must be validated as sha256:<64 hex>")
default_images = {}
for d, c in containers(default_docs):
    comp = d["metadata"]["labels"]["app.kubernetes.io/component"]
    default_images[comp] = c["image"]
for c in COMPONENTS:
    if default_images.get(c) != f"ghcr.io/salve/{c}:{APP_VERSION}":
        errs.append(f"default {c} image is {default_images.get(c)!r}, expected ghcr.io/salve/{c}:{APP_VERSION}")
digest = "sha256:" + hashlib.sha256(b"salve").hexdigest()
for c in COMPONENTS:
    _, docs = render(f"{c}.image.digest={digest}", f"{c}.image.tag=9.9.9")
    got = {dd["metadata"]["labels"]["app.kubernetes.io/component"]: cc["image"] for dd, cc in containers(docs)}
    if got.get(c) != f"ghcr.io/salve/{c}@{digest}":
        errs.append(f"{c}.image.digest set: image is {got.get(c)!r}, expected ghcr.io/salve/{c}@{digest}")
    others = {k: v for k, v in got.items() if k != c}
    if any("@" in v for v in others.values()):
        errs.append(f"{c}.image.digest leaks into other components: {others}")
for f in sorted(os.listdir("operator/examples")):
    if not f.endswith(".yaml"):
        continue
    for d in yaml.safe_load_all(open(os.path.join("operator/examples", f))):
        if not d or d.get("kind") != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["image"] not in default_images.values():
                errs.append(f"operator/examples/{f}: image {c['image']!r} is not one of the chart's default images {sorted(default_images.values())}")
if errs:
    fail("images", errs)
print(f"  [images] same keys for operator/oms/ims, tag defaults to {APP_VERSION}, digest renders repo@sha256, examples use the chart's images")


# ----------------------------------------------------------------------------------------------
# Running printed commands against a recording kubectl / rendering helm
STUB = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
rec = {"tool": os.path.basename(sys.argv[0]), "argv": args}
if "-f" in args and args[args.index("-f") + 1 : args.index("-f") + 2] == ["-"]:
    rec["stdin"] = sys.stdin.read()
with open(os.environ["SALVE_RECORD"], "a") as f:
    f.write(json.dumps(rec) + "\n")
if rec["tool"] == "kubectl" and "secret" in args and "jsonpath" in " ".join(args):
    print("ZGV2LWtleQ==")   # base64("dev-key"), so that | base64 -d | cut works
'''


def run_commands(script, label):
    """Runs script with bash (set -eo pipefail) against the stubs; returns the recorded calls."""
    with tempfile.TemporaryDirectory() as tmp:
        for tool in ("kubectl", "helm"):
            p = os.path.join(tmp, tool)
            with open(p, "w") as f:
                f.write(STUB.replace("#!/usr/bin/env python3", "#!" + sys.executable))
            os.chmod(p, 0o755)
        record = os.path.join(tmp, "record.jsonl")
        open(record, "w").close()
        envv = dict(os.environ, PATH=tmp + os.pathsep + os.environ["PATH"], SALVE_RECORD=record)
        p = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=ROOT, env=envv, capture_output=True, text=True)
        if p.returncode != 0:
            fail(label, [f"the commands do not run: {p.stderr.strip()}", script])
        return [json.loads(line) for line in open(record)]


KINDS = {
    "svc": "Service", "service": "Service", "services": "Service",
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "cm": "ConfigMap", "configmap": "ConfigMap", "configmaps": "ConfigMap",
    "secret": "Secret", "secrets": "Secret", "lease": "Lease", "leases": "Lease",
    "pod": "Pod", "pods": "Pod", "sa": "ServiceAccount", "serviceaccount": "ServiceAccount",
    "inc": "Incident", "incident": "Incident", "incidents": "Incident",
    "rem": "Remediation", "remediation": "Remediation", "remediations": "Remediation",
    "salve": "salve", "ns": "Namespace", "namespace": "Namespace", "namespaces": "Namespace",
    "crd": "CustomResourceDefinition", "crds": "CustomResourceDefinition",
}
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "-p", "--patch", "--type", "-l", "--selector", "--patch-file",
               "-f", "--filename", "--timeout", "-c", "--container", "--for", "--set", "--values", "--version", "--field-manager"}


class World:
    """What exists in the cluster, as the commands create it."""

    def __init__(self, namespaces, objects=(), crds=(), repo_files=True):
        self.repo_files = repo_files         # False: the user has only the chart, no checkout
        self.namespaces = set(namespaces) | {"default", "kube-system"}
        self.objects = set(objects)          # (kind, namespace, name)
        self.crds = set(crds)                # Incident, Remediation
        self.errors = []

    def add_docs(self, docs, default_ns, where):
        for d in docs:
            kind, meta = d["kind"], d.get("metadata") or {}
            if kind == "Namespace":
                self.namespaces.add(meta["name"]); continue
            if kind == "CustomResourceDefinition":
                self.crds.add(d["spec"]["names"]["kind"]); continue
            ns = None if kind in CLUSTER_SCOPED else (meta.get("namespace") or default_ns)
            if ns is not None and ns not in self.namespaces:
                self.errors.append(f"{where}: {kind}/{meta.get('name')} goes into namespace {ns}, which does not exist yet")
            if kind in ("Incident", "Remediation"):
                self.check_custom(d, ns, where)
            self.objects.add((kind, ns, meta.get("name")))
            if kind == "Deployment":
                for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
                    if e["name"] == "SALVE_LEASE_NAME":
                        self.objects.add(("Lease", ns, e["value"]))

    def check_custom(self, d, ns, where):
        kind = d["kind"]
        if kind not in self.crds:
            self.errors.append(f"{where}: {kind} applied before its CRD")
        try:
            jsonschema.validate(d.get("spec"), crd_schemas[kind]["properties"]["spec"])
        except jsonschema.ValidationError as ex:
            self.errors.append(f"{where}: {kind}/{d['metadata']['name']} does not validate against the CRD: {ex.message}")
        spec = d.get("spec") or {}
        target = (spec.get("target") or {}).get("name") if kind == "Incident" else (spec.get("action") or {}).get("targetName")
        if target and ("Deployment", ns, target) not in self.objects:
            self.errors.append(f"{where}: {kind}/{d['metadata']['name']} targets Deployment {ns}/{target}, which nothing created")
        if kind == "Remediation" and ("Incident", ns, spec.get("incidentRef")) not in self.objects:
            self.errors.append(f"{where}: Remediation/{d['metadata']['name']} refers to Incident {spec.get('incidentRef')!r}, which nothing created")

    def exists(self, kind, ns, name):
        if (kind, ns, name) in self.objects:
            return True
        if kind == "Remediation":   # the operator names its proposals <incident>-r<N>
            m = re.fullmatch(r"(.+)-r[0-9]+", name)
            return bool(m) and ("Incident", ns, m.group(1)) in self.objects
        return kind == "ConfigMap" and name.endswith("-postmortem") and ("Incident", ns, name[: -len("-postmortem")]) in self.objects

    def kubectl(self, argv, stdin, where):
        ns, all_ns, files, pos = "default", False, [], []
        i = 0
        while i < len(argv):
            a = argv[i]
            if a in ("-A", "--all-namespaces"):
                all_ns = True
            elif a.startswith("--namespace="):
                ns = a.split("=", 1)[1]
            elif a.startswith("--filename="):
                files.append(a.split("=", 1)[1])
            elif a in VALUE_FLAGS:
                if a in ("-n", "--namespace"):
                    ns = argv[i + 1]
                if a in ("-f", "--filename"):
                    files.append(argv[i + 1])
                i += 1
            elif not a.startswith("-"):
                pos.append(a)
            i += 1
        if not pos:
            self.errors.append(f"{where}: kubectl without a verb"); return
        verb, rest = pos[0], pos[1:]
        if not all_ns and ns not in self.namespaces and not (verb == "create" and rest[:1] in (["namespace"], ["ns"])):
            self.errors.append(f"{where}: namespace {ns} does not exist yet")
        if verb in ("apply", "create", "delete") and files:
            for f in files:
                if f == "-":
                    docs = [d for d in yaml.safe_load_all(stdin or "") if d]
                    if not docs:
                        self.errors.append(f"{where}: nothing on stdin")
                elif self.repo_files:
                    path = os.path.join(ROOT, f)
                    if not os.path.exists(path):
                        self.errors.append(f"{where}: {f} does not exist"); continue
                    paths = [os.path.join(path, x) for x in sorted(os.listdir(path)) if x.endswith((".yaml", ".yml", ".json"))] if os.path.isdir(path) else [path]
                    docs = [d for p in paths for d in yaml.safe_load_all(open(p)) if d]
                else:
                    self.errors.append(f"{where}: -f {f}: a file the chart user does not have (use a heredoc on stdin)"); continue
                if verb != "delete":
                    self.add_docs(docs, ns, where)
            return
        if verb == "create" and rest[:1] in (["namespace"], ["ns"]):
            self.namespaces.add(rest[1]); return
        if verb == "delete" and rest[:1] in (["namespace"], ["ns"]):
            return
        if verb == "rollout":
            rest = rest[1:]
        if verb == "port-forward" or verb == "logs":
            rest = rest[:1]
        refs = []
        if rest and "/" not in rest[0]:
            kinds = [KINDS.get(k) for k in rest[0].split(",")]
            if None in kinds:
                self.errors.append(f"{where}: unknown resource type {rest[0]!r}"); return
            refs = [(kinds[0], n) for n in rest[1:] if "=" not in n] if len(kinds) == 1 else []
        else:
            for r in rest:
                if "/" in r:
                    k, n = r.split("/", 1)
                    if k not in KINDS:
                        self.errors.append(f"{where}: unknown resource type {k!r}"); continue
                    refs.append((KINDS[k], n))
        for k, n in refs:
            if k == "Namespace":
                continue
            if not self.exists(k, ns, n):
                self.errors.append(f"{where}: {k} {ns}/{n} does not exist (not rendered by the chart nor created before)")


def run_and_check(label, script, world, helm_render):
    for i, call in enumerate(run_commands(script, label)):
        where = f"{label}: {call['tool']} {' '.join(call['argv'])}"
        if call["tool"] == "kubectl":
            world.kubectl(call["argv"], call.get("stdin"), where)
        elif helm_render and call["argv"][:1] == ["install"]:
            argv = call["argv"]
            ns = argv[argv.index("-n") + 1] if "-n" in argv else "default"
            if "--create-namespace" in argv:
                world.namespaces.add(ns)
            elif ns not in world.namespaces:
                world.errors.append(f"{where}: namespace {ns} does not exist yet")
            args = ["template"] + [a for a in argv[1:] if a not in ("--create-namespace", "--wait")]
            p = helm(*args, ok=False)
            if p.returncode != 0:
                world.errors.append(f"{where}: {p.stderr.strip()}"); continue
            world.add_docs([d for d in yaml.safe_load_all(p.stdout) if d], ns, where)
        elif call["argv"][:1] not in (["uninstall"], ["upgrade"]):
            world.errors.append(f"{where}: unexpected helm command")
    return world.errors


# ----------------------------------------------------------------------------------------------
# notes: the commands of NOTES.txt, for several value sets
def notes_script(notes):
    """The shell commands in the notes: lines starting with kubectl or VAR=..., with heredocs."""
    out, lines, i = [], notes.splitlines(), 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("kubectl ") or re.match(r"^[A-Z_]+=\S+(\s+[A-Z_]+=\S+)*$", s):
            out.append(s)
            m = re.search(r"<<-?'?([A-Z]+)'?", s)
            if m:
                i += 1
                while i < len(lines) and lines[i] != m.group(1):
                    out.append(lines[i]); i += 1
                out.append(m.group(1))
        i += 1
    return "\n".join(out)


errs = []
notes_cases = [
    ("default", [], []),
    ("kind", [kind_values], []),
    ("aws", [aws_values, "apiKeys.existingSecret=salve-api-keys"], []),
    ("operator-only", ["oms.enabled=false", "ims.enabled=false"], ["my-app"]),
    ("shop-only", ["operator.enabled=false"], []),
    ("two namespaces", ["operator.policy.allowedNamespaces={payments,shop}"], []),
    ("other namespace", ["operator.policy.allowedNamespaces={payments}"], ["my-app"]),
    ("all namespaces, operator only", ["operator.policy.allowedNamespaces={*}", "oms.enabled=false", "ims.enabled=false"], ["my-app"]),
]
for label, vals, user_deployments in notes_cases:
    args = ["install", RELEASE, CHART, "-n", NS, "--dry-run=client"]
    for v in vals:
        args += ["-f", v] if v.endswith(".yaml") else ["--set", v]
    out = helm(*args).stdout
    if "\nNOTES:\n" not in out:
        errs.append(f"{label}: no NOTES in the install output"); continue
    manifest, notes = out.split("\nNOTES:\n", 1)
    for bad in re.findall(r"operator/examples\S*|charts/\S*|(?<![\w.])crds/\S*|kind/\S*|\S+\.ya?ml\b", notes):
        errs.append(f"{label}: the notes point at {bad!r}, which someone with only the chart does not have")
    docs = [d for d in yaml.safe_load_all(manifest.split("\nMANIFEST:\n", 1)[-1]) if isinstance(d, dict) and d.get("kind")]
    op = env(docs, f"{RELEASE}-operator")
    allowed = op.get("SALVE_ALLOWED_NAMESPACES", {}).get("value", NS).split(",")
    world = World({NS} | {n for n in allowed if n != "*"}, crds={"Incident", "Remediation"}, repo_files=False)
    world.add_docs(docs, NS, f"{label}: chart")
    ext = next((v.split("=", 1)[1] for v in vals if v.startswith("apiKeys.existingSecret=")), None)
    if ext:
        world.objects.add(("Secret", NS, ext))
    for n in user_deployments:   # the notes ask for one of the user's Deployments
        for ns in world.namespaces:
            world.objects.add(("Deployment", ns, n))
    script = notes_script(notes)
    if not script.strip():
        errs.append(f"{label}: the notes print no command"); continue
    errs += run_and_check(f"notes {label}", script, world, helm_render=False)
    if by(docs, "Deployment", f"{RELEASE}-operator") and not any(k == "Incident" for k, _, _ in world.objects):
        errs.append(f"{label}: the notes do not show how to create a test Incident")
if errs:
    fail("notes", errs)
print(f"  [notes] every printed command works with only the chart ({len(notes_cases)} value sets; test Incident validates and targets a rendered Deployment)")

# ----------------------------------------------------------------------------------------------
# examples: operator/examples/README.md, literally, on a fresh cluster
readme = open("operator/examples/README.md").read()
blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", readme, re.S)
script = "\n".join(blocks)
world = World(set())
errs = run_and_check("operator/examples/README.md", script, world, helm_render=True)
for needed in ("operator/examples/incident.yaml", "operator/examples/rbac.yaml", "operator/examples/operator.yaml"):
    if needed not in script:
        errs.append(f"operator/examples/README.md never applies {needed}")
if errs:
    fail("examples", errs)
print(f"  [examples] operator/examples/README.md runs in order on a fresh cluster ({len(blocks)} blocks): namespaces, files, targets, CRD schemas")
