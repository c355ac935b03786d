//! The documentation's internal links hold (issue 32): in README.md, CONTRIBUTING.md,
//! CHANGELOG.md, models/README.md and every page of the book under docs/, each relative
//! markdown link `[text](path)`, `[text](path#anchor)` or `[text](#anchor)` points to a
//! file that exists (relative to the linking file), and each anchor into a `.md` file is
//! the id of one of its headings. Ids follow the rule GitHub and mdBook share: the
//! heading's text, lowercased, whitespace to `-`, every character dropped that is not
//! alphanumeric, `-` or `_`; a repeated id gets `-1`, `-2`, ... Links to http(s):// and
//! mailto: are not followed. Code blocks and code spans are not markdown, so links and
//! headings inside them do not count. Every page under docs/ except SUMMARY.md must be
//! listed in docs/SUMMARY.md, or mdBook leaves it out of the book. And the repository
//! files the docs name in their text and commands (`tests/cli_sweep.rs`,
//! `scripts/setup-venv.sh`, `cargo test --test rotation_fidelity`, ...) exist, so a
//! renamed test or script cannot leave a command in the docs that no longer runs.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.md` file under `dir`, recursively, in sorted order.
fn markdown_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(markdown_under(&p));
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
    out
}

/// The files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let r = root();
    let mut docs: Vec<PathBuf> = [
        "README.md",
        "CONTRIBUTING.md",
        "CHANGELOG.md",
        "models/README.md",
    ]
    .iter()
    .map(|p| r.join(p))
    .collect();
    docs.extend(markdown_under(&r.join("docs")));
    docs
}

/// The text outside fenced code blocks, line for line (fenced lines become empty, so
/// line numbers stay right).
fn outside_fences(text: &str) -> Vec<String> {
    let mut fence: Option<(char, usize)> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let run = |c: char| t.chars().take_while(|&x| x == c).count();
        let opener = ['`', '~']
            .into_iter()
            .find(|&c| run(c) >= 3)
            .map(|c| (c, run(c)));
        match (fence, opener) {
            (None, Some(f)) => {
                fence = Some(f);
                out.push(String::new());
            }
            (Some((c, n)), Some((c2, n2))) if c == c2 && n2 >= n && t.trim_end().len() == n2 => {
                fence = None;
                out.push(String::new());
            }
            (Some(_), _) => out.push(String::new()),
            (None, None) => out.push(line.to_string()),
        }
    }
    out
}

/// `text` with every code span's content blanked (spaces, so positions and line breaks
/// stay). A span opens with a run of N backticks and closes with the next run of exactly
/// N; it may cross lines. A run with no closing run is left as it is.
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in out.iter_mut().take(j + n).skip(i) {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    out.into_iter().collect()
}

/// A link found in a document: its 1-based line and its target as written.
struct Link {
    line: usize,
    target: String,
}

/// The targets of the inline links and images `[text](target)` / `![alt](target)` of a
/// markdown text, outside code. A title (`(path "title")`) is dropped.
fn links(text: &str) -> Vec<Link> {
    let prose = blank_code_spans(&outside_fences(text).join("\n"));
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = prose[from..].find("](") {
        let start = from + k + 2;
        let rest = &prose[start..];
        let end = rest.find([')', '\n']).unwrap_or(rest.len());
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        out.push(Link {
            line: prose[..start].matches('\n').count() + 1,
            target: target.to_string(),
        });
        from = start;
    }
    out
}

/// The id mdBook and GitHub give a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// A heading's text as rendered: code spans keep their text, links keep their text.
fn rendered(heading: &str) -> String {
    let mut s = heading.replace('`', "");
    while let Some(a) = s.find("](") {
        let (Some(open), Some(close)) = (s[..a].rfind('['), s[a..].find(')').map(|k| a + k)) else {
            break;
        };
        s = format!("{}{}{}", &s[..open], &s[open + 1..a], &s[close + 1..]);
    }
    s
}

/// The ids of a markdown text's ATX headings, outside code blocks, with the `-N`
/// suffixes repeated headings get.
fn heading_ids(text: &str) -> HashSet<String> {
    let mut used = HashSet::new();
    for line in outside_fences(text) {
        let t = line.trim_start();
        let level = t.chars().take_while(|&c| c == '#').count();
        if level == 0 || level > 6 || !(t[level..].is_empty() || t[level..].starts_with(' ')) {
            continue;
        }
        let body = t[level..].trim().trim_end_matches('#').trim();
        let id = slug(&rendered(body));
        if !used.insert(id.clone()) {
            let mut n = 1;
            while !used.insert(format!("{id}-{n}")) {
                n += 1;
            }
        }
    }
    used
}

/// `%20`-style escapes in a link's path.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(v))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one pass over the documents found.
#[derive(Default)]
struct Checked {
    files: usize,
    links: usize,
    anchors: usize,
    problems: Vec<String>,
}

