# Set-up shared by the helm-duli-render benchmarks; sourced (not run) by render-bench.sh and scale.sh.
# Sets: here, repo, helm, crds, bin (building the release binary unless DULI_RENDER_BIN names one), work (a
# temporary directory removed on exit); exports HELM_BIN and clears the HELM_* settings that would change a
# render. Defines now (ns) and median (of its arguments).

here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
helm=${DULI_HELM4_BIN:-$HOME/.cache/duli/tools/helm-4.1.4/helm}
[ -x "$helm" ] || { echo "helm not found at $helm: run bash .ci/install-tools" >&2; exit 2; }
crds=${DULI_CRDS:-$repo/../shared/crds}
bin=$repo/target/release/helm-duli-render
if [ -z "${DULI_RENDER_BIN:-}" ]; then
  (cd "$repo" && cargo build --release -q -p helm-duli-render)
else
  bin=$DULI_RENDER_BIN
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HELM_BIN=$helm
unset HELM_NAMESPACE HELM_KUBECONTEXT HELM_DEBUG HELM_PLUGIN_DIR

now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# helm_template ROOT NAMESPACE ENV CHART...: `helm template` each chart of ROOT/helm with its values-ENV file,
# one process per chart (the sequential baseline the benchmarks compare against).
helm_template() {
  local root=$1 ns=$2 env=$3 chart values f
  shift 3
  for chart in "$@"; do
    values=()
    for f in "$root/helm/$chart/values-$env.yml" "$root/helm/$chart/values-$env.yaml"; do
      [ -f "$f" ] && values=(-f "$f") && break
    done
    "$helm" template "$chart" "$root/helm/$chart" --namespace "$ns" "${values[@]}" >/dev/null
  done
}
