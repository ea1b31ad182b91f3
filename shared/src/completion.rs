//! kubectl-native completion: kubectl (1.26+) completes `kubectl duli env <TAB>` by running
//! `kubectl_complete-duli-env` from PATH with the words after the plugin's name, the last one being the word
//! under the cursor (possibly empty). It expects cobra's `__complete` answer: one candidate a line, with an
//! optional `\tdescription`, then `:<directive>` (kubernetes/kubernetes#105867, cobra `completions.go`).
//!
//! The completers are tiny scripts that run `kubectl-duli-env __complete WORDS…`; each plugin's `main`
//! hands that to [`intercept`] before parsing its command line. Candidates come from the plugin's clap
//! `Command` (subcommands, flags, `ValueEnum` values) and from the repository and kubeconfig
//! (environments, charts, kubeconfig names): environment names, chart names, kubeconfig contexts, clusters and users.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

/// The hidden first argument that asks a plugin for completions instead of running a command.
pub const COMPLETE: &str = "__complete";

/// Cobra's `ShellCompDirective` values (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Default: the shell may complete file names.
    Default = 0,
    /// Do not add a space after the completion (a `--flag=` prefix).
    NoSpace = 2,
    /// Do not complete file names.
    NoFileComp = 4,
    /// Complete directory names only.
    FilterDirs = 16,
}

/// A completion answer: candidates (value, description) and the directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    /// The candidates, already filtered by the word under the cursor.
    pub candidates: Vec<(String, String)>,
    /// What the shell does besides offering the candidates.
    pub directive: Directive,
}

impl Completions {
    /// Cobra's wire format: `value\tdescription` lines, then `:directive`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (value, description) in &self.candidates {
            // A description is one line; tabs and newlines would break the protocol.
            let description: String = description.lines().next().unwrap_or_default().replace('\t', " ");
            if description.is_empty() {
                text.push_str(value);
            } else {
                text.push_str(&format!("{value}\t{description}"));
            }
            text.push('\n');
        }
        text.push_str(&format!(":{}\n", self.directive as u8));
        text
    }
}

/// When the command line `args` (`args[0]` the program) is `PLUGIN __complete WORDS…`, print the completions of `command` for
/// WORDS and return the exit code; else `None` (parse and run as usual). Call it first thing in `main`.
pub fn intercept(args: &[std::ffi::OsString], command: impl FnOnce() -> Command) -> Option<ExitCode> {
    let mut args = args.iter().skip(1);
    if args.next().is_none_or(|first| first != COMPLETE) {
        return None;
    }
    let words: Vec<String> = args.map(|word| word.to_string_lossy().into_owned()).collect();
    let text = complete(&command(), &words).render();
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (the shell gave up) is not an error worth a message.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    Some(ExitCode::SUCCESS)
}

/// Where the words put us: the (sub)command reached, the flags it and its parents take, the flag waiting
/// for a value, how many positionals were given, and the flag values seen (`--repo`, `--kubeconfig`).
struct Position<'a> {
    command: &'a Command,
    flags: Vec<&'a Arg>,
    pending: Option<&'a Arg>,
    positionals: usize,
    after_double_dash: bool,
    seen: Vec<(String, String)>,
}

fn takes_value(arg: &Arg) -> bool {
    !matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count | ArgAction::Help | ArgAction::Version
    ) && arg.get_num_args().is_none_or(|range| range.takes_values())
}

fn walk<'a>(root: &'a Command, words: &[String]) -> Position<'a> {
    let mut position = Position {
        command: root,
        flags: root.get_arguments().filter(|arg| !arg.is_positional()).collect(),
        pending: None,
        positionals: 0,
        after_double_dash: false,
        seen: Vec::new(),
    };
    for word in words {
        if let Some(flag) = position.pending.take() {
            position.seen.push((flag.get_id().to_string(), word.clone()));
            continue;
        }
        if position.after_double_dash {
            continue;
        }
        if word == "--" {
            position.after_double_dash = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let found = position.flags.iter().copied().find(|arg| {
                arg.get_long() == Some(name) || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
            });
            if let Some(arg) = found {
                match value {
                    Some(value) => position.seen.push((arg.get_id().to_string(), value.to_string())),
                    None if takes_value(arg) => position.pending = Some(arg),
                    None => {}
                }
            }
            continue;
        }
        if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            // `-vv`, `-o`, `-ojson`: the first short that takes a value takes the rest of the word, or the next.
            for (index, short) in shorts.char_indices() {
                let found = position
                    .flags
                    .iter()
                    .copied()
                    .find(|arg| arg.get_short() == Some(short));
                if let Some(arg) = found.filter(|arg| takes_value(arg)) {
                    let rest = &shorts[index + short.len_utf8()..];
                    if rest.is_empty() {
                        position.pending = Some(arg);
                    } else {
                        position.seen.push((arg.get_id().to_string(), rest.to_string()));
                    }
                    break;
                }
            }
            continue;
        }
        if position.positionals == 0
            && let Some(sub) = position.command.find_subcommand(word)
        {
            position.command = sub;
            // Global flags are valid after the subcommand too; the subcommand adds its own.
            let globals: Vec<&Arg> = position
                .flags
                .iter()
                .copied()
                .filter(|arg| arg.is_global_set())
                .collect();
            position.flags = globals;
            position
                .flags
                .extend(sub.get_arguments().filter(|arg| !arg.is_positional()));
            continue;
        }
        position.positionals += 1;
    }
    position
}

