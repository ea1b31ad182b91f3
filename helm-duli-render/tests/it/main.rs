//! The integration tests of `helm-duli-render`, one binary (`cargo nextest run -p helm-duli-render`):
//! the fixture charts end to end ([`render`]), bad input ([`bad_input_corpus`]), CRDs from a cluster
//! ([`cluster`]), the real platform charts ([`platform_charts`]), the helm plugin ([`plugin`]), upstream charts through a mirror ([`upstream`]) and the
//! command run in-process ([`in_process`]); [`common`] holds their shared setup.

mod bad_input_corpus;
mod cluster;
mod common;
mod crds_from_charts;
mod formats;
mod hostile_input;
mod in_process;
mod nondeterministic;
mod platform_charts;
mod plugin;
mod render;
mod upstream;
mod upstream_values;
