#!/usr/bin/env bash
# A local OCI registry for trying forge-pack: `make registry` starts CNCF distribution on
# 127.0.0.1:5005 (data in .registry/), `make registry-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.registry
addr=${FORGE_LOCAL_REGISTRY:-127.0.0.1:5005}

case "${1:-start}" in
  start)
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "registry already running at $addr (pid $(cat "$dir/pid"))"; exit 0
    fi
    mkdir -p "$dir/data"
    cat > "$dir/config.yml" <<CONFIG
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $PWD/$dir/data}, delete: {enabled: true}}
http: {addr: "$addr", secret: local-only}
CONFIG
    nohup docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
        echo "registry running at $addr (data in $dir/); try: export FORGE_REGISTRY=$addr"; exit 0
      fi
      sleep 0.05
    done
    echo "error: the registry did not start; see $dir/log" >&2; exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; rm -f "$dir/pid"; echo "registry stopped"; fi
    ;;
esac
