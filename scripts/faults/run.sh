#!/usr/bin/env bash
# The fault, load and abuse suite (issue 8): every test of ./faults/ in full
# (FAULTS_FULL=1; QUICK=1: the bounded variants CI runs), then every fuzz target for
# FUZZTIME (default 30s; 10s with QUICK=1). Prints the table of the README's
# "Faults and abuse" section from what the tests measured.
# Needs root for the disk-full test (a small tmpfs) and 127.0.0.2 on lo.
set -uo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
export FAULTS_FULL=1
timeout=90m
if [ -n "${QUICK:-}" ]; then
	unset FAULTS_FULL
	timeout=20m
	: "${FUZZTIME:=10s}"
fi
: "${FUZZTIME:=30s}"
status=0
FAULTS_REPORT=$report $GO test -race -count=1 -timeout "$timeout" -v ./faults/ 2>&1 |
	grep -E '^(--- |\s+--- |PASS|FAIL|ok)|RESULT \||_test\.go:[0-9]+: ' || true
if [ "${PIPESTATUS[0]}" != 0 ]; then status=1; fi
FUZZTIME=$FUZZTIME bash scripts/faults/fuzz.sh || status=1
echo
echo "| fault or input | what happened | bytes lost |"
echo "| --- | --- | --- |"
cat "$report"
exit $status
