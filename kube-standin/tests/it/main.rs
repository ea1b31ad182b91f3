//! Integration tests of kube-standin against real clients. Modules:
//! - `kubectl`: the real kubectl 1.32 (PATH dispatcher) and 1.35 binaries;
//! - `kube_rs`: kube-rs discovery, SSA, conditions, retries, watchers;
//! - `bridges`: port-forward to the local PostgreSQL, Redis and RabbitMQ (directly and through the simulated
//!   operators' pods with `Builder::bridge`) and the service proxy;
//! - `protocol`: raw-HTTP checks of watch, errors, access reviews, admin endpoints, simulation;
//! - `binary`: the `kube-standin serve` command (and its `--bridge` flag);
//! - `controllers`: Deployment/StatefulSet/Job controllers, garbage collection, namespaces, Argo CD.
//! - `argocd_sync`: `--argocd`: Applications rendered with real helm and applied, errors, pruning, mirrors.
//! - `printing`: server-side Tables (`kubectl get`, `-o wide`, `-w`, CRD columns) and `kubectl scale`;
//! - `openapi_explain`: `/openapi/v2|v3`, `kubectl explain`, client-side `apply` and `diff`.
//! - `real_clients`: kubectl `create`/`auth can-i` (protobuf bodies), helm 4 and 3 lifecycles with no proxy,
//!   the Python `kubernetes` client.
//! - `sealed_secrets`: the sealed-secrets controller unsealing what kubesealpy sealed, its endpoints.
//! - `platform_charts`: the real cert-manager, sealed-secrets and argo-cd charts installed by helm 4 and 3.

mod argocd_sync;
mod binary;
mod bridges;
mod common;
mod controllers;
mod kube_rs;
mod kubectl;
mod openapi_explain;
mod platform_charts;
mod printing;
mod protocol;
mod real_clients;
mod sealed_secrets;
