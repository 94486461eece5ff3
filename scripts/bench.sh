#!/usr/bin/env bash
# Benchmarks: each row compares forge-pack with a peer measured in the same run and prints
# the ratio. Later benchmarks add rows with `row` below. Needs hyperfine (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { scripts/install-deps.sh; apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --locked --quiet --bins --examples
work=$(mktemp -d)
registry_pid=
trap 'rm -rf "$work"; [ -z "$registry_pid" ] || kill "$registry_pid"' EXIT

# Times are medians: on a shared machine a few runs are always slowed by neighbours, which
# moves a mean (and so a ratio) far more than the median.
# mean NAME COMMAND: median seconds of one command line, by hyperfine
mean() {
  hyperfine -N --warmup 2 --runs "${RUNS:-15}" --export-json "$work/$1.json" "$2" >/dev/null 2>&1
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/$1.json"
}

# alternate NAME COMMAND_A COMMAND_B: median seconds of each, by hyperfine, in rounds of a few
# runs each, A then B, so that a slow spell on the machine (they come and go within a
# minute here) slows both alike. For the close rows of commands that take milliseconds.
alternate() {
  for round in 1 2 3 4 5; do
    hyperfine -N --warmup 2 --runs "$(( (${RUNS:-15} + 4) / 5 ))" --export-json "$work/$1-a$round.json" "$2" >/dev/null 2>&1
    hyperfine -N --warmup 2 --runs "$(( (${RUNS:-15} + 4) / 5 ))" --export-json "$work/$1-b$round.json" "$3" >/dev/null 2>&1
  done
  python3 - "$work/$1" <<'PY'
import glob, json, sys
median = lambda xs: sorted(xs)[len(xs) // 2]
times = lambda side: [t for f in sorted(glob.glob(f"{sys.argv[1]}-{side}*.json")) for t in json.load(open(f))["results"][0]["times"]]
print(median(times("a")), median(times("b")))
PY
}

# fresh NAME RUNS COMMAND_WITH_{n}: median seconds when each run needs its own {n} (a fresh
# registry repository, say); hyperfine cannot vary a command per run.
fresh() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
name, runs, command = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = []
for n in range(runs + 1):
    start = time.perf_counter()
    subprocess.run(command.replace("{n}", f"{name}-{n}"), shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if n:  # the first run warms caches
        times.append(time.perf_counter() - start)
times.sort()
print(times[len(times) // 2])
PY
}

# pair RUNS PREPARE_A COMMAND_A COMMAND_B [PREPARE_B]: median seconds of each of two commands,
# run in turn (A, B, A, B, ...) so that a slow spell on the machine slows both alike;
# PREPARE_A runs untimed before each A (PREPARE_B before each B). For the close rows, whose
# ratio is the point.
pair() {
  python3 - "$@" <<'PY'
import shlex, subprocess, sys, time
runs, prepare, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
prepare_b = sys.argv[5] if len(sys.argv) > 5 else ""
quiet = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
# A shell only where the command line needs one (as hyperfine -N).
argv = lambda c: ["bash", "-c", c] if any(ch in c for ch in "&|;<>") else shlex.split(c)
times = {a: [], b: []}
for n in range(runs + 2):
    for command in (a, b):
        if command == a and prepare:
            subprocess.run(argv(prepare), **quiet)
        if command == b and prepare_b:
            subprocess.run(argv(prepare_b), **quiet)
        start = time.perf_counter()
        subprocess.run(argv(command), **quiet)
        if n >= 2:  # the first two rounds warm caches
            times[command].append(time.perf_counter() - start)
median = lambda xs: sorted(xs)[len(xs) // 2]
print(median(times[a]), median(times[b]))
PY
}

# A real registry on a free loopback port for the registry rows.
start_registry() {
  mkdir -p "$work/registry"
  printf 'version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\nhttp:\n  secret: bench\n' > "$work/registry/config.yml"
  REGISTRY_HTTP_ADDR=127.0.0.1:0 REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$work/registry/data" \
    docker-registry serve "$work/registry/config.yml" 2>"$work/registry/log" &
  registry_pid=$!
  for _ in $(seq 200); do
    reg=$(sed -n 's/.*"msg":"listening on \([0-9.:]*\).*/\1/p' "$work/registry/log" | head -1)
    [ -n "$reg" ] && return 0
    sleep 0.05
  done
  echo "docker-registry did not start" >&2; exit 1
}

rows=()
# row NAME OURS_SECONDS PEER_NAME PEER_SECONDS TARGET_RATIO EXTRA
row() {
  rows+=("$(python3 -c '
import sys
name, ours, peer_name, peer, target, extra = sys.argv[1:]
ratio = float(ours) / float(peer)
verdict = "ok" if ratio <= float(target) else "SLOWER THAN TARGET"
print(f"{name:<34} {float(ours)*1000:>9.1f} ms  {peer_name:<28} {float(peer)*1000:>9.1f} ms  {ratio:>6.2f}x  <= {target}x  {verdict}  {extra}")
' "$@")")
}

# peak FILE COMMAND...: runs COMMAND once and prints its peak RSS in MB.
peak() {
  /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>&1
  python3 -c 'import sys; print(round(int(open(sys.argv[1]).read().split()[-1]) / 1024))' "$work/rss"
}

fp=$PWD/target/release/forge-pack
cmp=$PWD/target/release/forge-cmp
commit=$(printf 'b%.0s' $(seq 40))

# project NAME GEN_ARGS: a project whose templates are a generated corpus; its description.
project() {
  python3 scripts/gen-bench-corpus.py "$work/corpus-$1" ${2:-} 2>"$work/corpus-$1.txt"
  mkdir -p "$work/project-$1"
  cp -r "$work/corpus-$1" "$work/project-$1/templates"
  printf 'project: app\nrepository: bench\n' > "$work/project-$1/forge.yaml"
  cat "$work/corpus-$1.txt"
}

# --- packaging through the CLI, at two scales: `forge-pack build` against tar|gzip|sha256sum --
# build_row NAME TARGET RSS_LIMIT_MB RUNS
build_row() {
  local build="$fp build -q -C $work/project-$1 --registry oci:$work/build-$1 --commit $commit --commit-time 2024-05-01T00:00:00Z"
  read -r ours peer < <(pair "$4" "rm -rf $work/build-$1" "$build" "tar -C $work/corpus-$1 -cf - . | gzip -6 | sha256sum")
  rm -rf "$work/build-$1"
  local rss; rss=$(peak $build)
  row "build $desc" "$ours" "tar|gzip -6|sha256sum" "$peer" "$2" \
    "peak RSS ${rss} MB (<= $3 MB: $(python3 -c "print('ok' if $rss <= $3 else 'TOO MUCH')"))"
}
desc=$(project small)
build_row small 1.2 150 "${RUNS:-15}"
desc=$(project large --large)
build_row large 3.0 150 7
project=$work/project-small
"$fp" build -q -C "$project" --registry "oci:$work/layouts" --commit "$commit" --commit-time 2024-05-01T00:00:00Z >/dev/null
layout="$work/layouts/bench/app"

# --- the same corpus as a project: upload, list, copy, and the Argo CD plugin ----------------
start_registry
ours=$(fresh up-ours 10 "target/release/examples/copy_release $layout $commit $reg/{n}/app")
peer=$(fresh up-skopeo 10 "skopeo copy -q --dest-tls-verify=false oci:$layout:$commit docker://$reg/{n}/app:$commit")
row "upload a built release (fresh repo)" "$ours" "skopeo copy" "$peer" 1.0 ""

target/release/examples/seed_releases "$reg/bench/many" 1000
ours=$(mean list "$fp --registry $reg list bench/many --output json")
peer=$(mean list-tags "skopeo list-tags --tls-verify=false docker://$reg/bench/many")
row "list 1,000 releases" "$ours" "skopeo list-tags (tags only)" "$peer" 10 "must be < 2 s: $(python3 -c "print('ok' if $ours < 2 else 'TOO SLOW')")"

# Copying a project's releases to another repository: forge-pack copy --all against skopeo
# copying each of the same tags.
target/release/examples/seed_releases "$reg/bench/fifty" 50
skopeo list-tags --tls-verify=false "docker://$reg/bench/fifty" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["Tags"]))' > "$work/fifty-tags"
ours=$(fresh copy-ours 3 "$fp -q copy $reg/bench/fifty $reg/{n}/app --all")
peer=$(fresh copy-skopeo 3 "for t in \$(cat $work/fifty-tags); do skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$reg/bench/fifty:\$t docker://$reg/{n}/app:\$t; done")
row "copy 50 releases (--all)" "$ours" "skopeo copy of each tag" "$peer" 1.0 ""

"$fp" push -q -C "$project" --registry "$reg/cmp" --commit "$commit" --commit-time 2024-05-01T00:00:00Z --manual >/dev/null
app="$work/app"; mkdir -p "$app"
printf 'apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: app\nspec:\n  image: %s/cmp/bench/app\n  commit: %s\n' "$reg" "$commit" > "$app/release.yaml"
"$fp" pull --registry "$reg/cmp" "bench/app:$commit" --out "$work/extracted" >/dev/null 2>&1
export FORGE_CMP_CACHE_DIR="$work/cmp-cache" FORGE_CMP_ALLOWED_IMAGES="$reg/cmp/"
(cd "$app" && "$cmp" generate >/dev/null)
files=$(find "$work/extracted" -name '*.yaml' | sort | tr '\n' ' ')
read -r ours peer < <(cd "$app" && alternate cmp-warm "$cmp generate" "cat $files")
row "forge-cmp generate, warm cache" "$ours" "cat of the same files" "$peer" 2.0 ""

layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["layers"][0]["digest"].split(":")[1])' \
  "$(find "$FORGE_CMP_CACHE_DIR/blobs/sha256" -type f | xargs grep -l '"layers"' | head -1)")
read -r ours peer < <(cd "$app" && pair "${RUNS:-15}" "rm -rf $FORGE_CMP_CACHE_DIR" "$cmp generate" \
  "rm -rf $work/sk && skopeo copy -q --src-tls-verify=false docker://$reg/cmp/bench/app:$commit oci:$work/sk:x && mkdir $work/sk/x && tar -xzf $work/sk/blobs/sha256/$layer -C $work/sk/x")
row "forge-cmp generate, cold cache" "$ours" "skopeo copy + tar x" "$peer" 0.4 ""

# The plugin at the large scale point (20,000 objects): warm against cat, cold reported.
"$fp" push -q -C "$work/project-large" --registry "$reg/cmp-large" --commit "$commit" --commit-time 2024-05-01T00:00:00Z --manual >/dev/null
app_large="$work/app-large"; mkdir -p "$app_large"
sed "s|$reg/cmp/bench/app|$reg/cmp-large/bench/app|" "$app/release.yaml" > "$app_large/release.yaml"
"$fp" pull --registry "$reg/cmp-large" "bench/app:$commit" --out "$work/extracted-large" >/dev/null 2>&1
large_cache="$work/cmp-cache-large"
(cd "$app_large" && FORGE_CMP_CACHE_DIR=$large_cache FORGE_CMP_ALLOWED_IMAGES="$reg/cmp-large/" "$cmp" generate >/dev/null)
# The peer is cat of generate's own output, one file: cat of the 20,000 extracted files
# would be slower than forge-cmp for reasons that have nothing to do with it.
(cd "$app_large" && FORGE_CMP_CACHE_DIR=$large_cache FORGE_CMP_ALLOWED_IMAGES="$reg/cmp-large/" "$cmp" generate > "$work/large-output.yaml")
read -r ours peer < <(cd "$app_large" && FORGE_CMP_CACHE_DIR=$large_cache FORGE_CMP_ALLOWED_IMAGES="$reg/cmp-large/" \
  alternate cmp-warm-large "$cmp generate" "cat $work/large-output.yaml")
rss=$(cd "$app_large" && FORGE_CMP_CACHE_DIR=$large_cache FORGE_CMP_ALLOWED_IMAGES="$reg/cmp-large/" peak "$cmp" generate)
row "forge-cmp generate, warm, large" "$ours" "cat of its output (one file)" "$peer" 2.0 "peak RSS ${rss} MB"
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["layers"][0]["digest"].split(":")[1])' \
  "$(find "$large_cache/blobs/sha256" -type f -size -64k | xargs grep -l '"layers"' | head -1)")
read -r ours peer < <(cd "$app_large" && FORGE_CMP_CACHE_DIR=$large_cache FORGE_CMP_ALLOWED_IMAGES="$reg/cmp-large/" pair 5 "rm -rf $large_cache" "$cmp generate" \
  "rm -rf $work/sk && skopeo copy -q --src-tls-verify=false docker://$reg/cmp-large/bench/app:$commit oci:$work/sk:x && mkdir $work/sk/x && tar -xzf $work/sk/blobs/sha256/$layer -C $work/sk/x")
row "forge-cmp generate, cold, large" "$ours" "skopeo copy + tar x" "$peer" 1.0 "(reported)"

# --- signatures: signing against cosign, and what verifying costs the plugin ----------------
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$work/ci.key"
openssl ec -in "$work/ci.key" -pubout -out "$work/ci.pub" 2>/dev/null
cosign=$(command -v cosign || echo "$HOME/go/bin/cosign")
export COSIGN_PASSWORD=bench
(cd "$work" && HOME="$work" "$cosign" generate-key-pair >/dev/null 2>&1)
ours=$(mean sign "$fp --registry $reg/cmp sign bench/app:$commit --key $work/ci.key")
# cosign adds a bundle per run: it signs a copy elsewhere, so the plugin's release keeps one.
"$fp" push -q -C "$project" --registry "$reg/cosign" --commit "$commit" --commit-time 2024-05-01T00:00:00Z --manual >/dev/null
digest=$("$fp" --registry "$reg/cosign" inspect "bench/app:$commit" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
peer=$(RUNS=5 mean cosign-sign \
  "$cosign sign --key $work/cosign.key --use-signing-config=false --tlog-upload=false -y $reg/cosign/bench/app@$digest")
row "sign a release (bundle + .sig)" "$ours" "cosign sign (bundle, offline)" "$peer" 1.0 ""
export FORGE_CMP_TRUSTED_KEYS="$work/ci.pub"
(cd "$app" && rm -rf "$FORGE_CMP_CACHE_DIR" && "$cmp" generate >/dev/null)
read -r ours peer < <(cd "$app" && alternate cmp-warm-signed "$cmp generate" "cat $files")
row "forge-cmp generate, warm, signed" "$ours" "cat of the same files" "$peer" 2.0 ""
# Both cold, in turn: the difference is what verifying costs.
read -r ours peer < <(cd "$app" && pair "${RUNS:-15}" "rm -rf $FORGE_CMP_CACHE_DIR" "$cmp generate" \
  "env -u FORGE_CMP_TRUSTED_KEYS $cmp generate" "rm -rf $FORGE_CMP_CACHE_DIR")
# The target is absolute: verifying may add at most 10 ms to a cold generate.
row "forge-cmp generate, cold, signed" "$ours" "the same, no signature rule" "$peer" "$(python3 -c "print(round(1 + 0.010 / $peer, 2))")" \
  "verifying costs $(python3 -c "print(f'{($ours - $peer) * 1000:.1f} ms')") (target < 10 ms)"
unset FORGE_CMP_TRUSTED_KEYS COSIGN_PASSWORD

# --- rendering: YAML parse of the corpus, and a Jsonnet workload against its peers -----------
ours=$(mean render-yaml "$fp render -C $project --output json")
row "render 5.6 MB of YAML" "$ours" "cat of the same files" "$(mean cat-corpus "cat $files")" 1000 "must be < 1 s: $(python3 -c "print('ok' if $ours < 1 else 'TOO SLOW')")"
python3 -c 'import _gojsonnet' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore gojsonnet
jb=scripts/bench-jsonnet
read -r ours engine < <(pair 25 "" "$fp render -C $jb" "$PWD/target/release/examples/jsonnet_engine $jb/templates/workload.jsonnet")
row "render Jsonnet (300 Deployments)" "$ours" "jrsonnet engine alone" "$engine" 1.2 "(engine on the system allocator, as jrsonnet ships; forge-pack on mimalloc)"
gojsonnet=$(RUNS=3 mean gojsonnet "python3 -c \"import _gojsonnet; _gojsonnet.evaluate_file('$jb/templates/workload.jsonnet')\"")
row "render Jsonnet (300 Deployments)" "$ours" "go-jsonnet (PyPI gojsonnet)" "$gojsonnet" 0.05 "(at least 20x faster)"

printf '%-34s %12s  %-28s %12s  %7s  %s\n' "benchmark" "forge-pack" "peer" "peer time" "ratio" "target"
printf '%s\n' "${rows[@]}"
