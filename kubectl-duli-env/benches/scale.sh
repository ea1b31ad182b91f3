#!/usr/bin/env bash
# Benchmark (not a test): `kubectl duli env status` for staging and prod after `up`, small vs + 50 objects in
# each namespace, time per object and the ratio (target <= 2.0x); see benches/scale_status.rs.
# Needs helm 4 (`bash .ci/install-tools`).
#
#   bash kubectl-duli-env/benches/scale.sh [RUNS]     (RUNS default 7; EXTRA=50; CHECK=1 exits 1 on a miss)
set -euo pipefail
cd "$(dirname "$0")/../.."
export DULI_BENCH_RUNS="${1:-${RUNS:-7}}" DULI_BENCH_EXTRA="${EXTRA:-50}"
# Debug profile, like the e2e tests and the other benches of the plugins (the binary under test is debug).
exec cargo bench --profile dev -p kubectl-duli-env --bench scale_status
