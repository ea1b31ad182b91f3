#!/usr/bin/env bash
# Benchmark for upstream charts (issue #16): both environments with the six wrapper charts and the platform
# charts of gitops/platform.yml included, fetched from ../shared/charts/repo served on 127.0.0.1 as a mirror of
# every upstream repository, compared in the same run with what a pipeline would otherwise run.
#
#   bash helm-duli-render/benches/upstream-bench.sh            # 3 rounds
#   RUNS=5 bash helm-duli-render/benches/upstream-bench.sh
#
# The repository is copied with `provider: generic` (the DigitalOcean charts are not in the local repository).
# Each round times, interleaved:
#   baseline  fresh helm cache; for every wrapper chart `helm dependency build` (once; its Chart.yaml pointed at
#             the mirror, as a pipeline behind a mirror must), then for env in staging prod: `helm template` every
#             chart of helm/ with values-ENV.yml and every platform chart (`--repo MIRROR --version V`, its values)
#   cold      helm-duli-render staging prod --chart-mirror '*=MIRROR'   (empty render cache and chart cache)
#   warm      the same again (nothing changed)
# and prints the medians and the ratios (goals: cold <= 0.5x, warm <= 0.05x). CHECK=1: exit 1 when missed.
set -euo pipefail

runs=${RUNS:-3}
# shellcheck source=helm-duli-render/benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
renice -n -10 $$ >/dev/null 2>&1 || true

charts_repo=$(cd "$repo/../shared/charts/repo" && pwd)
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$charts_repo" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q 'port' "$work/server.log" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'port [0-9]*' "$work/server.log" | awk '{print $2}')
mirror=http://127.0.0.1:$port

# The repository copy (provider generic) ours renders, and the baseline's copy with the mirror in Chart.yaml.
copy=$work/repo
mkdir -p "$copy"
cp -r "$repo/helm" "$repo/gitops" "$copy/"
sed -i 's/^provider: .*/provider: generic/' "$copy"/gitops/environments/*.yml
base=$work/baseline
mkdir -p "$base"
cp -r "$copy/helm" "$copy/gitops" "$base/"
wrappers=()
for dir in "$base"/helm/*/; do
  chart=$(basename "$dir")
  if grep -q '^dependencies:' "$dir/Chart.yaml"; then
    wrappers+=("$chart")
    sed -i -E "s#repository: (https|oci)://.*#repository: $mirror#" "$dir/Chart.yaml"
    rm -f "$dir/Chart.lock"
  fi
done
all_charts=$(cd "$base/helm" && ls -d -- */ | tr -d /)
# Platform entries for provider generic: name chart version namespace, and their values as files.
mapfile -t platform < <(python3 - "$copy/gitops/platform.yml" "$work" <<'EOF'
import json, sys, yaml
for c in yaml.safe_load(open(sys.argv[1]))["charts"]:
    if c.get("providers") and "generic" not in c["providers"]:
        continue
    path = f"{sys.argv[2]}/values-{c['name']}.json"
    json.dump(c.get("values") or {}, open(path, "w"))
    print(c["name"], c["chart"], c["version"], c["namespace"], path)
EOF
)

baseline() {
  local home=$work/helm-home chart env ns values f entry
  rm -rf "$home" "$base"/helm/*/charts
  export HELM_CACHE_HOME=$home/cache HELM_CONFIG_HOME=$home/config HELM_DATA_HOME=$home/data
  "$helm" repo add mirror "$mirror" >/dev/null
  for chart in "${wrappers[@]}"; do
    "$helm" dependency build "$base/helm/$chart" >/dev/null
  done
  for env in staging prod; do
    ns=$(awk '/^namespace:/ {print $2}' "$base/gitops/environments/$env.yml")
    for chart in $all_charts; do
      values=()
      for f in "$base/helm/$chart/values-$env.yml" "$base/helm/$chart/values-$env.yaml"; do
        [ -f "$f" ] && values=(-f "$f") && break
      done
      "$helm" template "$chart" "$base/helm/$chart" --namespace "$ns" "${values[@]}" >/dev/null
    done
    for entry in "${platform[@]}"; do
      read -r name chart version namespace values_file <<<"$entry"
      "$helm" template "$name" "$chart" --repo "$mirror" --version "$version" --namespace "$namespace" -f "$values_file" >/dev/null
    done
  done
  unset HELM_CACHE_HOME HELM_CONFIG_HOME HELM_DATA_HOME
}
ours() {
  "$bin" staging prod --repo "$copy" --cache-dir "$work/cache" --chart-mirror "*=$mirror" \
    --report "$work/report.json" >/dev/null 2>"$work/ours.err" || [ $? -eq 1 ] || { cat "$work/ours.err" >&2; exit 2; }
}

declare -a tb tc tw
for ((i = 0; i < runs; i++)); do
  t0=$(now); baseline; t1=$(now)
  rm -rf "$work/cache"
  ours; t2=$(now)
  ours; t3=$(now)
  tb+=($(( (t1 - t0) / 1000 ))); tc+=($(( (t2 - t1) / 1000 ))); tw+=($(( (t3 - t2) / 1000 )))
done
python3 - "$work/report.json" <<'EOF'
import json, sys
for e in json.load(open(sys.argv[1]))["environments"]:
    t = e["totals"]
    print(f'{e["env"]}: {t["charts"]} charts ({t["external"]} external), {t["platform"]} platform charts ({t["platform_external"]} external), {t["objects"]} objects, {t["findings"]} findings')
EOF

mb=$(median "${tb[@]}"); mc=$(median "${tc[@]}"); mw=$(median "${tw[@]}")
echo "helm: $("$helm" version --short)  cores: $(nproc)  rounds: $runs  wrappers: ${#wrappers[@]}  platform charts: ${#platform[@]}"
printf '%-60s %10s %8s\n' "what (both environments, upstream charts included)" "median ms" "ratio"
printf '%-60s %10.1f %8s\n' "baseline: helm dependency build + helm template loop" "$(echo "$mb/1000" | bc -l)" "1.00"
printf '%-60s %10.1f %8.3f\n' "helm-duli-render, cold (empty render and chart cache)" "$(echo "$mc/1000" | bc -l)" "$(echo "$mc/$mb" | bc -l)"
printf '%-60s %10.1f %8.3f\n' "helm-duli-render, warm (no change)" "$(echo "$mw/1000" | bc -l)" "$(echo "$mw/$mb" | bc -l)"
# Each round's own ratio (baseline and ours run back to back, so a slow spell of the machine hits both).
per_round=""
for ((i = 0; i < runs; i++)); do per_round+=" $(echo "scale=3; ${tc[i]}/${tb[i]}" | bc -l)"; done
echo "cold ratio per round:$per_round"
cold_ok=$(echo "$mc <= 0.5 * $mb" | bc -l); warm_ok=$(echo "$mw <= 0.05 * $mb" | bc -l)
echo "goals: cold <= 0.5x: $([ "$cold_ok" = 1 ] && echo met || echo MISSED); warm <= 0.05x: $([ "$warm_ok" = 1 ] && echo met || echo MISSED)"
if [ "${CHECK:-0}" = 1 ] && { [ "$cold_ok" != 1 ] || [ "$warm_ok" != 1 ]; }; then exit 1; fi
