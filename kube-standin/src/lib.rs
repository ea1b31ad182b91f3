//! kube-standin: an in-memory Kubernetes API server for end-to-end tests.
//!
//! It speaks the Kubernetes REST protocol over plain HTTP on `127.0.0.1`, well enough for kube-rs 5 and
//! the real kubectl (1.32 and 1.35): discovery (plain and aggregated), OpenAPI v2/v3 built from the
//! upstream document (explain, client-side apply), CRUD with label/field selectors, server-side Tables,
//! the status and scale subresources, watch, server-side apply, schema validation of custom resources,
//! port-forward over WebSocket to real local services, the service proxy, an operator simulation that
//! makes CloudNativePG, RabbitMQ, redis-operator, Keycloak, Argo CD and workload objects ready, and
//! fault injection. It is test support: never link it into a plugin.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use kube_standin::{Fault, StandIn};
//!
//! let api = StandIn::builder()
//!     .crd_dir(kube_standin::shared_crds("cloudnative-pg"))
//!     .seed_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: staging}\nstringData: {password: x}\n")
//!     .port_forward("staging", "database-1", 5432, "127.0.0.1:5432")
//!     .simulate_ready(Duration::from_millis(200))
//!     .start()
//!     .await?;
//! let kubeconfig = api.write_kubeconfig(std::env::temp_dir())?; // KUBECONFIG for kubectl and the plugins
//! let client = api.client(); // a kube::Client
//! api.add_fault(Fault::too_many_requests(1).on_method("PATCH").times(1));
//! assert!(api.store().get("secrets", "staging", "s").is_some());
//! # let _ = (kubeconfig, client);
//! # Ok(()) }
//! ```
//!
//! Layout: [`registry`] (served types), [`store`] (objects, resourceVersions, write path), [`schema`]
//! (CRD validation), [`apply`] (server-side apply), [`patch`], [`selector`], [`watch`], [`discovery`],
//! [`openapi`], [`printers`] (server-side Tables), [`scale`], [`strategic`] (strategic merge patch),
//! [`protobuf`] (protobuf request bodies and answers), [`authz`] (access policy), [`handlers`] (HTTP
//! routing), [`portforward`], [`proxy`], [`sealing`] (the sealed-secrets controller's keys and endpoints), [`simulate`], [`controllers`] (garbage collector, namespace,
//! workload and Argo CD controllers), [`faults`], [`server`] (builder and handle).

pub mod apply;
pub mod authz;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod handlers;
pub mod openapi;
pub mod patch;
pub mod portforward;
pub mod printers;
pub mod protobuf;
pub mod proxy;
pub mod registry;
pub mod scale;
pub mod schema;
pub mod sealing;
pub mod selector;
pub mod server;
pub mod simulate;
pub mod store;
pub mod strategic;
pub mod util;
pub mod watch;

pub use error::{ApiError, Error};
pub use faults::{Fault, FaultAction, Identity, RequestRecord};
pub use protobuf::shared_protos_dir;
pub use server::{Builder, StandIn, kubeconfig_yaml, shared_crds, shared_crds_dir};
pub use store::Store;
