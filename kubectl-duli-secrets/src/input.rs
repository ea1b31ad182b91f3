//! Plaintext values from the places kubectl takes them: `--from-literal KEY=VALUE`, `--from-file
//! [KEY=]PATH`, `--from-env-file PATH`, and a hidden prompt per key on a terminal.
//!
//! Values stay in memory; messages name keys, files and line numbers, never values.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use crate::manifest::check_key;

/// Errors gathering values.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `--from-literal` without `=`.
    #[error("--from-literal `{key}`: expected KEY=VALUE")]
    Literal {
        /// What was given before any `=` (the key).
        key: String,
    },
    /// A key name a Secret does not allow.
    #[error("{origin}: {problem}")]
    Key {
        /// Which flag/file/line.
        origin: String,
        /// The rule.
        problem: String,
    },
    /// The same key twice.
    #[error("key `{key}` is given twice ({first} and {second}); give each key once")]
    Duplicate {
        /// The key.
        key: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A file too large, not a regular file, or unreadable.
    #[error(transparent)]
    File(#[from] shared::fsio::FsError),
    /// An env file line that is neither `KEY=VALUE` nor the name of a set environment variable.
    #[error("{path} line {line}: {problem}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A prompt is needed but there is no terminal.
    #[error(
        "cannot prompt for `{key}`: no terminal; pass it with --from-env-file FILE (KEY=VALUE lines) or --from-file {key}=PATH"
    )]
    NoTerminal {
        /// The key.
        key: String,
    },
    /// The prompt failed.
    #[error("cannot read `{key}` from the terminal: {message}")]
    Prompt {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

/// Values gathered so far, remembering where each key came from.
#[derive(Default)]
pub struct Values {
    items: BTreeMap<String, (Vec<u8>, String)>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items.keys()).finish()
    }
}

impl Values {
    /// Empty.
    pub fn new() -> Self {
        Values::default()
    }

    /// Add one value; a repeated key or a bad key name is an error.
    pub fn add(&mut self, key: &str, value: Vec<u8>, origin: impl Into<String>) -> Result<(), InputError> {
        let origin = origin.into();
        check_key(key).map_err(|problem| InputError::Key {
            origin: origin.clone(),
            problem,
        })?;
        if let Some((_, first)) = self.items.get(key) {
            return Err(InputError::Duplicate {
                key: key.to_string(),
                first: first.clone(),
                second: origin,
            });
        }
        self.items.insert(key.to_string(), (value, origin));
        Ok(())
    }

    /// `KEY=VALUE` from `--from-literal`.
    pub fn add_literal(&mut self, literal: &str) -> Result<(), InputError> {
        let (key, value) = literal.split_once('=').ok_or_else(|| InputError::Literal {
            key: literal
                .chars()
                .take(40)
                .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
                .collect(),
        })?;
        self.add(key, value.as_bytes().to_vec(), format!("--from-literal {key}"))
    }

    /// `[KEY=]PATH` from `--from-file` (the key defaults to the file name; `-` reads stdin).
    pub fn add_file(&mut self, spec: &str) -> Result<(), InputError> {
        let (key, path) = match spec.split_once('=') {
            Some((key, path)) => (key.to_string(), PathBuf::from(path)),
            None => {
                let path = PathBuf::from(spec);
                let key = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (key, path)
            }
        };
        let value = read_path(&path)?;
        self.add(&key, value, format!("--from-file {}", path.display()))
    }

    /// Every `KEY=VALUE` line of an env file (`#` comments and blank lines skipped; a bare `KEY` takes the
    /// value of that environment variable, as kubectl does).
    pub fn add_env_file(&mut self, path: &Path) -> Result<(), InputError> {
        for (key, value, origin) in read_env_file(path)? {
            self.add(&key, value, origin)?;
        }
        Ok(())
    }

    /// Ask for `key` with a hidden prompt on the terminal.
    pub fn prompt(&mut self, key: &str, prompt: &str) -> Result<(), InputError> {
        check_key(key).map_err(|problem| InputError::Key {
            origin: format!("--prompt {key}"),
            problem,
        })?;
        let value = prompt_hidden(key, prompt)?;
        self.add(key, value.into_bytes(), format!("prompt for {key}"))
    }

    /// The values, by key.
    pub fn into_map(self) -> BTreeMap<String, Vec<u8>> {
        self.items
            .into_iter()
            .map(|(key, (value, _))| (key, value))
            .collect()
    }
}

