//! `kubectl duli`: every slice in one binary.
//!
//! krew links one entry point per plugin (`kubectl-duli`), so `kubectl duli env up staging` reaches this
//! binary as `env up staging`; installed under the slices' own names as well (links to this file:
//! `kubectl-duli-env`, `kubectl-duli-db`, `kubectl-duli-secrets`, `helm-duli-render`, the helm plugin's
//! `duli-render`, and the `kubectl_complete-…` completers), it runs the slice its name says.
//! Bare, or with an unknown word, it lists the slices.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// The slices: (word after `kubectl duli`, program name, one-line purpose).
const SLICES: [(&str, &str, &str); 4] = [
    (
        "env",
        "kubectl-duli-env",
        "bring an environment up, plan it, show it, take it down",
    ),
    (
        "db",
        "kubectl-duli-db",
        "status, connect and credentials for PostgreSQL, Redis and RabbitMQ",
    ),
    (
        "secrets",
        "kubectl-duli-secrets",
        "seal Secrets kubeseal-compatibly (kubeseal's flags too); init, verify, rotate, unseal, audit",
    ),
    (
        "render",
        "helm-duli-render",
        "render and validate a whole environment (run as `helm duli-render ENV`)",
    ),
];

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(program) = program_of(&called) {
        return run(program, args);
    }
    // `kubectl duli SLICE …`: the slice runs as if called by its own name.
    let slice = args.get(1).and_then(|word| word.to_str()).and_then(|word| {
        SLICES
            .iter()
            .find(|(name, _, _)| *name == word)
            .map(|(_, program, _)| *program)
    });
    match slice {
        Some(program) => {
            args.remove(0);
            args[0] = program.into();
            run(program, args)
        }
        None => list_slices(&args),
    }
}

/// The slice program a name this binary was called by stands for.
fn program_of(called: &str) -> Option<&'static str> {
    let called = called.strip_prefix("kubectl_complete-").map_or(called, |rest| {
        // `kubectl_complete-duli-env` completes `kubectl duli env`; `kubectl_complete-duli`, `kubectl duli`.
        if rest == "duli" { "" } else { rest }
    });
    let called = called.strip_prefix("kubectl-").unwrap_or(called);
    match called {
        "duli-env" => Some("kubectl-duli-env"),
        "duli-db" => Some("kubectl-duli-db"),
        "duli-secrets" => Some("kubectl-duli-secrets"),
        "helm-duli-render" | "duli-render" => Some("helm-duli-render"),
        _ => None,
    }
}

fn run(program: &str, args: Vec<OsString>) -> ExitCode {
    match program {
        "kubectl-duli-env" => kubectl_duli_env::cli::entry(args),
        "kubectl-duli-db" => kubectl_duli_db::cli::entry(args),
        "kubectl-duli-secrets" => kubectl_duli_secrets::cli::entry(args),
        _ => helm_duli_render::cli::entry(args),
    }
}

fn list_slices(args: &[OsString]) -> ExitCode {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let asked_for_help = words.is_empty()
        || words
            .iter()
            .any(|arg| *arg == "-h" || *arg == "--help" || *arg == "help");
    let mut text = String::from(
        "duli: kubectl and helm plugins for the duli platform (environments staging and prod)\n\nSlices:\n",
    );
    for (name, _, purpose) in SLICES {
        let command = if name == "render" {
            "helm duli-render".to_string()
        } else {
            format!("kubectl duli {name}")
        };
        text.push_str(&format!("  {command:<22} {purpose}\n"));
    }
    text.push_str("\nRun `kubectl duli SLICE --help` for a slice's commands.\n");
    if asked_for_help {
        // A closed or full stdout is an error (exit 2), a closed pipe is quiet.
        shared::error::finish(shared::fsio::print_stdout(&text).map(|()| shared::error::Outcome::Clean))
    } else {
        eprintln!(
            "error: unknown slice `{}`\n\n{text}",
            words.first().copied().unwrap_or("")
        );
        ExitCode::from(2)
    }
}
