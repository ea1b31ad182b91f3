//! `helm_duli_render::run` in-process, with its output captured: the same bytes as the binary prints,
//! and errors that leave both writers empty.

use clap::Parser;
use helm_duli_render::cli::Cli;
use shared::error::Outcome;

use crate::common::{self, FixtureRepo};

/// Run the command line in-process: (result, stdout, stderr).
fn run_in_process(args: &[&std::ffi::OsStr]) -> (anyhow::Result<Outcome>, Vec<u8>, Vec<u8>) {
    let cli = Cli::try_parse_from(std::iter::once("helm-duli-render".as_ref()).chain(args.iter().copied()))
        .expect("the command line parses");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(helm_duli_render::run(cli, &mut out, &mut err));
    (result, out, err)
}

#[test]
fn list_rules_in_process_prints_what_the_binary_prints() {
    let (result, out, err) = run_in_process(&["--list-rules".as_ref()]);
    assert_eq!(result.unwrap(), Outcome::Clean);
    assert!(err.is_empty());
    let binary = std::process::Command::new(common::binary())
        .arg("--list-rules")
        .output()
        .unwrap();
    assert!(binary.status.success());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(binary.stdout).unwrap()
    );
    assert!(
        String::from_utf8_lossy(&binary.stderr).is_empty(),
        "the binary printed to stderr"
    );
}

#[test]
fn an_unknown_rule_is_an_error_and_prints_nothing() {
    let repo = FixtureRepo::new();
    let root = repo.root();
    let cache = repo.cache();
    let (result, out, err) = run_in_process(&[
        "staging".as_ref(),
        "--repo".as_ref(),
        root.as_os_str(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        "--no-validate".as_ref(),
        "--policy-skip".as_ref(),
        "no-such-rule".as_ref(),
    ]);
    let error = result.expect_err("an unknown rule stops the render");
    assert!(
        error
            .to_string()
            .contains("unknown rule `no-such-rule` in --policy-skip"),
        "{error}"
    );
    assert!(out.is_empty() && err.is_empty(), "nothing printed on an error");
}
