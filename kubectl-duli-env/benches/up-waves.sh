#!/usr/bin/env bash
# Benchmark `kubectl duli env up` from an empty cluster against kube-standin's operator simulation:
# wall time vs the critical path (stages × delay) and the sequential sum of all components' delays.
# Needs helm 4 (`bash .ci/install-tools`). DULI_BENCH_DELAYS=1s,2s picks the per-stage delays.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo bench -p kubectl-duli-env --bench up_waves "$@"
