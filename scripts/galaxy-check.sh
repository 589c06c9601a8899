#!/usr/bin/env bash
# Packaging checks of securestack.pki: what Galaxy users, AWX and Automation
# Controller get.
#
#   scripts/galaxy-check.sh [--allow-no-repository]
#
#  1. dependencies   every collection the roles and playbooks call is declared
#                    in galaxy.yml, requirements.yml and ee/requirements.yml,
#                    pinned in the latter to the version the tests use
#  2. build          ansible-galaxy collection build; the tarball's files and
#                    size are printed, and it must hold no test bed leftovers
#  3. install        ansible-galaxy collection install -p EMPTYDIR TARBALL
#  4. installed copy with ANSIBLE_COLLECTIONS_PATH=EMPTYDIR only (the ansible
#                    package's bundled collections are found by ansible itself):
#                    ansible-doc of every module and role, --syntax-check of
#                    every playbook by its FQCN, and a real run of
#                    securestack.pki.ca against a throwaway systemd container
#  5. importer       Galaxy's import checks (galaxy-importer, offline, without
#                    ansible-test), which must report no error and no warning
#  6. changelog      antsibull-changelog lint, changelog.yaml lint, CHANGELOG.md
#                    is what `antsibull-changelog generate` writes
#  7. ee             ansible-builder create renders execution-environment.yml,
#                    and the build's introspection step runs on the installed
#                    collections
#
# Galaxy refuses a collection whose galaxy.yml has no `repository`. Until the
# collection has a public repository, --allow-no-repository (or
# GALAXY_CHECK_ALLOW_NO_REPOSITORY=1) turns that into a warning and gives the
# importer a copy of the tarball whose MANIFEST.json names a placeholder
# repository, so that every other import check still runs.
#
# Tools: .venv (ansible, docker connection), .venv-galaxy (requirements/galaxy.txt:
# galaxy-importer, antsibull-changelog, ansible-builder), the image
# securestack/debian:12 and docker. Work files stay in .cache/galaxy-check.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
work=$root/.cache/galaxy-check
container=galaxy-check-ca
image=securestack/debian:12
max_kib=${GALAXY_CHECK_MAX_KIB:-1024}
allow_no_repository=${GALAXY_CHECK_ALLOW_NO_REPOSITORY:-0}
placeholder_repository=https://example.invalid/securestack/pki

for arg in "$@"; do
    case "$arg" in
        --allow-no-repository) allow_no_repository=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "galaxy-check: unknown argument $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[galaxy-check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[galaxy-check] ERROR: %s\n' "$*" >&2; exit 1; }

failures=()
fail() {
    printf '[galaxy-check] FAIL: %s\n' "$*" >&2
    failures+=("$*")
}

timings=()
step_start=0
step_name=
begin() {
    step_name=$1
    step_start=$(date +%s)
    log "== $step_name"
}
end() {
    timings+=("$(printf '%-14s %4ss' "$step_name" $(($(date +%s) - step_start)))")
}

venv=$root/.venv
gvenv=$root/.venv-galaxy
[ -x "$venv/bin/ansible-galaxy" ] || die ".venv is missing: run make setup"
if [ ! -x "$gvenv/bin/python" ] \
    || [ "$(cat "$gvenv/.requirements.sha256" 2>/dev/null)" != "$(sha256sum requirements/galaxy.txt | cut -d' ' -f1)" ]; then
    die ".venv-galaxy is missing or older than requirements/galaxy.txt: run scripts/setup.sh venvs"
fi
command -v docker > /dev/null || die "docker is missing: run make setup"
docker image inspect "$image" > /dev/null 2>&1 || die "image $image is missing: run make setup"

