#!/usr/bin/env bash
# Benchmark (not a test): sealing 100 keys offline in ONE call vs 100 separate invocations, one process per
# secret (the kubeseal way). Prints both wall times and the ratio; the target is <= 50 ms for the one call.
#   usage: kubectl-duli-secrets/benches/seal-100.sh [BINARY]   (default: builds target/release)
# Needs openssl (for a throwaway RSA-4096 controller key, like the real controller's).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-}"
if [ -z "$bin" ]; then
    cargo build --release --quiet -p kubectl-duli-secrets
    bin="target/release/kubectl-duli-secrets"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$work/key.pem" 2>/dev/null
openssl req -x509 -key "$work/key.pem" -subj /CN=bench -days 365 -out "$work/cert.pem"

# One Secret with 100 keys, and 100 Secrets with one key each.
{
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: bench\n  namespace: staging\nstringData:\n'
    for i in $(seq 1 100); do printf '  key-%03d: "value-%03d-%s"\n' "$i" "$i" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done
} > "$work/secret-100.yml"
for i in $(seq 1 100); do
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: bench-%03d\n  namespace: staging\nstringData:\n  value: "v%03d"\n' "$i" "$i" > "$work/one-$i.yml"
done

export KUBECONFIG="$work/none" XDG_CACHE_HOME="$work/cache"
now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000000 }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# Warm-up (page cache), then the best of 5 single calls.
"$bin" seal --cert "$work/cert.pem" -f "$work/secret-100.yml" > /dev/null
best=""
for _ in 1 2 3 4 5; do
    start=$(now)
    "$bin" seal --cert "$work/cert.pem" -f "$work/secret-100.yml" > "$work/out-100.yml"
    end=$(now)
    t=$(ms "$start" "$end")
    if [ -z "$best" ] || lt "$t" "$best"; then best="$t"; fi
done
keys=$(grep -c '^    key-' "$work/out-100.yml")
[ "$keys" = 100 ] || { echo "expected 100 sealed keys, got $keys" >&2; exit 1; }

start=$(now)
for i in $(seq 1 100); do
    "$bin" seal --cert "$work/cert.pem" -f "$work/one-$i.yml" > "$work/out-$i.yml"
done
end=$(now)
many=$(ms "$start" "$end")

printf 'one call, 100 keys:        %8.1f ms (best of 5; target <= 50 ms)\n' "$best"
printf '100 invocations, 1 key each: %6.1f ms\n' "$many"
printf 'ratio:                      %6.1fx\n' "$(awk -v a="$many" -v b="$best" 'BEGIN { printf "%.1f", a / b }')"
if lt 50 "$best"; then
    echo "over the 50 ms target" >&2
    exit 1
fi
