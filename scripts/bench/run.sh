#!/usr/bin/env bash
# make bench / make bench-quick: run every benchmark scenario that exists so
# far, side by side with its peer, and print markdown tables.
# QUICK=1 runs each scenario at a small size (keeps the harness alive in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${BENCH_OUT:-bench-results}
mkdir -p "$out"
if [ "${QUICK:-}" = 1 ]; then
  export SIZE_MIB=16 ROUNDS=1 QUICK=1
fi
echo "# syncer benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r))"
for s in scripts/bench/ftp_ingest.sh scripts/bench/agent.sh; do
  [ -x "$s" ] || continue
  echo; echo "## $(basename "$s" .sh)"; echo
  bash "$s" | tee "$out/$(basename "$s" .sh).md"
done
