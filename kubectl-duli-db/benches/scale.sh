#!/usr/bin/env bash
# Benchmark (not a test): does `kubectl duli db status --all` scale with the objects in the namespaces?
# Issue #9 "Concurrency and scale": with 2 environments x 50 extra objects per namespace the time per
# object stays within 2x the small case's.
#
# Two kube-standin servers: "small" seeded with benches/seed.yaml (staging and prod as the operators create
# them), "scaled" with the same plus EXTRA (default 50) generated objects in each namespace, of the kinds
# db status reads or lists (StatefulSets and RedisSentinels, read in full; Pods, filtered by label on the
# server; Services and Secrets, its neighbours). Runs are interleaved (small, scaled, small, ...) so load
# drift hits both alike; the table shows medians. "Per object" = wall time / objects in the two namespaces.
#
# Modes: --no-live (always) and live (LIVE=1, the default; LIVE=0 skips it). Live checks go through
# kube-standin's port-forward to whatever listens on 127.0.0.1:5432/6379/26379/5672 (the seed's
# `kube-standin/forward` annotations); a check that fails (nothing listening, wrong password) still counts,
# it just makes the command exit 1, so live figures measure the same work in both cases, not health.
#
# Usage: bash kubectl-duli-db/benches/scale.sh [RUNS]   (RUNS default 7; CHECK=1 exits 1 on a missed target)
set -euo pipefail

runs="${1:-${RUNS:-7}}"
extra="${EXTRA:-50}"
live="${LIVE:-1}"
# shellcheck source=kubectl-duli-db/benches/common.sh
source "$(dirname "$0")/common.sh"

# EXTRA objects per namespace: 30% StatefulSets, 20% RedisSentinels (of other replications, so the verdict
# is unchanged), 30% Pods (labels the redis selector does not match), 10% Services, the rest Secrets.
generate() {
    local ns="$1" n_sts=$((extra * 3 / 10)) n_sen=$((extra * 2 / 10)) n_pod=$((extra * 3 / 10))
    local n_svc=$((extra / 10)) i
    local n_sec=$((extra - n_sts - n_sen - n_pod - n_svc))
    for ((i = 0; i < n_sts; i++)); do
        cat <<EOF
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: extra-sts-$i, namespace: $ns, labels: {app: extra-$i, app.kubernetes.io/part-of: bench}}
spec:
  replicas: 2
  serviceName: extra-$i
  selector: {matchLabels: {app: extra-$i}}
  template:
    metadata: {labels: {app: extra-$i, app.kubernetes.io/part-of: bench}}
    spec: {containers: [{name: main, image: "example:1.$i", ports: [{containerPort: 8080}], env: [{name: MODE, value: bench}]}]}
status: {replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2, availableReplicas: 2, observedGeneration: 1}
EOF
    done
    for ((i = 0; i < n_sen; i++)); do
        cat <<EOF
---
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisSentinel
metadata: {name: extra-sentinel-$i, namespace: $ns}
spec:
  clusterSize: 1
  kubernetesConfig:
    image: quay.io/opstree/redis-sentinel:v7.0.15
  redisSentinelConfig:
    redisReplicationName: extra-redis-$i
    masterGroupName: extra$i
    redisReplicationPassword:
      secretKeyRef: {name: extra-secret-0, key: password}
EOF
    done
    for ((i = 0; i < n_pod; i++)); do
        cat <<EOF
---
apiVersion: v1
kind: Pod
metadata:
  name: extra-pod-$i
  namespace: $ns
  labels: {app: extra-$i, app.kubernetes.io/part-of: bench, role: worker}
spec:
  containers: [{name: main, image: "example:1.$i"}]
status:
  phase: Running
  podIP: 10.244.9.$i
  conditions:
  - {type: Ready, status: "True", lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: ContainersReady, status: "True", lastTransitionTime: "2026-01-01T00:00:00Z"}
EOF
    done
    for ((i = 0; i < n_svc; i++)); do
        cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: extra-svc-$i, namespace: $ns}
spec:
  type: ClusterIP
  selector: {app: extra-$i}
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
EOF
    done
    for ((i = 0; i < n_sec; i++)); do
        cat <<EOF
---
apiVersion: v1
kind: Secret
metadata: {name: extra-secret-$i, namespace: $ns, labels: {app.kubernetes.io/part-of: bench}}
type: Opaque
stringData:
  password: "bench-only-$i"
EOF
    done
}
{ generate staging; generate prod; } >"$work/extra.yaml"

