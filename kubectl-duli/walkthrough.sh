#!/usr/bin/env bash
# The whole platform on one machine, as the README's walkthrough tells it: a kube-standin with its Argo CD
# syncing a copy of this repository, the real upstream charts from ../shared/charts/repo, operators that
# create what the real ones create with their pods bridged to real PostgreSQL, Redis and RabbitMQ; then
# `secrets init`, `env up`, `db status`, `db connect`, a repository broken on purpose and fixed, `env down`.
#
# Usage: kubectl-duli/walkthrough.sh [WORK_DIR]
# Needs on PATH: kubectl, kubectl-duli (or the kubectl-duli-* plugins), kube-standin, helm, psql, pg_ctl,
# redis-server, redis-cli, python3. Starts its own PostgreSQL (a primary and two streaming standbys in
# WORK_DIR; as the `postgres` user when run as root) and Redis servers (a master, two replicas, a Sentinel);
# uses the machine's RabbitMQ (127.0.0.1:5672, guest/guest). Exits non-zero at the first step that does
# not do what the walkthrough says.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
shared="${DULI_SHARED:-$root/../shared}"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
repo_url=https://github.com/duli-one/infrastructure-kubernetes.git
pids=()

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'walkthrough: %s\n' "$*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_bin="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
# PostgreSQL refuses to run as root.
as_postgres() { if [ "$(id -u)" = 0 ]; then "$(PATH="$PATH:/usr/sbin:/sbin" command -v runuser)" -u postgres -- "$@"; else "$@"; fi; }
pg_dirs=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for dir in "${pg_dirs[@]}"; do as_postgres "$pg_bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true; done
    rm -f "$work/prompts.env" "$work/sentinel.conf"
}
trap cleanup EXIT

step "A copy of the repository; staging and prod on a generic cluster (no DigitalOcean charts, storage class 'standard')"
rm -rf "$work/repo"
mkdir -p "$work/repo"
cp -r "$root/gitops" "$root/helm" "$work/repo/"
sed -i 's/^provider: digitalocean/provider: generic/; s/^storage_class: do-block-storage/storage_class: standard/' \
    "$work/repo/gitops/environments/staging.yml" "$work/repo/gitops/environments/prod.yml"
export DULI_REPO="$work/repo" KUBECONFIG="$work/kubeconfig" DULI_STATE_DIR="$work/state"

step "The upstream charts, served on 127.0.0.1 as a chart mirror"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$shared/charts/repo" >"$work/charts.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q 'port' "$work/charts.log" 2>/dev/null && break; sleep 0.1; done
charts="http://127.0.0.1:$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/charts.log" | head -1)"
[ "$charts" != "http://127.0.0.1:" ] || fail "the chart server did not start: $(cat "$work/charts.log")"

step "Real PostgreSQL for the CloudNativePG pods: a primary and two streaming standbys"
pg_ports=("$(free_port)" "$(free_port)" "$(free_port)")
chmod 711 "$work"
mkdir -p "$work/postgres"
[ "$(id -u)" != 0 ] || chown postgres "$work/postgres"
pg_start() { # DIR PORT
    as_postgres "$pg_bin/pg_ctl" -D "$1" -l "$1.log" -w -o "-p $2 -k $work/postgres -c listen_addresses=127.0.0.1" start >/dev/null
    pg_dirs+=("$1")
}
as_postgres "$pg_bin/initdb" -D "$work/postgres/primary" -U postgres -A trust >/dev/null
pg_start "$work/postgres/primary" "${pg_ports[0]}"
for i in 1 2; do
    dir="$work/postgres/standby-$i"
    as_postgres pg_basebackup -h 127.0.0.1 -p "${pg_ports[0]}" -U postgres -D "$dir" -R
    # The standby's name on the primary is its pod's, as CloudNativePG names replicas.
    echo "primary_conninfo = 'host=127.0.0.1 port=${pg_ports[0]} user=postgres application_name=database-$((i + 1))'" \
        | as_postgres tee -a "$dir/postgresql.auto.conf" >/dev/null
    pg_start "$dir" "${pg_ports[$i]}"
done
pg_bridge="127.0.0.1:${pg_ports[0]},127.0.0.1:${pg_ports[1]},127.0.0.1:${pg_ports[2]}"

step "kube-standin with Argo CD syncing the copy and pods bridged to real servers"
redis_ports=("$(free_port)" "$(free_port)" "$(free_port)")
sentinel_port="$(free_port)"
redis_bridge="127.0.0.1:${redis_ports[0]},127.0.0.1:${redis_ports[1]},127.0.0.1:${redis_ports[2]}"
KUBE_STANDIN_RABBITMQ_PASSWORD=guest kube-standin serve --simulate-ready 1s \
    --argocd "$repo_url=$work/repo" --chart-mirror "*=$charts" --helm "$(command -v helm)" \
    --bridge "postgres=$pg_bridge" --bridge "redis=$redis_bridge" \
    --bridge "redis-sentinel=127.0.0.1:$sentinel_port" --bridge rabbitmq=guest@127.0.0.1:5672 \
    --kubeconfig-out "$KUBECONFIG" >"$work/standin.out" 2>"$work/standin.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.1; done
[ -s "$KUBECONFIG" ] || fail "kube-standin did not start: $(cat "$work/standin.err")"
kubectl apply -f - <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
YAML

step "Platform phase: cert-manager, sealed-secrets and argo-cd from the mirror, with real helm"
kubectl duli env up staging --only platform --chart-mirror "*=$charts" --timeout 5m

step "secrets init: fresh credentials sealed with the controller's certificate"
umask 077
printf '%s\n' model-api-key=walkthrough-model-key ACCESS_KEY_ID=walkthrough-id \
    ACCESS_SECRET_KEY=walkthrough-secret api-token=walkthrough-cloudflare access-token=walkthrough-do \
    >"$work/prompts.env"
