//! One source for the CLI's reference (issue #32): docs/cli.md and the man page
//! docs/rotbench.1 are generated from the clap definitions that print `--help`
//! (`make docs-cli`), and completions come from them too. A flag whose help
//! changes without `make docs-cli` fails here.

mod common;
use common::*;

fn generated(format: &str) -> String {
    let r = run(&["reference", format], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

#[test]
fn the_committed_cli_reference_is_what_the_binary_generates() {
    let page = generated("markdown");
    assert!(
        page == committed("docs/cli.md"),
        "docs/cli.md differs from `rotbench reference markdown`: run `make docs-cli` and commit the result"
    );
    // It is the --help text: every subcommand, and a flag's own words.
    for cmd in [
        "sweep", "rotate", "inspect", "report", "gate", "merge", "demo", "doctor",
    ] {
        assert!(page.contains(&format!("## `rotbench {cmd}`")), "{cmd}");
    }
    let help = run(&["sweep", "--help"], None).stdout;
    let line = help
        .lines()
        .find(|l| l.contains("Leave out samples whose class is not scored"))
        .expect("--drop-unscored's help");
    assert!(page.contains(line.trim()), "{line}");
}

#[test]
fn the_committed_man_page_is_what_the_binary_generates() {
    assert!(
        generated("man") == committed("docs/rotbench.1"),
        "docs/rotbench.1 differs from `rotbench reference man`: run `make docs-cli` and commit the result"
    );
}

#[test]
fn completions_are_generated_for_every_shell() {
    for (shell, mark) in [
        ("bash", "_rotbench()"),
        ("zsh", "#compdef rotbench"),
        ("fish", "complete -c rotbench"),
    ] {
        let r = run(&["completions", shell], None);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains(mark) && r.stdout.contains("--drop-unscored"),
            "{shell}"
        );
    }
    assert_eq!(run(&["completions", "tcsh"], None).code, 2);
}