# Objects in the two namespaces (Namespace objects themselves excluded).
count() {
    python3 - "$@" <<'EOF'
import sys, yaml
n = 0
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") != "Namespace" and doc.get("metadata", {}).get("namespace") in ("staging", "prod"):
            n += 1
print(n)
EOF
}
seed="$root/kubectl-duli-db/benches/seed.yaml"
objects_small=$(count "$seed")
objects_scaled=$(count "$seed" "$work/extra.yaml")

start small "$seed"
start scaled "$seed" "$work/extra.yaml"

export HOME="$work/home" DULI_REPO="$root" PATH="$work/bin:$PATH"
unset RUST_LOG
kubectl="/usr/bin/kubectl"

# status CASE MODE: one `kubectl duli db status --all` against CASE; exit 1 (unhealthy) is fine, 2+ is not.
status() {
    local args=(duli db status --all -o json)
    [ "$2" = no-live ] && args+=(--no-live)
    local rc=0
    KUBECONFIG="$work/$1.kubeconfig" "$kubectl" "${args[@]}" >"$work/out.json" 2>"$work/err" || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "db status ($1, $2) failed with exit code $rc:" >&2
        cat "$work/err" >&2
        exit 2
    fi
}
requests() { curl -s "$(cat "$work/$1.url")/_standin/requests" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
clear_requests() { curl -s -X DELETE "$(cat "$work/$1.url")/_standin/requests" >/dev/null; }

modes=(no-live)
[ "$live" = 1 ] && modes+=(live)
# Warm-up (page cache, kubectl), and the same verdict in both cases (the extra objects change nothing).
for mode in "${modes[@]}"; do
    for c in small scaled; do
        status "$c" "$mode"
        python3 - "$work/out.json" >"$work/verdict.$c.$mode" <<'EOF'
import json, sys
envs = json.load(open(sys.argv[1]))["environments"]
live = lambda s: "" if s.get("live") is None else "/live " + ("ok" if s["live"]["ok"] else "failed")
print(" ".join("%s:%s(%s)" % (e["name"], "healthy" if e["healthy"] else "unhealthy",
      ",".join(s["service"] + live(s) for s in e["services"])) for e in envs))
EOF
    done
    cmp -s "$work/verdict.small.$mode" "$work/verdict.scaled.$mode" || {
        echo "the extra objects changed the verdict ($mode): $(cat "$work/verdict.small.$mode") vs $(cat "$work/verdict.scaled.$mode")" >&2
        exit 2
    }
done

declare -A times reqs
for mode in "${modes[@]}"; do
    for c in small scaled; do times[$c.$mode]=""; done
done
for ((i = 0; i < runs; i++)); do
    for mode in "${modes[@]}"; do
        for c in small scaled; do
            clear_requests "$c"
            t0=$(now)
            status "$c" "$mode"
            t1=$(now)
            times[$c.$mode]+=" $(((t1 - t0) / 1000))"
            reqs[$c.$mode]=$(requests "$c")
        done
    done
done

echo "kubectl duli db status --all: small = benches/seed.yaml, scaled = + $extra objects in each of staging, prod"
echo "median of $runs interleaved runs; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "${modes[@]}"; do echo "healthy ($mode, both cases): $(cat "$work/verdict.small.$mode")"; done
printf '%-9s %-7s %10s %8s %9s %14s %8s\n' mode case "wall ms" objects requests "us per object" ratio
missed=0
for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the space-separated samples is intended
    small_us=$(median ${times[small.$mode]})
    # shellcheck disable=SC2086
    scaled_us=$(median ${times[scaled.$mode]})
    small_per=$(echo "$small_us / $objects_small" | bc -l)
    scaled_per=$(echo "$scaled_us / $objects_scaled" | bc -l)
    ratio=$(echo "$scaled_per / $small_per" | bc -l)
    printf '%-9s %-7s %10.1f %8d %9s %14.1f %8s\n' "$mode" small "$(echo "$small_us / 1000" | bc -l)" \
        "$objects_small" "${reqs[small.$mode]}" "$small_per" ""
    printf '%-9s %-7s %10.1f %8d %9s %14.1f %7.2fx\n' "$mode" scaled "$(echo "$scaled_us / 1000" | bc -l)" \
        "$objects_scaled" "${reqs[scaled.$mode]}" "$scaled_per" "$ratio"
    if [ "$(echo "$ratio <= 2.0" | bc -l)" != 1 ]; then
        echo "$mode: MISSED (scaled per-object time > 2.0x the small case's)"
        missed=1
    fi
done
[ "$missed" = 0 ] && echo "target (scaled per object <= 2.0x small per object): met"
if [ "${CHECK:-0}" = 1 ] && [ "$missed" = 1 ]; then exit 1; fi
exit 0