version=$("$venv/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml)
tarball_name=securestack-pki-$version.tar.gz

rm -rf "$work"
mkdir -p "$work"/{dist,collections,run,importer,ee}
collections=$work/collections
installed=$collections/ansible_collections/securestack/pki

importer_pid=
cleanup() {
    local rc=$?
    if [ -n "$importer_pid" ]; then
        kill "$importer_pid" 2> /dev/null || true
    fi
    docker rm -f "$container" > /dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT

# 1. ---------------------------------------------------------------------------
begin dependencies
if ! "$venv/bin/python" - "$venv/lib/python3.11/site-packages/ansible_collections" << 'EOF'; then
import json
import re
import sys
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

bundled = Path(sys.argv[1])
own = {"ansible.builtin", "ansible.legacy", "securestack.pki"}
# Module calls (task keys), filters, tests and lookups by FQCN.
patterns = [
    re.compile(r"^\s*(?:-\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:", re.M),
    re.compile(r"\|\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
    re.compile(r"\bis\s+(?:not\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
    re.compile(r"\b(?:lookup|query|q)\(\s*['\"]([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
]
used: dict[str, set[str]] = {}
files = [*Path("roles").rglob("*.yml"), *Path("roles").rglob("*.yaml"), *Path("roles").rglob("*.j2")]
files += [*Path("playbooks").glob("*.yml"), *Path("playbooks").glob("*.yaml")]
for path in sorted(files):
    text = path.read_text(encoding="utf-8")
    for pattern in patterns:
        for name in pattern.findall(text):
            # Dotted variables (`ansible_facts.default_ipv4.address`) match
            # too: a collection's namespace is one the ansible package knows.
            if name not in own and (bundled / name.split(".")[0]).is_dir():
                used.setdefault(name, set()).add(str(path))

galaxy = yaml.safe_load(Path("galaxy.yml").read_text(encoding="utf-8"))
declared = galaxy.get("dependencies") or {}
top = {c["name"]: c.get("version", "*") for c in yaml.safe_load(Path("requirements.yml").read_text())["collections"]}
ee = {c["name"]: c.get("version") for c in yaml.safe_load(Path("ee/requirements.yml").read_text())["collections"]}
problems: list[str] = []
print("collections the roles and playbooks call:")
for name in sorted(used):
    manifest = bundled / name.replace(".", "/") / "MANIFEST.json"
    if not manifest.is_file():
        problems.append(f"{name} is used ({sorted(used[name])[0]} ...) but the ansible package of the tests lacks it")
        continue
    tested = json.loads(manifest.read_text())["collection_info"]["version"]
    print(f"  {name} {tested} (tested), from {len(used[name])} file(s)")
    if name not in declared:
        problems.append(f"{name} is used ({sorted(used[name])[0]} ...) but not a dependency in galaxy.yml")
    else:
        spec = str(declared[name])
        if spec != "*" and Version(tested) not in SpecifierSet(spec):
            problems.append(f"galaxy.yml wants {name} {spec}, the tests use {tested}")
    if name not in top:
        problems.append(f"{name} is used but missing from requirements.yml")
    elif str(top[name]) != str(declared.get(name)):
        problems.append(f"requirements.yml wants {name} {top[name]}, galaxy.yml {declared.get(name)}")
    if ee.get(name) != tested:
        problems.append(f"ee/requirements.yml must pin {name} to the tested {tested} (has {ee.get(name)})")
for name in sorted(set(declared) | set(top) | (set(ee) - {"securestack.pki"})):
    if name not in used:
        problems.append(f"{name} is declared (galaxy.yml, requirements.yml or ee/requirements.yml) but no role calls it")
if str(ee.get("securestack.pki")) != str(galaxy["version"]):
    problems.append(f"ee/requirements.yml must pin securestack.pki to galaxy.yml's {galaxy['version']}")
for problem in problems:
    print(f"  PROBLEM: {problem}")
sys.exit(1 if problems else 0)
EOF
    fail "collection dependencies: galaxy.yml, requirements.yml and ee/requirements.yml disagree with what the roles call"
fi
end

# 2. ---------------------------------------------------------------------------
begin build
"$venv/bin/ansible-galaxy" collection build --output-path "$work/dist" . > "$work/build.log" 2>&1 \
    || { cat "$work/build.log"; die "ansible-galaxy collection build failed"; }
tarball=$work/dist/$tarball_name
[ -f "$tarball" ] || die "no $tarball_name after the build"
tar -tzf "$tarball" | sed 's,^\./,,; /\/$/d' | sort > "$work/tarball-files.txt"
size=$(stat -c %s "$tarball")
log "$tarball_name: $(wc -l < "$work/tarball-files.txt") files, $((size / 1024)) KiB (limit ${max_kib} KiB)"
log "files per top-level directory:"
awk -F/ '{ print (NF > 1 ? $1 "/" : $1) }' "$work/tarball-files.txt" | uniq -c | sed 's/^/    /'
log "full list: $work/tarball-files.txt"
[ "$((size / 1024))" -le "$max_kib" ] || fail "the tarball is $((size / 1024)) KiB, over ${max_kib} KiB: check build_ignore in galaxy.yml"
leftovers=$(grep -E '(^|/)(\.venv[^/]*|\.cache|\.ansible|\.git|\.github|\.pytest_cache|\.ruff_cache|\.mypy_cache|__pycache__|node_modules|molecule|build|dist|[^/]*\.egg-info)(/|$)|\.py[co]$|\.tar\.gz$|^\.[^/]+$|^(tests/output|images|scripts|requirements|demo|ee|context)/' \
    "$work/tarball-files.txt" || true)
if [ -n "$leftovers" ]; then
    printf '%s\n' "$leftovers" | head -n 20 | sed 's/^/    /'
    fail "the tarball holds test bed or build leftovers (above): extend build_ignore in galaxy.yml"
fi
expected=(MANIFEST.json FILES.json README.md CHANGELOG.md meta/runtime.yml meta/execution-environment.yml
    meta/ee-requirements.txt changelogs/changelog.yaml changelogs/config.yaml docs/variables.md
    portal/pyproject.toml portal/requirements.lock)
for f in plugins/modules/*.py plugins/module_utils/*.py playbooks/*.yml roles/*/meta/main.yml; do
    expected+=("$f")
done
for f in "${expected[@]}"; do
    grep -qxF "$f" "$work/tarball-files.txt" || fail "the tarball lacks $f"
done
end

# The importer runs in the background from here (it is CPU-bound, the
# container run below mostly waits on apt).
repository=$("$venv/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get("repository") or "")' galaxy.yml)
import_tarball=$tarball
if [ -z "$repository" ]; then
    if [ "$allow_no_repository" = 1 ]; then
        log "WARNING: galaxy.yml has no repository (Galaxy refuses such an import); the importer gets a copy naming $placeholder_repository"
    else
        fail "galaxy.yml has no repository: Galaxy refuses the import (--allow-no-repository checks the rest)"
    fi
    mkdir -p "$work/importer/staged/tree"
    tar -xzf "$tarball" -C "$work/importer/staged/tree"
    "$venv/bin/python" - "$work/importer/staged/tree/MANIFEST.json" "$placeholder_repository" << 'EOF'
import json
import sys

path, url = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as handle:
    manifest = json.load(handle)
manifest["collection_info"]["repository"] = url
with open(path, "w", encoding="utf-8") as handle:
    json.dump(manifest, handle, indent=4)
EOF
    import_tarball=$work/importer/staged/$tarball_name
    tar -czf "$import_tarball" -C "$work/importer/staged/tree" .
fi
cat > "$work/importer/galaxy-importer.cfg" << EOF
[galaxy-importer]
# Offline, no container runtime: ansible-test sanity is make sanity's job.
run_ansible_test = false
run_ansible_doc = true
run_ansible_lint = true
offline_ansible_lint = true
check_changelog = true
ansible_local_tmp = $work/importer/tmp
log_level_main = INFO
EOF
(
    cd "$work/importer"
    exec env -u ANSIBLE_COLLECTIONS_PATH -u ANSIBLE_CONFIG \
        GALAXY_IMPORTER_CONFIG="$work/importer/galaxy-importer.cfg" PATH="$gvenv/bin:$PATH" \
        "$gvenv/bin/python" -m galaxy_importer.main "$import_tarball"
) > "$work/importer/output.txt" 2>&1 &
importer_pid=$!
importer_start=$(date +%s)

# 3. ---------------------------------------------------------------------------
begin install
cat > "$work/run/ansible.cfg" << 'EOF'
# What a user of the installed collection has: no settings of the test bed,
# besides pipelining (fewer round trips through `docker exec`) and task timings.
[defaults]
interpreter_python = auto_silent
retry_files_enabled = false
callbacks_enabled = ansible.posix.profile_tasks

[connection]
pipelining = true
EOF
export ANSIBLE_CONFIG=$work/run/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_NOCOLOR=1
export PATH=$venv/bin:$PATH
(cd "$work/run" && ansible-galaxy collection install -p "$collections" "$tarball") > "$work/install.log" 2>&1 \
    || { cat "$work/install.log"; die "ansible-galaxy collection install failed"; }
sed 's/^/    /' "$work/install.log"
found=$(cd "$work/run" && ansible-galaxy collection list securestack.pki --format json)
paths=$(printf '%s' "$found" | python3 -c 'import json, sys; print(" ".join(k for k, v in json.load(sys.stdin).items() if v))')
[ "$paths" = "$collections/ansible_collections" ] \
    || die "ansible sees securestack.pki in '$paths', not only in the installed copy"
end

# 4. ---------------------------------------------------------------------------
# The throwaway CA container boots while ansible-doc and the syntax checks run.
# systemd as PID 1 with the flags of molecule/ca/molecule.yml.
docker rm -f "$container" > /dev/null 2>&1 || true
docker run -d --name "$container" --hostname "$container" \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
    --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp --stop-signal SIGRTMIN+3 \
    "$image" /sbin/init > /dev/null

begin ansible-doc
list_modules() { find "$1" -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf '%f\n' | sed 's/\.py$//' | sort; }
mapfile -t modules < <(list_modules "$installed/plugins/modules")
mapfile -t checkout_modules < <(list_modules plugins/modules)
[ "${modules[*]}" = "${checkout_modules[*]}" ] \
    || fail "the installed copy has modules '${modules[*]}', the checkout '${checkout_modules[*]}'"
(cd "$work/run" && ansible-doc "${modules[@]/#/securestack.pki.}") > "$work/ansible-doc-modules.txt" 2>&1 \
    || fail "ansible-doc of the modules failed (see $work/ansible-doc-modules.txt)"
for m in "${modules[@]}"; do
    if grep -q "^> MODULE securestack\.pki\.$m " "$work/ansible-doc-modules.txt"; then
        log "ansible-doc securestack.pki.$m: ok"
    else
        fail "ansible-doc securestack.pki.$m shows no documentation"
    fi
done
mapfile -t roles < <(cd "$installed/roles" && ls)
(cd "$work/run" && ansible-doc -t role "${roles[@]/#/securestack.pki.}") > "$work/ansible-doc-roles.txt" 2>&1 \
    || fail "ansible-doc -t role failed (see $work/ansible-doc-roles.txt)"
for r in "${roles[@]}"; do
    if grep -qE "^> ROLE: \*?securestack\.pki\.$r\*? " "$work/ansible-doc-roles.txt"; then
        log "ansible-doc -t role securestack.pki.$r: ok"
    else
        fail "ansible-doc -t role securestack.pki.$r shows no argument spec"
    fi
done
if grep -E '^\[(WARNING|ERROR)\]' "$work/ansible-doc-modules.txt" "$work/ansible-doc-roles.txt"; then
    fail "ansible-doc warned (above)"
fi
end

begin syntax-check
cat > "$work/run/inventory.yml" << EOF
---
# The throwaway CA container of scripts/galaxy-check.sh.
all:
  children:
    ca:
      hosts:
        $container:
EOF
for playbook in "$installed"/playbooks/*.yml; do
    name=securestack.pki.$(basename "$playbook" .yml)
    if (cd "$work/run" && ansible-playbook --syntax-check -i inventory.yml "$name") > "$work/syntax-$name.log" 2>&1; then
        log "ansible-playbook --syntax-check $name: ok"
    else
        sed 's/^/    /' "$work/syntax-$name.log"
        fail "ansible-playbook --syntax-check $name"
    fi
done
end

begin run-ca
state=
for _ in $(seq 60); do
    state=$(docker exec "$container" systemctl is-system-running 2> /dev/null || true)
    [ "$state" = running ] || [ "$state" = degraded ] && break
    sleep 1
done
log "systemd in $container: ${state:-no answer}"
if (cd "$work/run" && ansible-playbook -i inventory.yml -c community.docker.docker securestack.pki.ca) \
    > "$work/run-ca.log" 2>&1; then
    grep -A3 '^PLAY RECAP' "$work/run-ca.log" | sed 's/^/    /'
    # The slowest tasks (profile_tasks' summary at the end of the log).
    sed -n '/^=====/,$p' "$work/run-ca.log" | sed -n '2,6p' | sed 's/^/    /'
    base=/var/lib/securestack-pki
    if docker exec "$container" openssl verify -x509_strict -CAfile "$base/root/ca.crt" "$base/services/ca.crt" \
        > "$work/verify.log" 2>&1; then
        log "services CA verifies against the root CA in $container"
    else
        cat "$work/verify.log"
        fail "the CAs made by securestack.pki.ca do not verify"
    fi
    timer=$(docker exec "$container" systemctl is-active securestack-pki-crl.timer || true)
    [ "$timer" = active ] || fail "securestack-pki-crl.timer is $timer after securestack.pki.ca"
else
    tail -n 40 "$work/run-ca.log" | sed 's/^/    /'
    fail "ansible-playbook securestack.pki.ca from the installed copy (log: $work/run-ca.log)"
fi
docker rm -f "$container" > /dev/null 2>&1 || true
end

# 5. ---------------------------------------------------------------------------
begin importer
importer_rc=0
wait "$importer_pid" || importer_rc=$?
importer_pid=
log "galaxy-importer took $(($(date +%s) - importer_start))s (in the background):"
sed 's/^/    /' "$work/importer/output.txt"
if [ "$importer_rc" != 0 ] || ! grep -q '^Importer processing completed successfully' "$work/importer/output.txt"; then
    fail "galaxy-importer did not complete (exit $importer_rc)"
fi
if grep -qE '^(ERROR|WARNING|CRITICAL):' "$work/importer/output.txt"; then
    fail "galaxy-importer reported errors or warnings (above)"
fi
if [ -f "$work/importer/importer_result.json" ]; then
    missing=$("$venv/bin/python" - "$work/importer/importer_result.json" "${modules[@]}" -- "${roles[@]}" << 'EOF'
import json
import sys

result = json.load(open(sys.argv[1], encoding="utf-8"))
split = sys.argv.index("--")
wanted = {("module", m) for m in sys.argv[2:split]} | {("role", r) for r in sys.argv[split + 1 :]}
found = {(c["content_type"], c["name"]) for c in result.get("contents", [])}
print(" ".join(f"{kind}:{name}" for kind, name in sorted(wanted - found)))
EOF
)
    [ -z "$missing" ] || fail "galaxy-importer did not find $missing"
else
    fail "galaxy-importer wrote no importer_result.json"
fi
end

# 6. ---------------------------------------------------------------------------
begin changelog
changelog=("$gvenv/bin/antsibull-changelog")
"${changelog[@]}" lint || fail "antsibull-changelog lint (changelogs/fragments)"
"${changelog[@]}" lint-changelog-yaml changelogs/changelog.yaml || fail "antsibull-changelog lint-changelog-yaml"
"$venv/bin/python" - "$version" << 'EOF' || fail "changelogs/changelog.yaml has no release $version"
import sys

import yaml

releases = yaml.safe_load(open("changelogs/changelog.yaml", encoding="utf-8")).get("releases") or {}
sys.exit(0 if sys.argv[1] in releases else 1)
EOF
"${changelog[@]}" generate --output "$work/CHANGELOG.md" > /dev/null
if ! diff -u CHANGELOG.md "$work/CHANGELOG.md" > "$work/CHANGELOG.diff"; then
    head -n 20 "$work/CHANGELOG.diff" | sed 's/^/    /'
    fail "CHANGELOG.md is not what antsibull-changelog generate writes (run .venv-galaxy/bin/antsibull-changelog generate)"
fi
end

# 7. ---------------------------------------------------------------------------
begin ee
context=$work/ee/context
"$gvenv/bin/ansible-builder" create -f execution-environment.yml -c "$context" --output-filename Containerfile \
    > "$work/ee/create.log" 2>&1 || { cat "$work/ee/create.log"; die "ansible-builder create failed"; }
for f in Containerfile _build/requirements.yml _build/requirements.txt _build/bindep.txt _build/scripts/introspect.py; do
    [ -f "$context/$f" ] || fail "ansible-builder create wrote no $f"
done
cmp -s ee/requirements.yml "$context/_build/requirements.yml" || fail "the EE context's requirements.yml is not ee/requirements.yml"
grep -E '^ARG (EE_BASE_IMAGE|PYCMD|ANSIBLE_INSTALL_REFS)=' "$context/Containerfile" | sed 's/^/    /'
# The build's introspection step, on the installed copy and the collections
# ee/requirements.yml names (from the ansible package): what the image gets.
eecols=$work/ee/collections/ansible_collections
mkdir -p "$eecols/securestack"
ln -s "$installed" "$eecols/securestack/pki"
while read -r name; do
    [ "$name" = securestack.pki ] && continue
    mkdir -p "$eecols/${name%%.*}"
    ln -s "$venv/lib/python3.11/site-packages/ansible_collections/${name/.//}" "$eecols/${name%%.*}/${name#*.}"
done < <("$venv/bin/python" -c 'import yaml; [print(c["name"]) for c in yaml.safe_load(open("ee/requirements.yml"))["collections"]]')
if "$gvenv/bin/python" "$context/_build/scripts/introspect.py" introspect \
    --user-pip="$context/_build/requirements.txt" --user-bindep="$context/_build/bindep.txt" \
    --write-pip="$work/ee/requirements.txt" --write-bindep="$work/ee/bindep.txt" "$work/ee/collections" \
    > "$work/ee/introspect.log" 2>&1; then
    log "the image's Python packages:"
    sed 's/^/    /' "$work/ee/requirements.txt"
    log "the image's system packages (bindep):"
    sed 's/^/    /' "$work/ee/bindep.txt"
    grep -q 'from collection securestack.pki' "$work/ee/requirements.txt" \
        || fail "introspection found no requirement of securestack.pki (meta/execution-environment.yml)"
    bindep_rc=0
    "$gvenv/bin/bindep" -l newline -f "$work/ee/bindep.txt" > /dev/null 2>&1 || bindep_rc=$?
    [ "$bindep_rc" != 2 ] || fail "bindep cannot parse the EE's system packages"
else
    cat "$work/ee/introspect.log"
    fail "ansible-builder's introspection failed"
fi
end

# ------------------------------------------------------------------------------
log "timings:"
printf '    %s\n' "${timings[@]}"
if [ ${#failures[@]} -gt 0 ]; then
    log "${#failures[@]} check(s) failed:"
    printf '    %s\n' "${failures[@]}"
    exit 1
fi
log "all packaging checks passed ($tarball_name, $((size / 1024)) KiB)"
