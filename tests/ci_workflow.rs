//! Issue 33: docs/ci.md's GitHub Actions workflow, run as written. The Sweep,
//! Gate and "Promote the baseline" steps' scripts are read out of the page and run
//! with bash, first as a push to main (no baseline yet: thresholds only, then the
//! baseline is promoted), then as a pull request (gated against main's baseline,
//! with --only-new-failures and the report link). Two substitutions keep it
//! fast and offline: `target/release/rotbench` is this build's binary, and the
//! sweep reads the first 300 MNIST digits (`--limit 300`). `${{ ... }}` expressions
//! get the values GitHub would give. The config is docs/rotbench.example.toml.

mod common;
use common::*;
use std::path::Path;

/// A stand-in for a CI job's checkout: the models and data of this repository,
/// and `rotbench.toml` from docs/rotbench.example.toml.
fn checkout() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for link in ["models", "datasets"] {
        std::os::unix::fs::symlink(root().join(link), t.path().join(link)).unwrap();
    }
    std::fs::copy(
        root().join("docs/rotbench.example.toml"),
        t.path().join("rotbench.toml"),
    )
    .unwrap();
    t
}

/// The body of the `run:` script of the step named `name` in the page's first
/// yaml block after `## GitHub Actions`, dedented.
fn step(doc: &str, name: &str) -> String {
    let gh = &doc[doc
        .find("## GitHub Actions")
        .expect("a GitHub Actions section")..];
    let yaml = &gh[gh.find("```yaml").unwrap()..];
    let yaml = &yaml[..yaml[7..].find("```").unwrap() + 7];
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("no step `{name}` in docs/ci.md"));
    let run = (at..lines.len())
        .find(|&i| lines[i].trim_start().starts_with("run:"))
        .unwrap();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let first = lines[run].trim_start().trim_start_matches("run:").trim();
    if first != "|" {
        return first.to_string();
    }
    let base = indent(lines[run]);
    let body: Vec<&str> = lines[run + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > base)
        .copied()
        .collect();
    let cut = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(cut..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The docs' commands as this test runs them: this build's binary, 300 digits.
fn this_build(script: &str) -> String {
    script
        .replace("target/release/rotbench", env!("CARGO_BIN_EXE_rotbench"))
        .replace("--data datasets/mnist", "--data datasets/mnist --limit 300")
}

/// Run `script` with `bash FLAGS -c` in `dir` with `env`: its exit code, then
/// its stdout and stderr.
fn run_bash(dir: &Path, flags: &[&str], script: &str, env: &[(&str, &str)]) -> (i32, String) {
    let o = std::process::Command::new("bash")
        .args(flags)
        .args(["-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

fn bash(dir: &Path, script: &str, main: bool) -> (i32, String) {
    let script = this_build(script)
        .replace("${{ github.server_url }}", "https://github.com")
        .replace("${{ github.repository }}", "o/r")
        .replace("${{ github.run_id }}", "7")
        .replace(
            "github.ref == 'refs/heads/main'",
            if main { "true" } else { "false" },
        );
    assert!(
        !script.contains("${{"),
        "an expression the test does not know: {script}"
    );
    run_bash(dir, &["-euo", "pipefail"], &script, &[])
}

#[test]
fn the_documented_github_workflow_gates_main_then_a_pull_request_against_mains_baseline() {
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let t = checkout();
    let dir = t.path();
    let (sweep, gate, promote) = (
        step(&doc, "Sweep"),
        step(&doc, "Gate"),
        step(&doc, "Promote the baseline"),
    );
    // A push to main: no baseline yet, thresholds only; then promoted.
    let (code, out) = bash(dir, &sweep, true);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bash(dir, &gate, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no rotbench baseline yet"), "{out}");
    let (code, out) = bash(dir, &promote, true);
    assert_eq!(code, 0, "{out}");
    assert!(dir.join(".rotbench/baselines/main/origin.json").is_file());
    // A pull request: the same model, gated against main's baseline.
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    assert_eq!(bash(dir, &sweep, false).0, 0);
    let (code, out) = bash(dir, &gate, false);
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(dir.join("out/rot/gate.md")).unwrap();
    for want in [
        "max-regression",
        "baseline `main`: saved ",
        "HTML report: https://github.com/o/r/actions/runs/7",
        "| Angle | Baseline | Now | Change | p |",
    ] {
        assert!(md.contains(want), "gate.md lacks `{want}`:\n{md}");
    }
    assert!(dir.join("out/rot/junit.xml").is_file());
}

/// The `script:` items of the page's GitLab job, each folded onto one line as
/// YAML folds a plain multi-line item; comments left out.
fn gitlab_script(doc: &str) -> Vec<String> {
    let gl = &doc[doc.find("## GitLab CI").expect("a GitLab CI section")..];
    let yaml = &gl[gl.find("```yaml").unwrap()..];
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "script:").unwrap();
    let base = lines[at].len() - lines[at].trim_start().len();
    let mut items: Vec<String> = vec![];
    for l in &lines[at + 1..] {
        let indent = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && indent <= base {
            break;
        }
        let t = l.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_prefix("- ") {
            Some(item) => items.push(item.to_string()),
            None => {
                let last = items.last_mut().unwrap();
                last.push(' ');
                last.push_str(t);
            }
        }
    }
    items
}

#[test]
fn the_documented_gitlab_job_gates_main_then_a_merge_request_against_mains_baseline() {
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let items = gitlab_script(&doc);
    assert_eq!(items.first().map(String::as_str), Some("make build"));
    let script = items[1..]
        .iter()
        .map(|i| this_build(i))
        .collect::<Vec<_>>()
        .join("\n");
    let t = checkout();
    let dir = t.path();
    // GitLab runs the items in one shell that stops at the first failing one.
    let job = |branch: &str| {
        let env = [
            ("CI_COMMIT_BRANCH", branch),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/9"),
        ];
        run_bash(dir, &["-e"], &script, &env)
    };
    let (code, out) = job("main");
    assert_eq!(code, 0, "{out}");
    assert!(
        dir.join(".rotbench/baselines/main/summary.json").is_file(),
        "main did not promote its baseline:\n{out}"
    );
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let (code, out) = job("feature");
    assert_eq!(code, 0, "{out}");
    let md = std::fs::read_to_string(dir.join("out/rot/gate.md")).unwrap();
    for want in [
        "max-regression",
        "baseline `main`: saved ",
        "HTML report: https://gitlab.example/g/p/-/jobs/9/artifacts/browse/out/rot",
    ] {
        assert!(md.contains(want), "gate.md lacks `{want}`:\n{md}");
    }
}