/// The completions of `command` for `words` (the last one is the word under the cursor; none: empty).
pub fn complete(command: &Command, words: &[String]) -> Completions {
    // Building fills in what clap derives late (value counts, `--help`); globals are carried by `walk`.
    let mut command = command.clone();
    command.build();
    let command = &command;
    let (current, before) = match words.split_last() {
        Some((current, before)) => (current.as_str(), before),
        None => ("", &[][..]),
    };
    let position = walk(command, before);
    let context = Context::from_seen(&position.seen);
    if let Some(flag) = position.pending {
        return values_of(flag, current, &context);
    }
    if position.after_double_dash {
        return Completions {
            candidates: Vec::new(),
            directive: Directive::Default,
        };
    }
    if let Some(long) = current.strip_prefix("--")
        && let Some((name, value)) = long.split_once('=')
    {
        // `--output=js`: the flag's values, each given back with its `--output=` prefix.
        let flag = position
            .flags
            .iter()
            .copied()
            .find(|arg| arg.get_long() == Some(name));
        return match flag {
            Some(flag) => {
                let mut answer = values_of(flag, value, &context);
                for (candidate, _) in &mut answer.candidates {
                    *candidate = format!("--{name}={candidate}");
                }
                answer
            }
            None => nothing(),
        };
    }
    if current.starts_with('-') {
        let mut candidates = Vec::new();
        for arg in &position.flags {
            if arg.is_hide_set() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                candidates.push((format!("--{long}"), help_of(arg)));
            }
        }
        candidates.sort();
        candidates.dedup_by(|a, b| a.0 == b.0);
        return filtered(candidates, current, Directive::NoFileComp);
    }
    if position.positionals == 0 && position.command.has_subcommands() {
        let candidates = position
            .command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(|sub| {
                let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
                (sub.get_name().to_string(), about)
            })
            .collect();
        return filtered(candidates, current, Directive::NoFileComp);
    }
    let positional = position
        .command
        .get_positionals()
        .filter(|arg| !arg.is_last_set())
        .nth(position.positionals)
        .or_else(|| {
            // A positional taking several values (`verify FILE…`) keeps taking them.
            position
                .command
                .get_positionals()
                .filter(|arg| !arg.is_last_set())
                .last()
                .filter(|arg| arg.get_num_args().is_some_and(|range| range.max_values() > 1))
        });
    match positional {
        Some(arg) => values_of(arg, current, &context),
        None => nothing(),
    }
}

fn nothing() -> Completions {
    Completions {
        candidates: Vec::new(),
        directive: Directive::NoFileComp,
    }
}

fn help_of(arg: &Arg) -> String {
    arg.get_help().map(ToString::to_string).unwrap_or_default()
}

fn filtered(candidates: Vec<(String, String)>, prefix: &str, directive: Directive) -> Completions {
    Completions {
        candidates: candidates
            .into_iter()
            .filter(|(value, _)| value.starts_with(prefix))
            .collect(),
        directive,
    }
}

/// What the flags on the line say about where to look: `--repo` (else `DULI_REPO`, else the current
/// directory) and `--kubeconfig`.
struct Context {
    repo: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
}

impl Context {
    fn from_seen(seen: &[(String, String)]) -> Context {
        let get = |id: &str| {
            seen.iter()
                .rev()
                .find(|(name, _)| name == id)
                .map(|(_, value)| PathBuf::from(value))
        };
        Context {
            repo: get("repo"),
            kubeconfig: get("kubeconfig"),
        }
    }

    fn repo(&self) -> Option<crate::repo::Repo> {
        let explicit = self
            .repo
            .clone()
            .or_else(|| std::env::var_os("DULI_REPO").map(PathBuf::from));
        let cwd = std::env::current_dir().ok()?;
        crate::repo::Repo::locate(explicit.as_deref(), &cwd).ok()
    }

    fn kubeconfig(&self) -> Option<kube::config::Kubeconfig> {
        match &self.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path).ok(),
            None => kube::config::Kubeconfig::read().ok(),
        }
    }
}

