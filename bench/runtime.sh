#!/usr/bin/env bash
# The runtime table of bench/RESULTS.md (section 8): the runtime (SQLite, PostgreSQL) vs bare
# tonic, each server in its own process pinned to CPU 0, the load generator and h2load pinned to
# CPU 1, plus a perf profile of the SQLite runtime. Installs its tools when missing (pinned
# Debian versions, idempotent), then runs the benchmark with the arguments given, e.g.
#   bench/runtime.sh --seconds 5 --rounds 5 --postgres postgres://postgres@127.0.0.1:5432/test
set -euo pipefail
cd "$(dirname "$0")/.."

H2LOAD_PKG="nghttp2-client=1.52.0-1+deb12u3"

need=()
command -v h2load >/dev/null || need+=("$H2LOAD_PKG")
command -v perf >/dev/null || need+=(linux-perf)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO="sudo"
    $SUDO apt-get install -y --no-install-recommends "${need[@]}" ||
        { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "${need[@]}"; }
fi

exec cargo run --release -p switchyard-bench --bin runtime_vs_tonic -- \
    --h2load --profile "${PROFILE:-target/runtime-profile.txt}" "$@"
