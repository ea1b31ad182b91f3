//! The prod guard: destructive or interactive actions on a production environment ask first.
//!
//! `--yes` answers for pipelines; without a terminal and without `--yes` the action is refused, never
//! silently taken.

use std::io::IsTerminal;

use crate::environment::Environment;

/// How the user must confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// A yes/no question.
    YesNo,
    /// The user types the environment's name (for deletion).
    TypeName,
}

/// Errors from the guard.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// No terminal to ask on.
    #[error(
        "refusing to {action} in production environment `{env}` without confirmation: no terminal to ask on; pass --yes to confirm non-interactively"
    )]
    NoTerminal {
        /// What was about to happen.
        action: String,
        /// The environment.
        env: String,
    },
    /// The user said no.
    #[error("{action} in `{env}` cancelled")]
    Declined {
        /// What was about to happen.
        action: String,
        /// The environment.
        env: String,
    },
    /// The prompt failed.
    #[error("cannot ask for confirmation: {0}")]
    Prompt(String),
}

/// Ask before `action` (e.g. "connect to PostgreSQL") when `env` is production.
pub fn guard(env: &Environment, action: &str, yes: bool, how: Confirmation) -> Result<(), ConfirmError> {
    guard_with_terminal(
        env,
        action,
        yes,
        how,
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    )
}

fn guard_with_terminal(
    env: &Environment,
    action: &str,
    yes: bool,
    how: Confirmation,
    terminal: bool,
) -> Result<(), ConfirmError> {
    if !env.is_production() || yes {
        return Ok(());
    }
    if !terminal {
        return Err(ConfirmError::NoTerminal {
            action: action.to_string(),
            env: env.name.clone(),
        });
    }
    let declined = || ConfirmError::Declined {
        action: action.to_string(),
        env: env.name.clone(),
    };
    let confirmed = match how {
        Confirmation::YesNo => dialoguer::Confirm::new()
            .with_prompt(format!("{action} in PRODUCTION environment `{}`?", env.name))
            .default(false)
            .interact()
            .map_err(|err| ConfirmError::Prompt(err.to_string()))?,
        Confirmation::TypeName => {
            let typed: String = dialoguer::Input::new()
                .with_prompt(format!(
                    "{action} in PRODUCTION: type the environment name `{}` to confirm",
                    env.name
                ))
                .allow_empty(true)
                .interact_text()
                .map_err(|err| ConfirmError::Prompt(err.to_string()))?;
            typed.trim() == env.name
        }
    };
    if confirmed { Ok(()) } else { Err(declined()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::Tier;

    fn env(tier: Tier) -> Environment {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let repo = crate::repo::Repo::at(root).unwrap();
        let mut env = Environment::load(&repo, "prod").unwrap();
        env.tier = tier;
        env
    }

    #[test]
    fn prod_without_terminal_or_yes_is_refused() {
        let err = guard_with_terminal(
            &env(Tier::Production),
            "take down",
            false,
            Confirmation::TypeName,
            false,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("--yes"), "{message}");
        assert!(message.contains("no terminal"), "{message}");
    }

    #[test]
    fn yes_and_non_production_pass() {
        guard_with_terminal(&env(Tier::Production), "x", true, Confirmation::YesNo, false).unwrap();
        guard_with_terminal(&env(Tier::NonProduction), "x", false, Confirmation::YesNo, false).unwrap();
    }
}