fn check(docs: &[PathBuf]) -> Checked {
    let r = root();
    let mut c = Checked::default();
    for doc in docs {
        let text = fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        c.files += 1;
        let name = doc.strip_prefix(&r).unwrap_or(doc).display().to_string();
        for link in links(&text) {
            let t = link.target.as_str();
            let lower = t.to_ascii_lowercase();
            if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
            {
                continue;
            }
            c.links += 1;
            let where_ = format!("{name}:{}: `{t}`", link.line);
            if t.is_empty() {
                c.problems.push(format!("{where_}: an empty link target"));
                continue;
            }
            if t.contains("://") {
                c.problems.push(format!(
                    "{where_}: a link with a scheme other than http(s) or mailto"
                ));
                continue;
            }
            let (path, anchor) = match t.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (t, None),
            };
            let file = if path.is_empty() {
                doc.clone()
            } else if path.starts_with('/') {
                c.problems.push(format!(
                    "{where_}: an absolute path; links must be relative to the file"
                ));
                continue;
            } else {
                doc.parent().unwrap().join(percent_decoded(path))
            };
            if !file.exists() {
                c.problems
                    .push(format!("{where_}: {} does not exist", file.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                if file.extension().is_some_and(|x| x == "md") {
                    c.anchors += 1;
                    let target_text = fs::read_to_string(&file).unwrap();
                    if !heading_ids(&target_text).contains(anchor) {
                        let mut ids: Vec<_> = heading_ids(&target_text).into_iter().collect();
                        ids.sort();
                        c.problems.push(format!(
                            "{where_}: no heading of {} has the id `{anchor}` (its ids: {})",
                            file.strip_prefix(&r).unwrap_or(&file).display(),
                            ids.join(", ")
                        ));
                    }
                }
            }
        }
    }
    c
}

#[test]
fn every_relative_link_in_the_docs_points_to_a_file_and_heading_that_exist() {
    let docs = documents();
    let c = check(&docs);
    assert!(
        c.problems.is_empty(),
        "{} broken link(s) in the documentation:\n{}",
        c.problems.len(),
        c.problems.join("\n")
    );
    // Not vacuous: the README, the book's pages and the rest were read, and their links
    // were found and followed (131 links and 27 anchors when this test was written).
    assert!(c.files >= 20, "only {} markdown files were read", c.files);
    assert!(
        c.links > 100,
        "only {} relative links were checked",
        c.links
    );
    assert!(c.anchors > 15, "only {} anchors were checked", c.anchors);
}

#[test]
fn every_page_of_the_book_is_listed_in_summary_md() {
    let docs = root().join("docs");
    let summary_text = fs::read_to_string(docs.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&summary_text)
        .into_iter()
        .filter(|l| !l.target.is_empty())
        .map(|l| docs.join(l.target.split('#').next().unwrap()))
        .collect();
    let pages = markdown_under(&docs);
    let missing: Vec<String> = pages
        .iter()
        .filter(|p| p.file_name().unwrap() != "SUMMARY.md" && !listed.contains(*p))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/SUMMARY.md does not list {}: mdBook leaves such pages out of the book; add a line `- [Title](page.md)`",
        missing.join(", ")
    );
    assert!(pages.len() >= 15, "only {} pages under docs/", pages.len());
    for must in ["ci.md", "scale-out.md", "gpu-check.md", "cli.md"] {
        assert!(
            listed.contains(&docs.join(must)),
            "docs/SUMMARY.md does not list {must}"
        );
    }
}

#[test]
fn headings_get_the_ids_mdbook_and_github_give_them() {
    let text = "# Install\n\
                ## Fewer samples: `--limit` and `--sample`\n\
                ## Speed on 224×224 JPEGs\n\
                ## torch.export / AOTInductor (`.pt2`)\n\
                ## CUDA: one binary for CPU and GPU\n\
                ## Notes\n\
                ## Notes\n\
                ## See [the gate](ci.md)\n\
                ```sh\n\
                # not a heading\n\
                ```\n\
                #not-a-heading-either\n";
    let ids = heading_ids(text);
    for id in [
        "install",
        "fewer-samples---limit-and---sample",
        "speed-on-224224-jpegs",
        "torchexport--aotinductor-pt2",
        "cuda-one-binary-for-cpu-and-gpu",
        "notes",
        "notes-1",
        "see-the-gate",
    ] {
        assert!(ids.contains(id), "no id `{id}` among {ids:?}");
    }
    assert_eq!(ids.len(), 8, "{ids:?}");
}

