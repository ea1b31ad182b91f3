#!/usr/bin/env bash
# Benchmark (not a test): `kubectl duli db status --all --no-live` against the anchor way — one
# sequential `kubectl get` per resource — with LATENCY_MS (default 50) added to every API request by
# kube-standin. Prints both wall times, the ratio, and the API requests each made.
#
# Usage: bash kubectl-duli-db/benches/status-latency.sh [RUNS]   (from the repository root; RUNS default 5)
set -euo pipefail

runs="${1:-5}"
latency="${LATENCY_MS:-50}"
# shellcheck source=kubectl-duli-db/benches/common.sh
source "$(dirname "$0")/common.sh"

start main "$root/kubectl-duli-db/benches/seed.yaml"
url="$(cat "$work/main.url")"

export KUBECONFIG="$work/main.kubeconfig" HOME="$work/home" DULI_REPO="$root" PATH="$work/bin:$PATH"
kubectl="/usr/bin/kubectl"
cache="--cache-dir=$work/home/cache"

anchor() {
    for ns in staging prod; do
        $kubectl $cache get clusters.postgresql.cnpg.io database -n "$ns" -o name >/dev/null
        $kubectl $cache get redisreplications.redis.redis.opstreelabs.in redis -n "$ns" -o name >/dev/null
        $kubectl $cache get redissentinels.redis.redis.opstreelabs.in -n "$ns" -o name >/dev/null
        $kubectl $cache get statefulsets -n "$ns" -o name >/dev/null
        $kubectl $cache get pods -n "$ns" -l 'redis_setup_type in (replication,sentinel)' -o name >/dev/null
        $kubectl $cache get rabbitmqclusters.rabbitmq.com queue -n "$ns" -o name >/dev/null
    done
}
plugin() { $kubectl duli db status --all --no-live -o json >/dev/null; }
direct() { "$bin/kubectl-duli-db" status --all --no-live -o json >/dev/null; }

# Median wall time in ms of RUNS runs of "$1"; the API request count of the last run goes to $work/requests.
measure() {
    local times=() start end
    for _ in $(seq 1 "$runs"); do
        curl -s -X DELETE "$url/_standin/requests" >/dev/null
        start=$(now)
        "$1"
        end=$(now)
        times+=($(( (end - start) / 1000000 )))
    done
    curl -s "$url/_standin/requests" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' >"$work/requests"
    median "${times[@]}"
}

anchor; plugin  # warm kubectl's discovery cache and the page cache
base_direct=$(measure direct); base_plugin=$(measure plugin); base_anchor=$(measure anchor)
curl -s -X POST "$url/_standin/faults" -H 'content-type: application/json' \
    -d "{\"action\": {\"type\": \"latency\", \"millis\": $latency}}" >/dev/null
t_direct=$(measure direct); r_direct=$(cat "$work/requests")
t_plugin=$(measure plugin); r_plugin=$(cat "$work/requests")
t_anchor=$(measure anchor); r_anchor=$(cat "$work/requests")

echo "kube-standin $url, ${latency} ms added to every API request, median of $runs runs"
printf '%-58s %8s %8s %9s\n' "" "no delay" "delayed" "requests"
printf '%-58s %6s ms %6s ms %9s\n' "kubectl-duli-db status --all --no-live (binary)" "$base_direct" "$t_direct" "$r_direct"
printf '%-58s %6s ms %6s ms %9s\n' "kubectl duli db status --all --no-live (kubectl dispatch)" "$base_plugin" "$t_plugin" "$r_plugin"
printf '%-58s %6s ms %6s ms %9s\n' "anchor: 12 sequential kubectl get (2 envs x 6 resources)" "$base_anchor" "$t_anchor" "$r_anchor"
awk -v d="$t_direct" -v bd="$base_direct" -v a="$t_anchor" -v p="$t_plugin" -v l="$latency" 'BEGIN {
    printf "round trips added by the delay (binary): %.1f\n", (d - bd) / l
    printf "anchor / plugin (via kubectl): %.1fx   anchor / binary: %.1fx\n", a / p, a / d
}'
