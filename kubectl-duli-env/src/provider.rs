//! The provider API token Secret a provider's charts read (DigitalOcean's CSI driver and cloud controller
//! manager): where it lives and which environment variable may hold the token. A leaf module: the platform
//! phase applies the Secret, and helm is run without those variables in its environment.

/// The token Secret a provider's charts read (see `gitops/secrets.yml`, `digitalocean-csi-secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSecret {
    /// The provider.
    pub provider: &'static str,
    /// Secret namespace.
    pub namespace: &'static str,
    /// Secret name.
    pub name: &'static str,
    /// The key holding the token.
    pub key: &'static str,
    /// The environment variable that may hold the token (doctl's).
    pub env_var: &'static str,
}

/// The token Secret for `provider`, when its charts need one.
pub fn provider_secret(provider: &str) -> Option<ProviderSecret> {
    (provider == "digitalocean").then_some(ProviderSecret {
        provider: "digitalocean",
        namespace: "kube-system",
        name: "digitalocean-csi-secret",
        key: "access-token",
        env_var: "DIGITALOCEAN_ACCESS_TOKEN",
    })
}
