//! `kubectl duli secrets`: seal Secrets into SealedSecrets exactly as kubeseal does, and manage them.
//!
//! - [`format`](mod@format): the byte format of one sealed value and the scope labels.
//! - [`cert`]: the controller certificate (parse, expiry, per-context cache).
//! - [`source`]: where the certificate comes from (`--cert`, the cluster, the cache).
//! - [`controller`]: the controller's endpoints through the API service proxy.
//! - [`input`]: plaintext values from flags, files, env files and hidden prompts.
//! - [`manifest`]: Secret manifests in, SealedSecret documents out, merging into existing files.
//! - [`seal`]: the `seal`, `raw` and `fetch-cert` commands.
//! - [`remote`]: the `verify` and `rotate` commands.
//! - [`init`]: `init ENV`, the environment's credentials from `gitops/secrets.yml`.
//! - [`audit`]: `audit [ENV]`, secret-looking values in the rendered environment and live ConfigMaps.
//! - [`yaml`]: the deterministic YAML writer and the in-place `encryptedData` edit.
//! - [`files`]: atomic writes.

pub mod audit;
pub mod cert;
pub mod controller;
pub mod files;
pub mod format;
pub mod init;
pub mod input;
pub mod manifest;
pub mod remote;
pub mod seal;
pub mod source;
pub mod yaml;

#[cfg(test)]
pub(crate) mod testkeys;
