//! `kubectl duli`: the bare entry point. kubectl runs it for `kubectl duli` with no slice (or an unknown
//! one); it lists the slices instead of kubectl's "unknown command".
//!
//! It lives in the env crate because env is the plugin every duli user installs first (it brings the
//! environment up) and this binary needs no slice's code: any crate would do, and here it ships with the
//! plugin that is always present, without a crate of its own for forty lines.

use std::process::ExitCode;

/// The slices: (name, one-line purpose).
const SLICES: [(&str, &str); 4] = [
    ("env", "bring an environment up, plan it, show it, take it down"),
    (
        "db",
        "status, connect and credentials for PostgreSQL, Redis and RabbitMQ",
    ),
    (
        "secrets",
        "seal Secrets kubeseal-compatibly; init, verify, rotate, audit",
    ),
    (
        "render",
        "render and validate a whole environment (run as `helm duli-render ENV`)",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let asked_for_help = args.is_empty()
        || args
            .iter()
            .any(|arg| arg == "-h" || arg == "--help" || arg == "help");
    let mut text = String::from(
        "duli: kubectl and helm plugins for the duli platform (environments staging and prod)\n\nSlices:\n",
    );
    for (name, purpose) in SLICES {
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
        eprintln!("error: unknown slice `{}`\n\n{text}", args[0]);
        ExitCode::from(2)
    }
}
