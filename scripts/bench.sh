#!/usr/bin/env bash
# Benchmarks: each row compares forge-pack with a peer measured in the same run and prints
# the ratio. Later benchmarks add rows with `row` below. Needs hyperfine (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { scripts/install-deps.sh; apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --locked --quiet --bins --examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# mean NAME COMMAND: mean seconds of one command line, by hyperfine
mean() {
  hyperfine -N --warmup 2 --runs "${RUNS:-15}" --export-json "$work/$1.json" "$2" >/dev/null 2>&1
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/$1.json"
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

# --- packaging: ~100 files, ~5.5 MB of YAML with many CRDs ---------------------------------
python3 scripts/gen-bench-corpus.py "$work/corpus" 2>"$work/corpus.txt"
corpus_desc=$(cat "$work/corpus.txt")
ours=$(mean package "target/release/examples/package_dir $work/corpus")
peer=$(mean tar-gzip "bash -c \"tar -C '$work/corpus' -cf - . | gzip -6 | sha256sum\"")
peak=$(target/release/examples/package_dir "$work/corpus" 2>&1 | sed -n 's/.*peak=//p')
row "package ($corpus_desc)" "$ours" "tar|gzip -6|sha256sum" "$peer" 1.5 "peak RSS $peak"

printf '%-34s %12s  %-28s %12s  %7s  %s\n' "benchmark" "forge-pack" "peer" "peer time" "ratio" "target"
printf '%s\n' "${rows[@]}"
