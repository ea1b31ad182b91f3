# Set-up shared by the kubectl-duli-db benchmarks; sourced (not run) by scale.sh and status-latency.sh.
# Builds kube-standin and the plugin (debug), cds to the repository root and sets: root, crds, bin, work (a
# temporary directory with bin/kubectl-duli-db and home/, removed on exit with every process in pids).
# Defines now (ns), median (of its arguments) and start (a seeded kube-standin).

root="$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)"
crds="$root/../shared/crds"
cd "$root"
cargo build --quiet -p kube-standin -p kubectl-duli-db
bin="$root/target/debug"

work="$(mktemp -d)"
pids=()
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home"
ln -s "$bin/kubectl-duli-db" "$work/bin/kubectl-duli-db"

now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# start NAME SEED...: a kube-standin for case NAME; its URL goes to $work/NAME.url, its kubeconfig to
# $work/NAME.kubeconfig.
start() {
    local name="$1" seeds=() s
    shift
    for s in "$@"; do seeds+=(--seed "$s"); done
    "$bin/kube-standin" serve --crds "$crds/cloudnative-pg" --crds "$crds/redis-operator" \
        --crds "$crds/rabbitmq-cluster-operator" "${seeds[@]}" \
        --kubeconfig-out "$work/$name.kubeconfig" >"$work/$name.out" 2>"$work/$name.log" &
    pids+=($!)
    # Up to 60 s: the debug build parsing the CRDs is slow on a loaded machine.
    for _ in $(seq 1 600); do
        { [ -s "$work/$name.out" ] || ! kill -0 "${pids[-1]}" 2>/dev/null; } && break
        sleep 0.1
    done
    [ -s "$work/$name.out" ] || { echo "kube-standin ($name) did not start:" >&2; cat "$work/$name.log" >&2; exit 2; }
    head -1 "$work/$name.out" >"$work/$name.url"
}
