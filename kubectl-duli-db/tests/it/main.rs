//! End-to-end tests of `kubectl duli db`, through the real kubectl's plugin dispatch, against kube-standin
//! seeded as the operators would have it, with real PostgreSQL, Redis and RabbitMQ behind the
//! port-forwards.
//!
//! - `harness`: servers, stand-in, running the plugin.
//! - `fixture`: the seeded objects.
//! - `status`: healthy, down, not ready, timeouts, several environments.
//! - `connect`: psql and redis-cli through the forward, wrong password, missing Secret or client, prod guard.
//! - `creds`: table, JSON, export lines, the password only on request.
//! - `secrecy`: passwords never in a command line, output or log.

mod connect;
mod creds;
mod fixture;
mod harness;
mod secrecy;
mod status;
