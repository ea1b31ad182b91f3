//! End-to-end tests of `kubectl duli env` through the real kubectl dispatch: our binary on a private PATH,
//! `/usr/bin/kubectl duli env …`, KUBECONFIG from kube-standin with its operator simulation, and real
//! helm 4 installing fixture charts in the platform phase.
//!
//! - `support`: the world each test gets (stand-in, repository copy, PATH, helm); `helm_proxy`: the
//!   protobuf-to-JSON shim helm needs in front of the stand-in.
//! - `up`: from empty to ready, idempotence, resume after a kill, faults, stuck components.
//! - `plan`, `status`, `down`: the other subcommands against an environment that `up` built.

mod down;
mod helm_proxy;
mod plan;
mod status;
mod support;
mod up;