/// The values of `arg` matching `current`: its possible values (`ValueEnum`), else [`dynamic_values`];
/// a file or directory argument without either leaves the shell to complete paths.
fn values_of(arg: &Arg, current: &str, context: &Context) -> Completions {
    let possible: Vec<(String, String)> = arg
        .get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| {
            let help = value.get_help().map(ToString::to_string).unwrap_or_default();
            (value.get_name().to_string(), help)
        })
        .collect();
    if !possible.is_empty() {
        return filtered(possible, current, Directive::NoFileComp);
    }
    if let Some(values) = dynamic_values(arg.get_id().as_str(), context) {
        return filtered(values, current, Directive::NoFileComp);
    }
    let value_name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.as_str())
        .unwrap_or_default();
    let directive = match value_name {
        "DIR" => Directive::FilterDirs,
        "FILE" | "PATH" | "FILE|URL" | "[KEY=]PATH" => Directive::Default,
        _ => Directive::NoFileComp,
    };
    Completions {
        candidates: Vec::new(),
        directive,
    }
}

/// Values that live outside the command line, by argument id: `env`/`envs` (the files of
/// `gitops/environments`), `chart`/`charts` (the charts under `helm/`), `context`, `cluster`, `user` (the
/// kubeconfig's). `None` for any other argument.
fn dynamic_values(id: &str, context: &Context) -> Option<Vec<(String, String)>> {
    match id {
        "env" | "envs" | "environment" => {
            Some(context.repo().map(|repo| environments(&repo)).unwrap_or_default())
        }
        "chart" | "charts" => Some(context.repo().map(|repo| charts(&repo)).unwrap_or_default()),
        "context" => Some(
            context
                .kubeconfig()
                .map(|config| {
                    config
                        .contexts
                        .into_iter()
                        .map(|named| {
                            let cluster = named.context.map(|c| c.cluster).unwrap_or_default();
                            (named.name, format!("cluster {cluster}"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "cluster" => Some(
            context
                .kubeconfig()
                .map(|config| {
                    config
                        .clusters
                        .into_iter()
                        .map(|c| (c.name, String::new()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "user" => Some(
            context
                .kubeconfig()
                .map(|config| {
                    config
                        .auth_infos
                        .into_iter()
                        .map(|u| (u.name, String::new()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

/// The environments: one per `gitops/environments/*.yml`, described by namespace and tier when it loads.
fn environments(repo: &crate::repo::Repo) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(repo.environments_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let is_yml = path
                .extension()
                .is_some_and(|ext| ext == crate::paths::ENVIRONMENT_EXTENSION);
            is_yml
                .then(|| path.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let description = crate::environment::Environment::load(repo, &name)
                .map(|env| format!("namespace {}, tier {}", env.namespace, env.tier.as_label()))
                .unwrap_or_default();
            (name, description)
        })
        .collect()
}

/// The charts: each directory under `helm/` with a `Chart.yaml`.
fn charts(repo: &crate::repo::Repo) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(repo.charts_dir()) else {
        return Vec::new();
    };
    let mut names: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join(crate::paths::CHART_FILE).is_file())
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .map(|name| (name.to_string(), String::new()))
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand, ValueEnum};

    #[derive(Debug, Clone, Copy, ValueEnum)]
    enum Service {
        Postgres,
        Redis,
    }

    #[derive(Parser)]
    #[command(name = "demo")]
    struct Demo {
        #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
        output: crate::output::OutputFormat,
        #[arg(long, global = true)]
        yes: bool,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand)]
    enum Sub {
        /// Show things.
        Status {
            env: Option<String>,
            #[arg(long)]
            no_live: bool,
        },
        /// Connect.
        Connect {
            env: String,
            #[arg(value_enum)]
            service: Service,
        },
        #[command(hide = true)]
        Secret,
    }

    fn words(text: &[&str]) -> Vec<String> {
        text.iter().map(|word| word.to_string()).collect()
    }

    fn values(command: &Command, text: &[&str]) -> Vec<String> {
        complete(command, &words(text))
            .candidates
            .into_iter()
            .map(|(value, _)| value)
            .collect()
    }

    #[test]
    fn subcommands_flags_and_enum_values() {
        use clap::CommandFactory;
        let command = Demo::command();
        assert_eq!(values(&command, &[""]), ["status", "connect", "help"]);
        assert_eq!(values(&command, &["st"]), ["status"]);
        assert_eq!(values(&command, &["status", "--n"]), ["--no-live"]);
        assert!(values(&command, &["status", "--"]).contains(&"--output".to_string()));
        assert_eq!(values(&command, &["status", "-o", "j"]), ["json"]);
        assert_eq!(values(&command, &["status", "--output=y"]), ["--output=yaml"]);
        assert_eq!(
            values(&command, &["connect", "staging", ""]),
            ["postgres", "redis"]
        );
        assert_eq!(
            values(&command, &["-o", "json", "connect", "x", "--yes", "r"]),
            ["redis"]
        );
    }

    #[test]
    fn the_wire_format_is_cobras() {
        let answer = Completions {
            candidates: vec![
                ("up".into(), "Converge\tENV".into()),
                ("list".into(), String::new()),
            ],
            directive: Directive::NoFileComp,
        };
        assert_eq!(answer.render(), "up\tConverge ENV\nlist\n:4\n");
    }
}
