//! `kubectl duli secrets`: seal Secrets into SealedSecrets exactly as kubeseal does, and manage them:
//! `seal`, `raw`, `fetch-cert`, `verify`, `rotate`, `unseal`, `init ENV` and `audit [ENV]` — and, without a
//! subcommand, kubeseal's own flags (see [`cli::KubesealArgs`]).
//!
//! Start at [`cli`] (every flag, on the option structs the commands take) and [`run()`] (runs a parsed
//! command line and prints its report: the one place this crate prints). The binary only parses and calls
//! [`run()`].
//!
//! - [`cli`]: the command line and the commands' options.
//! - `run`: dispatch and printing (tables, `-o json|yaml`, progress lines on stderr).
//! - [`format`](mod@format): the byte format of one sealed value and the scope labels.
//! - `cert`: the controller certificate (parse, expiry, per-context cache).
//! - `source`: where the certificate comes from (`--cert`, the cluster, the cache).
//! - `controller`: the controller's endpoints through the API service proxy.
//! - `input`: plaintext values from flags, files, env files and hidden prompts.
//! - [`manifest`]: Secret manifests in, SealedSecret documents out, merging into existing files.
//! - `seal`: the `seal`, `raw` and `fetch-cert` commands.
//! - `remote`: the `verify` and `rotate` commands.
//! - `recovery`: `unseal` and offline `rotate --private-key`, with backed-up controller keys.
//! - `init`: `init ENV`, the environment's credentials from `gitops/secrets.yml`.
//! - `audit`: `audit [ENV]`, secret-looking values in the rendered environment and live ConfigMaps.
//! - [`yaml`]: the deterministic YAML writer and the in-place `encryptedData` edit.
//! - `files`: atomic writes.
//!
//! [`format`](mod@format), [`manifest`] and [`yaml`] are public for the fuzz targets (`shared/fuzz`) and the
//! integration tests, which open sealed values with the controller's key.

pub mod cli;
pub mod format;
pub mod manifest;
pub mod yaml;

pub(crate) mod audit;
pub(crate) mod cert;
pub(crate) mod controller;
pub(crate) mod files;
pub(crate) mod init;
pub(crate) mod input;
pub(crate) mod recovery;
pub(crate) mod remote;
mod run;
pub(crate) mod seal;
pub(crate) mod source;

#[cfg(test)]
mod testkeys;

pub use remote::count_documents;
pub use run::run;