kubectl duli secrets init staging --from-env-file "$work/prompts.env" </dev/null
umask 022

step "env up staging: every phase"
start=$(date +%s.%N)
kubectl duli env up staging --chart-mirror "*=$charts" --timeout 5m
up_seconds=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")

step "A second env up changes nothing"
again="$(kubectl duli env up staging --chart-mirror "*=$charts" --timeout 5m 2>&1)"
printf '%s\n' "$again" | grep -E '^total ' | grep -qE '^total +[0-9.]+s +0 +0 ' \
    || fail "the second up changed something:
$again"
printf '%s\n' "$again" | grep -E '^total '

step "prod beside it (guarded: --yes, as a pipeline says it)"
kubectl duli secrets init prod --from-env-file "$work/prompts.env" --yes </dev/null
kubectl duli env up prod --chart-mirror "*=$charts" --timeout 5m --yes

step "Real Redis behind the pods: a master, two replicas and a Sentinel, with the password of redis-secret"
password="$(kubectl -n staging get secret redis-secret -o jsonpath='{.data.password}' | base64 -d)"
[ -n "$password" ] || fail "redis-secret has no password"
for i in 0 1 2; do
    # Each in a directory of its own: a replica stores the master's snapshot there while it syncs.
    mkdir -p "$work/redis-$i"
    {
        printf 'port %s\nbind 127.0.0.1\ndir "%s"\nsave ""\nappendonly no\nrequirepass "%s"\nmasterauth "%s"\n' \
            "${redis_ports[$i]}" "$work/redis-$i" "$password" "$password"
        [ "$i" = 0 ] || printf 'replicaof 127.0.0.1 %s\n' "${redis_ports[0]}"
    } | redis-server - >"$work/redis-$i.log" 2>&1 &
    pids+=($!)
done
printf 'port %s\nbind 127.0.0.1\ndir "%s"\nsentinel monitor mymaster 127.0.0.1 %s 1\nsentinel auth-pass mymaster "%s"\n' \
    "$sentinel_port" "$work" "${redis_ports[0]}" "$password" >"$work/sentinel.conf"
chmod 600 "$work/sentinel.conf"
redis-server "$work/sentinel.conf" --sentinel >"$work/sentinel.log" 2>&1 &
pids+=($!)
unset password
for _ in $(seq 100); do
    REDISCLI_AUTH="$(kubectl -n staging get secret redis-secret -o jsonpath='{.data.password}' | base64 -d)" \
        redis-cli -p "${redis_ports[0]}" info replication 2>/dev/null | grep -q '^connected_slaves:2' && break
    sleep 0.2
done

step "db status staging: postgres, redis and rabbitmq healthy, with live checks"
start_status=$(date +%s.%N)
kubectl duli db status staging
status_seconds=$(python3 -c "import time; print(f'{time.time() - $start_status:.1f}')")

step "db connect: psql and redis-cli through port-forwards"
kubectl duli db connect staging postgres -- -c 'select 1' | tee "$work/psql.out"
grep -qE '^ +1$' "$work/psql.out" || fail "psql did not answer 1"
kubectl duli db connect staging redis -- PING | tee "$work/redis.out"
grep -q PONG "$work/redis.out" || fail "redis-cli did not answer PONG"

step "Break the repository on purpose: a wrong path in one Application"
sed -i 's#path: helm/backend$#path: helm/backend-renamed#' "$work/repo/gitops/applications/backend.yml.j2"
if broken="$(kubectl duli env up staging --chart-mirror "*=$charts" --timeout 5m 2>&1)"; then
    fail "env up succeeded with a wrong path:
$broken"
fi
printf '%s\n' "$broken" | grep -F 'component `backend` (Application argocd/staging-backend, wave 5)' \
    | grep -F 'helm/backend-renamed: app path does not exist' || fail "env up did not name the broken Application:
$broken"
sed -i 's#path: helm/backend-renamed$#path: helm/backend#' "$work/repo/gitops/applications/backend.yml.j2"

step "... and a values file with a template error"
cp "$work/repo/helm/scheduler/values-staging.yml" "$work/values-staging.yml.good"
printf 'replicas: {{ .Values.oops }}\n' >>"$work/repo/helm/scheduler/values-staging.yml"
if broken="$(kubectl duli env up staging --chart-mirror "*=$charts" --timeout 5m 2>&1)"; then
    fail "env up succeeded with a broken values file:
$broken"
fi
printf '%s\n' "$broken" | grep -F 'Application argocd/staging-scheduler, wave 5' \
    | grep -F 'failed to parse values-staging.yml' || fail "env up did not name the broken values file:
$broken"
cp "$work/values-staging.yml.good" "$work/repo/helm/scheduler/values-staging.yml"

step "Fixed: env up converges"
kubectl duli env up staging --chart-mirror "*=$charts" --timeout 5m

step "env down staging: the cascade removes staging, the shared operators stay"
kubectl duli env down staging --yes --timeout 5m
if kubectl get namespace staging >/dev/null 2>&1; then fail "namespace staging is still there"; fi
kubectl -n argocd get application postgres-operator redis-operator rabbitmq-operator >/dev/null \
    || fail "the shared operators' Applications are gone"
kubectl -n cnpg-system get deployment cnpg-controller-manager >/dev/null || fail "the CloudNativePG operator is gone"
kubectl duli env status prod >/dev/null || fail "prod is not ready after staging went: $(kubectl duli env status prod 2>&1)"

printf '\nwalkthrough: ok — full env up %ss, db status %ss (up + status %ss)\n' \
    "$up_seconds" "$status_seconds" "$(python3 -c "print(f'{$up_seconds + $status_seconds:.1f}')")"
