#!/usr/bin/env bash
# Run every duli fuzz target for a fixed budget, one after the other.
#
#   shared/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds, every target)
#
# Builds once (release, debug assertions and overflow checks, AddressSanitizer; build dir shared/fuzz/target),
# then runs each target on its corpus shared/fuzz/corpus/<target>/ (new interesting inputs are added
# there, and the corpus is reduced to a set cover of its edges afterwards)
# and prints, per target: executions, seconds run, crashes. Crash inputs land in
# shared/fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a <target> fuzz/artifacts/<target>/<file>     (from shared/)
# Exit status: 0 when no target crashed, 1 otherwise, 2 on a build or usage error.
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes.
# Not part of CI's hot path: the budget is wall-clock time per target.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift || true

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared_dir="$(dirname "$fuzz_dir")"
all_targets=(environment_file values_merge manifest_stream crd_schema sealed_secret)
targets=("${@:-${all_targets[@]}}")
for target in "${targets[@]}"; do
    if [ ! -f "$fuzz_dir/fuzz_targets/$target.rs" ]; then
        echo "unknown target \`$target\`: targets are ${all_targets[*]}" >&2
        exit 2
    fi
done

export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi

# Every cargo fuzz call uses the same flags, so the one build is reused by every run.
#   -O  optimized;  -a  debug assertions and overflow checks (catch arithmetic bugs as crashes);
#   AddressSanitizer (cargo-fuzz's default) on top: duli has no unsafe code, but its dependencies do.
build_flags=(-O -a)
cd "$shared_dir"
echo "building the fuzz targets (first build takes a while; later ones are incremental)" >&2
if ! cargo fuzz build "${build_flags[@]}" >&2; then
    echo "the fuzz targets do not build" >&2
    exit 2
fi

bin_dir="$fuzz_dir/target/x86_64-unknown-linux-gnu/release"

# libFuzzer options:
#   -max_total_time   the budget;  -timeout  one input taking longer is reported (a hang is a bug too);
#   -rss_limit_mb     an input needing more memory is reported (YAML bombs);
#   -max_len          inputs up to 8 KiB (the largest seed is a rendered chart of ~6 KiB);
#   -dict             YAML and Kubernetes tokens.
libfuzzer_flags=(
    -max_total_time="$seconds"
    -timeout=10
    -rss_limit_mb=2048
    -max_len=8192
    -dict="$fuzz_dir/yaml.dict"
    -print_final_stats=1
)

logs="$fuzz_dir/logs"
mkdir -p "$logs"
failed=0
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    before="$(find "$artifacts" -type f | wc -l)"
    log="$logs/$target.log"
    echo "fuzzing $target for ${seconds}s (log: $log)" >&2
    start="$(date +%s)"
    status=0
    # The binary itself, not `cargo fuzz run`: that would rebuild whenever shared/src changed meanwhile.
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" \
        "$bin_dir/$target" "${libfuzzer_flags[@]}" -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 \
        || status=$?
    elapsed=$(($(date +%s) - start))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # A failure without an artifact (for example the target did not start).
        crashes=1
    fi
    if [ "$crashes" -gt 0 ]; then
        failed=1
        echo "  $target crashed: see $log and $artifacts" >&2
        grep -m1 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" >&2 || true
    fi
    summary+=("$(printf '%-18s executions %-10s time %4ss  crashes %s' \
        "$target" "${execs:-?}" "$elapsed" "$crashes")")
done

# Keep the committed corpus small: after a run, reduce each corpus to a set cover of its edges (libFuzzer's
# -set_cover_merge with -use_counters=0: far fewer files than `cargo fuzz cmin`'s default merge, which also
# keeps hit-count buckets). Merged files are named by their SHA-1; the hand-made `seed-*` inputs are kept
# under their names (and their SHA-1 copy dropped).
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    before_files="$(find "$corpus" -type f | wc -l)"
    minimized="$(mktemp -d "$fuzz_dir/corpus/.$target.min-XXXXXX")"
    if ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" "$bin_dir/$target" -set_cover_merge=1 -use_counters=0 \
        -timeout=10 -rss_limit_mb=2048 -max_len=8192 "$minimized" "$corpus" >>"$logs/$target.log" 2>&1; then
        for seed in "$corpus"/seed-*; do
            [ -f "$seed" ] || continue
            rm -f "$minimized/$(sha1sum "$seed" | cut -d' ' -f1)"
            cp "$seed" "$minimized/"
        done
        rm -rf "$corpus" && mv "$minimized" "$corpus"
        echo "corpus/$target: $before_files → $(find "$corpus" -type f | wc -l) files," \
            "$(du -sk --apparent-size "$corpus" | cut -f1) KiB" >&2
    else
        rm -rf "$minimized"
        echo "minimizing $target failed; see $logs/$target.log" >&2
        failed=1
    fi
done

echo
echo "fuzz results (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