/// The `(key, value, origin)` entries of an env file, keys unchecked (see [`Values::add_env_file`]).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, Vec<u8>, String)>, InputError> {
    let bytes = read_path(path)?;
    let text = String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        InputError::EnvFile {
            path: path.to_path_buf(),
            line: valid.iter().filter(|byte| **byte == b'\n').count() + 1,
            problem: "is not UTF-8 text; pass binary values with --from-file KEY=PATH".to_string(),
        }
    })?;
    let mut entries = Vec::new();
    for (index, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{} line {line_no}", path.display());
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => {
                let key = line.trim_end().to_string();
                let value = std::env::var(&key).map_err(|_| InputError::EnvFile {
                    path: path.to_path_buf(),
                    line: line_no,
                    problem: format!("`{key}` has no `=` and no environment variable of that name is set"),
                })?;
                (key, value)
            }
        };
        entries.push((key, value.into_bytes(), origin));
    }
    Ok(entries)
}

/// The most an input file (or stdin) is read: far over the 1 MiB a Secret holds, so that rule speaks
/// with its own message (which key, how large), yet a `/dev/zero`-sized input cannot exhaust memory.
pub const INPUT_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Read a whole file (at most [`INPUT_FILE_LIMIT`]; FIFOs and devices refused), `-` meaning stdin.
pub fn read_path(path: &Path) -> Result<Vec<u8>, InputError> {
    if path.as_os_str() == "-" {
        return read_stdin();
    }
    // The OS's own refusals read as before (`cannot read PATH: No such file…`); size and type refusals
    // are fsio's sentences.
    shared::fsio::read_bounded(path, INPUT_FILE_LIMIT, "input file").map_err(|err| match err {
        shared::fsio::FsError::Io { source, .. } => InputError::Read {
            path: path.to_path_buf(),
            error: source,
        },
        other => InputError::File(other),
    })
}

/// All of stdin, at most [`INPUT_FILE_LIMIT`].
pub fn read_stdin() -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(INPUT_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| InputError::Read {
            path: PathBuf::from("stdin"),
            error,
        })?;
    if bytes.len() as u64 > INPUT_FILE_LIMIT {
        return Err(InputError::Read {
            path: PathBuf::from("stdin"),
            error: std::io::Error::other(format!(
                "it holds more than {}, the most this command reads",
                shared::fsio::human_bytes(INPUT_FILE_LIMIT)
            )),
        });
    }
    Ok(bytes)
}

/// Whether prompts can be shown (stdin and stderr are terminals).
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A hidden prompt for one value; an error without a terminal.
pub fn prompt_hidden(key: &str, prompt: &str) -> Result<String, InputError> {
    if !can_prompt() {
        return Err(InputError::NoTerminal { key: key.to_string() });
    }
    dialoguer::Password::new()
        .with_prompt(prompt)
        .allow_empty_password(true)
        .interact()
        .map_err(|err| InputError::Prompt {
            key: key.to_string(),
            message: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_files_and_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tls.key");
        std::fs::write(&file, [0u8, 159, 146, 150]).unwrap();
        let env = dir.path().join("app.env");
        std::fs::write(&env, "\u{feff}# comment\n\n  A=1=2\nB=\nPATH\n").unwrap();
        let mut values = Values::new();
        values.add_literal("user=app").unwrap();
        values.add_file(file.to_str().unwrap()).unwrap();
        values.add_env_file(&env).unwrap();
        let map = values.into_map();
        assert_eq!(map["user"], b"app");
        assert_eq!(map["tls.key"], [0u8, 159, 146, 150]);
        assert_eq!(map["A"], b"1=2");
        assert_eq!(map["B"], b"");
        assert_eq!(map["PATH"], std::env::var("PATH").unwrap().as_bytes());
    }

    #[test]
    fn bad_keys_duplicates_and_missing_env_name_the_origin() {
        let mut values = Values::new();
        let err = values.add_literal("a b=x").unwrap_err().to_string();
        assert!(
            err.contains("--from-literal a b: key `a b` is not allowed"),
            "{err}"
        );
        values.add_literal("k=1").unwrap();
        let err = values.add_literal("k=2").unwrap_err().to_string();
        assert!(err.contains("key `k` is given twice"), "{err}");
        let err = values.add_literal("novalue").unwrap_err().to_string();
        assert!(err.contains("expected KEY=VALUE"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("x.env");
        std::fs::write(&env, "DULI_SURELY_UNSET_VARIABLE_42\n").unwrap();
        let err = Values::new().add_env_file(&env).unwrap_err().to_string();
        assert!(err.contains("x.env line 1"), "{err}");
    }
}
