//! End-to-end tests of `kubectl duli db`, through the real kubectl's plugin dispatch, against kube-standin
//! seeded as the operators would have it, with real PostgreSQL, Redis and RabbitMQ behind the
//! port-forwards (started by `testkit::services`).
//!
//! - `support`: the stand-in per test, running the plugin.
//! - `fixture`: the seeded objects.
//! - `status`: healthy, down, not ready, timeouts, several environments.
//! - `connect`: psql and redis-cli through the forward, wrong password, missing Secret or client, prod guard.
//! - `creds`: table, JSON, export lines, the password only on request.
//! - `faults`: the fault matrix of `status` (latency, 429, 500/503 bursts, watches, API server killed).
//! - `leaks`: the secret-leak audit (`testkit::leakscan`): argv and environment of the process tree, temp
//!   files, output at -vv, the 0600 password file.
//! - `corpus`: the bad-input corpus (issue #9): exit 2, a message naming the input, nothing written or applied.
//! - `hostile`: issue #17's cases: SIGTERM during connect, a hanging exec credential plugin, a closed stdout.
//! - `in_process`: the library's `run` called in-process, its output captured from the writer it is given.

mod anywhere;
mod client_flags;
mod connect;
mod corpus;
mod creds;
mod faults;
mod fixture;
mod hostile;
mod in_process;
mod leaks;
mod status;
mod support;