#[test]
fn links_in_code_are_not_links_and_a_broken_one_is_reported() {
    let text = "See [a](a.md#x) and `[not](code.md)` and\n\
                ``a span that crosses\n\
                a line [not](either.md)`` then ![img](pic.png \"title\").\n\
                ```\n\
                [inside](fence.md)\n\
                ```\n\
                [web](https://example.com) [here](#top)\n";
    let found: Vec<(usize, String)> = links(text)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, "a.md#x".to_string()),
            (3, "pic.png".to_string()),
            (7, "https://example.com".to_string()),
            (7, "#top".to_string()),
        ]
    );

    // A page with a missing file, a missing heading and a good link: two problems.
    let dir = root()
        .join("target")
        .join(format!("docs-links-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let page = dir.join("page.md");
    fs::write(
        &page,
        "# Page\n## Top part\n[ok](#top-part) [gone](missing.md) [no heading](#nowhere)\n",
    )
    .unwrap();
    let c = check(&[page]);
    fs::remove_dir_all(&dir).ok();
    assert_eq!((c.links, c.anchors), (3, 2));
    assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
    assert!(c.problems[0].contains("missing.md") && c.problems[0].contains("does not exist"));
    assert!(c.problems[1].contains("`nowhere`"));
}

/// The top-level folders whose files the docs name by path from the repository root.
const REPO_FOLDERS: [&str; 10] = [
    "tests/",
    "scripts/",
    "bench/",
    "models/",
    "datasets/",
    "crates/",
    "src/",
    "docs/",
    "reports/",
    "fuzz/",
];

/// Stand-ins the docs use for a name the reader chooses (`models/NAME.onnx`).
const PLACEHOLDERS: [&str; 6] = ["NAME", "DIR", "FILE", "OUT", "MODEL", "PATH"];

/// Paths from the repository root named in a text (`tests/cli_sweep.rs`, `src/shim/`),
/// with their 1-based line: a token that starts with one of [`REPO_FOLDERS`] after a
/// character that cannot be part of a path, and whose last part has an extension or
/// which ends with `/`. Globs and brace lists (`*.rs`, `{a,b}.rs`) and placeholders are
/// left out.
fn repo_paths(text: &str) -> Vec<(usize, String)> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let starts = (i == 0 || !is_path_char(chars[i - 1]))
                && REPO_FOLDERS
                    .iter()
                    .any(|f| chars[i..].iter().take(f.len()).copied().eq(f.chars()));
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < chars.len() && is_path_char(chars[j]) {
                j += 1;
            }
            let token: String = chars[i..j].iter().collect::<String>();
            let token = token.trim_end_matches('.').to_string();
            let glob = chars.get(j).is_some_and(|c| "*{<".contains(*c));
            let last = token.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let file_like = token.ends_with('/') || last.contains('.');
            let placeholder = token
                .split(['/', '.'])
                .any(|part| PLACEHOLDERS.contains(&part));
            if file_like && !glob && !placeholder {
                out.push((n + 1, token));
            }
            i = j;
        }
    }
    out
}

/// The name of every `--test name` in a text, with its 1-based line (placeholders left out).
fn test_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(k) = rest.find("--test ") {
            rest = &rest[k + "--test ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !PLACEHOLDERS.contains(&name.as_str()) {
                out.push((n + 1, name));
            }
        }
    }
    out
}

#[test]
fn every_repository_file_and_test_the_docs_name_exists() {
    let r = root();
    let mut docs: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"]
        .iter()
        .map(|p| r.join(p))
        .collect();
    docs.extend(markdown_under(&r.join("docs")));
    let (mut paths, mut tests, mut problems) = (0, 0, Vec::new());
    for doc in &docs {
        let text = fs::read_to_string(doc).unwrap();
        let name = doc.strip_prefix(&r).unwrap().display().to_string();
        for (line, path) in repo_paths(&text) {
            paths += 1;
            if !r.join(&path).exists() {
                problems.push(format!("{name}:{line}: `{path}` does not exist"));
            }
        }
        for (line, test) in test_targets(&text) {
            tests += 1;
            let found = ["tests", "crates/rotbench-core/tests"]
                .iter()
                .any(|d| r.join(d).join(format!("{test}.rs")).exists());
            if !found {
                problems.push(format!(
                    "{name}:{line}: `--test {test}`: no tests/{test}.rs or crates/rotbench-core/tests/{test}.rs"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} name(s) in the docs that the repository does not have (a renamed file? update the docs):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Not vacuous: about 190 paths and 5 `--test` names when this test was written.
    assert!(paths > 100, "only {paths} repository paths were checked");
    assert!(tests >= 3, "only {tests} `--test` names were checked");
}

#[test]
fn repository_paths_are_found_in_prose_and_commands_but_not_placeholders_or_globs() {
    let text = "Run `tests/cli_sweep.rs` and bash scripts/fuzz.sh, see src/shim/.\n\
                crates/rotbench-core/tests/x.rs; models/NAME.onnx, tests/*.rs, gate/{a,b}.rs\n\
                ~/.cache/rotbench/tools and $ROOT/scripts/x.sh and models/mnist-cnn (a prefix)\n\
                cargo test --release --test rotation_fidelity -- --nocapture; --test NAME";
    let found: Vec<(usize, String)> = repo_paths(text);
    let names: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "tests/cli_sweep.rs",
            "scripts/fuzz.sh",
            "src/shim/",
            "crates/rotbench-core/tests/x.rs"
        ]
    );
    assert_eq!(found[3].0, 2);
    assert_eq!(
        test_targets(text),
        vec![(4, "rotation_fidelity".to_string())]
    );
}
