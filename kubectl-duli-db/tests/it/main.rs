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
//! - `faults`: the fault matrix of `status` (latency, 429, 500/503 bursts, watches, API server killed).
//! - `relay`: a TCP relay to kill and restart the API server mid-run.
//! - `leaks`, `leakscan`: the secret-leak audit: argv and environment of the process tree, temp files,
//!   output at -vv, the 0600 password file.
//! - `corpus`: the bad-input corpus (issue #9): exit 2, a message naming the input, nothing written or applied.

mod connect;
mod corpus;
mod creds;
mod faults;
mod fixture;
mod harness;
mod leaks;
mod leakscan;
mod relay;
mod status;
