//! The README's headline table (the markdown table under "## The demo") is what
//! `python3 scripts/headline.py reports/demo/summary.json` prints for the committed
//! demo (issue #16), so a regenerated demo cannot leave stale numbers in the README.
//! Every cell must be equal, except that the README may follow a model's name with a
//! description in parentheses ("mnist-cnn (upright training)").

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first markdown table after the line that starts with `heading`.
fn table_after(text: &str, heading: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| l.trim().to_string())
        .collect()
}

fn cells(row: &str) -> Vec<String> {
    row.trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// How the README's table differs from the script's (empty when it does not).
fn differences(readme: &[String], script: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if readme.len() != script.len() {
        out.push(format!(
            "{} rows in README.md, {} printed by the script",
            readme.len(),
            script.len()
        ));
    }
    for (i, (r, s)) in readme.iter().zip(script).enumerate() {
        let (rc, sc) = (cells(r), cells(s));
        if rc.len() != sc.len() {
            out.push(format!("row {i}: {} cells against {}", rc.len(), sc.len()));
            continue;
        }
        for (j, (a, b)) in rc.iter().zip(&sc).enumerate() {
            let described_name = i >= 2
                && j == 0
                && a.strip_prefix(b.as_str())
                    .is_some_and(|rest| rest.starts_with(" (") && rest.ends_with(')'));
            if a != b && !described_name {
                out.push(format!(
                    "row {i}, column {j}: README.md has `{a}`, the script `{b}`"
                ));
            }
        }
    }
    out
}

#[test]
fn the_readme_headline_table_is_what_headline_py_prints_for_the_committed_demo() {
    let script = match Command::new("python3")
        .arg(root().join("scripts/headline.py"))
        .arg(root().join("reports/demo/summary.json"))
        .output()
    {
        Err(e) => {
            eprintln!(
                "skipped: the README headline check needs python3, which cannot be run here ({e})"
            );
            return;
        }
        Ok(o)
            if !o.status.success()
                && Command::new("python3")
                    .arg("--version")
                    .output()
                    .map_or(true, |v| !v.status.success()) =>
        {
            eprintln!("skipped: the README headline check needs python3, and `python3 --version` fails here");
            return;
        }
        Ok(o) => {
            assert!(
                o.status.success(),
                "python3 scripts/headline.py reports/demo/summary.json failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        }
    };
    let script: Vec<String> = script.lines().map(|l| l.trim().to_string()).collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = table_after(&readme, "## The demo");
    assert!(
        !table.is_empty(),
        "README.md: no table under \"## The demo\""
    );
    let diff = differences(&table, &script);
    assert!(
        diff.is_empty(),
        "README.md's headline table is not what the demo gives:\n{}\n\nREADME.md:\n{}\n\n`python3 scripts/headline.py reports/demo/summary.json`:\n{}\n\nFix: paste the script's table into README.md under \"## The demo\" (a description in parentheses after a model's name may stay).",
        diff.join("\n"),
        table.join("\n"),
        script.join("\n")
    );
}

#[test]
fn a_changed_number_or_a_renamed_model_is_a_difference_and_a_described_name_is_not() {
    let script: Vec<String> = [
        "| model | accuracy at 0° | mean accuracy (0:360:5) |",
        "|---|---|---|",
        "| mnist-cnn | 0.9956 | 0.4500 |",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let with = |row: &str| {
        let mut t = script.clone();
        t[2] = row.to_string();
        t
    };
    assert!(differences(&script, &script).is_empty());
    assert!(differences(
        &with("| mnist-cnn (upright training) | 0.9956 | 0.4500 |"),
        &script
    )
    .is_empty());
    assert_eq!(
        differences(&with("| mnist-cnn | 0.9955 | 0.4500 |"), &script).len(),
        1
    );
    assert_eq!(
        differences(&with("| mnist-cnn-v2 | 0.9956 | 0.4500 |"), &script).len(),
        1
    );
    assert_eq!(
        differences(&with("| mnist-cnn | 0.9956 (x) | 0.4500 |"), &script).len(),
        1
    );
    let mut header = script.clone();
    header[0] = "| model | accuracy at 0° | mean accuracy |".into();
    assert_eq!(differences(&header, &script).len(), 1);
    assert_eq!(differences(&script[..2], &script).len(), 1, "a missing row");
}
