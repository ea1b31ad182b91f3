#!/usr/bin/env bash
# Benchmark (not a test): does `helm duli-render staging prod` scale with the number of charts?
# Issue #9 "Concurrency and scale": with 60 charts (generated fixtures) the time per chart stays within 2x
# the small case's.
#
# Two temporary copies of the repository (helm/ + gitops/): "small" with the real charts, "scaled" with the
# same plus generated charts up to CHARTS (default 60) in total: copies of the real `backend` chart under
# new names (Chart.yaml `name` changed), each with its Argo CD Application (gitops/applications/NAME.yml.j2,
# backend's with the name replaced), so both the chart and the application sides grow. Each round times,
# interleaved so load drift hits both alike:
#   ours      helm-duli-render staging prod --no-cache   (cold: render + validate + policy, both envs)
#   anchor    for env in staging prod; for chart: helm template   (ANCHOR=0 skips it; as render-bench.sh)
# for the small and the scaled copy, and prints medians. "Per chart" = wall time / charts in helm/
# (external ones included: they are discovered and reported too; the rendered count is shown as well).
#
#   bash helm-duli-render/benches/scale.sh [RUNS]     (RUNS default 5; CHECK=1 exits 1 on a missed target)
set -euo pipefail

runs=${1:-${RUNS:-5}}
total=${CHARTS:-60}
anchor=${ANCHOR:-1}
# shellcheck source=helm-duli-render/benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for c in small scaled; do
  mkdir -p "$work/$c"
  cp -R "$repo/helm" "$repo/gitops" "$work/$c/"
done
real=$(find "$work/small/helm" -mindepth 2 -maxdepth 2 -name Chart.yaml | wc -l)
for ((i = real; i < total; i++)); do
  name=$(printf 'bench-%02d' "$i")
  cp -R "$repo/helm/backend" "$work/scaled/helm/$name"
  sed -i "s/^name: backend\$/name: $name/" "$work/scaled/helm/$name/Chart.yaml"
  sed "s/backend/$name/g" "$repo/gitops/applications/backend.yml.j2" >"$work/scaled/gitops/applications/$name.yml.j2"
done
charts_small=$real
charts_scaled=$(find "$work/scaled/helm" -mindepth 2 -maxdepth 2 -name Chart.yaml | wc -l)

# Rendered (non-external) charts per case and environment, and each environment's namespace, from a report;
# the summary lines of both cases, to show the generated charts render cleanly.
declare -A charts namespace rendered
for c in small scaled; do
  rendered[$c]=0
  for env in staging prod; do
    "$bin" "$env" --repo "$work/$c" --crds "$crds" --no-cache --report "$work/$c.$env.json" >/dev/null \
      2>"$work/$c.$env.err" || [ $? -eq 1 ] || { cat "$work/$c.$env.err" >&2; exit 2; }
    charts[$c.$env]=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join(c["name"] for c in r["charts"] if c["status"]!="external"))' "$work/$c.$env.json")
    namespace[$env]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["namespace"])' "$work/$c.$env.json")
    for _ in ${charts[$c.$env]}; do rendered[$c]=$((rendered[$c] + 1)); done
  done
done

ours() {
  "$bin" staging prod --repo "$work/$1" --crds "$crds" --no-cache >/dev/null 2>"$work/summary.$1" || [ $? -eq 1 ]
}
baseline() {
  local env
  for env in staging prod; do
    # shellcheck disable=SC2086 # the chart list is space-separated
    helm_template "$work/$1" "${namespace[$env]}" "$env" ${charts[$1.$env]}
  done
}

declare -A samples
for key in ours.small ours.scaled anchor.small anchor.scaled; do samples[$key]=""; done
ours small; ours scaled # warm the page cache
for ((i = 0; i < runs; i++)); do
  for c in small scaled; do
    t0=$(now); ours "$c"; t1=$(now)
    samples[ours.$c]+=" $(((t1 - t0) / 1000))"
    if [ "$anchor" = 1 ]; then
      t0=$(now); baseline "$c"; t1=$(now)
      samples[anchor.$c]+=" $(((t1 - t0) / 1000))"
    fi
  done
done

echo "helm duli-render staging prod --no-cache: small = this repository's charts, scaled = + copies of backend up to $total"
for c in small scaled; do sed "s/^/  $c: /" "$work/summary.$c"; done
echo "helm: $("$helm" version --short)  median of $runs interleaved rounds; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %-7s %10s %7s %9s %13s %8s %16s\n' what case "wall ms" charts rendered "ms per chart" ratio \
  "ms per rendered"
missed=0
whats=(ours)
[ "$anchor" = 1 ] && whats+=(anchor)
for what in "${whats[@]}"; do
  label="helm-duli-render (cold)"
  [ "$what" = anchor ] && label="anchor: sequential helm template"
  # shellcheck disable=SC2086 # word splitting of the space-separated samples is intended
  small_us=$(median ${samples[$what.small]})
  # shellcheck disable=SC2086
  scaled_us=$(median ${samples[$what.scaled]})
  small_per=$(echo "$small_us / $charts_small / 1000" | bc -l)
  scaled_per=$(echo "$scaled_us / $charts_scaled / 1000" | bc -l)
  ratio=$(echo "$scaled_per / $small_per" | bc -l)
  printf '%-34s %-7s %10.1f %7d %9d %13.2f %8s %16.2f\n' "$label" small "$(echo "$small_us / 1000" | bc -l)" \
    "$charts_small" "${rendered[small]}" "$small_per" "" "$(echo "$small_us / ${rendered[small]} / 1000" | bc -l)"
  printf '%-34s %-7s %10.1f %7d %9d %13.2f %7.2fx %16.2f\n' "$label" scaled "$(echo "$scaled_us / 1000" | bc -l)" \
    "$charts_scaled" "${rendered[scaled]}" "$scaled_per" "$ratio" "$(echo "$scaled_us / ${rendered[scaled]} / 1000" | bc -l)"
  if [ "$what" = ours ] && [ "$(echo "$ratio <= 2.0" | bc -l)" != 1 ]; then missed=1; fi
done
echo "rendered = helm template runs over both environments (external charts are discovered, not rendered)"
echo "target (helm-duli-render: scaled per chart <= 2.0x small per chart): $([ "$missed" = 0 ] && echo met || echo MISSED)"
if [ "${CHECK:-0}" = 1 ] && [ "$missed" = 1 ]; then exit 1; fi
exit 0
