//! The shape of the code (issue #32), checked on every run: no function in
//! `src/` or `crates/*/src` is longer than 150 lines, and no two top-level
//! modules of a crate import each other, directly or through others. Both read
//! the sources as text: comments, strings and character literals are blanked
//! first, so braces and paths inside them count for nothing.

mod common;
use common::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function may be, from its `fn` line to its closing brace.
const MAX_LINES: usize = 150;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The source with comments, string literals (raw ones too) and character
/// literals blanked, newlines kept.
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_newlines = |s: &[u8], out: &mut String| {
        out.extend(s.iter().filter(|&&c| c == b'\n').map(|_| '\n'));
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let end = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
            keep_newlines(&b[i..end], &mut out);
            i = end;
        } else if b[i] == b'r'
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && raw_string_hashes(rest).is_some()
        {
            let hashes = raw_string_hashes(rest).unwrap_or(0);
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = find(b, i + 2 + hashes, &close).map_or(b.len(), |e| e + close.len());
            out.push_str("\"\"");
            keep_newlines(&b[i..end], &mut out);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            keep_newlines(&b[i..j.min(b.len())], &mut out);
            i = j + 1;
        } else if b[i] == b'\'' && char_literal_len(rest).is_some() {
            out.push_str("' '");
            i += char_literal_len(rest).unwrap_or(1);
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `r"`, `r#"`, `r##"`: the number of hashes of a raw string starting here.
fn raw_string_hashes(rest: &[u8]) -> Option<usize> {
    let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
    (rest.get(1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of a character literal starting here (`'a'`, `'\n'`, `'\u{feff}'`),
/// or None for a lifetime.
fn char_literal_len(rest: &[u8]) -> Option<usize> {
    if rest.get(1) == Some(&b'\\') {
        let end = rest[2..].iter().position(|&c| c == b'\'')?;
        return (end <= 10).then_some(end + 3);
    }
    let c = std::str::from_utf8(&rest[1..rest.len().min(6)])
        .ok()
        .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(5)]).ok())
        .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(4)]).ok())
        .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(3)]).ok())?
        .chars()
        .next()?;
    let n = c.len_utf8();
    (rest.get(1 + n) == Some(&b'\'')).then_some(n + 2)
}

/// Each function's name, first line and length in lines.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (at, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let (mut depth, mut started) = (0i64, false);
        'scan: for (k, l) in lines.iter().enumerate().skip(at) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        started = true;
                    }
                    '}' => depth -= 1,
                    ';' if !started => break 'scan,
                    _ => {}
                }
                if started && depth == 0 {
                    out.push((name.clone(), at + 1, k - at + 1));
                    break 'scan;
                }
            }
        }
    }
    out
}

/// The name of a function declared on this line.
fn fn_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let k = words.iter().position(|w| *w == "fn")?;
    let lead_ok = words[..k].iter().all(|w| {
        w.starts_with("pub") || ["const", "async", "unsafe", "extern", "\"\""].contains(w)
    });
    let name: String = words
        .get(k + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (lead_ok && !name.is_empty()).then_some(name)
}

fn crates() -> Vec<(PathBuf, Vec<&'static str>)> {
    vec![
        (root().join("src"), vec!["crate", "rotbench"]),
        (root().join("crates/rotbench-core/src"), vec!["crate"]),
    ]
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let mut long = vec![];
    let mut seen = 0;
    for (dir, _) in crates() {
        for f in rust_files(&dir) {
            let text = blank(&std::fs::read_to_string(&f).unwrap());
            for (name, line, len) in functions(&text) {
                seen += 1;
                if len > MAX_LINES {
                    long.push(format!("{}:{line} {name}: {len} lines", f.display()));
                }
            }
        }
    }
    assert!(
        seen > 500,
        "only {seen} functions found: the scan is broken"
    );
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The top-level module a file belongs to (`engine` for `src/engine/mod.rs`).
fn top_module(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("lib") | Some("main") => "(root)".into(),
        Some(m) => m.to_string(),
        None => first.into_owned(),
    }
}

/// Each top-level module and the other top-level modules its files name
/// (`crate::x`, or `rotbench::x` from the binary's files).
fn module_graph(dir: &Path, prefixes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(dir);
    let tops: BTreeSet<String> = files.iter().map(|f| top_module(dir, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let top = top_module(dir, f);
        let text = blank(&std::fs::read_to_string(f).unwrap());
        let deps = g.entry(top.clone()).or_default();
        for p in prefixes {
            let needle = format!("{p}::");
            for (at, _) in text.match_indices(&needle) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let name: String = text[at + needle.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if tops.contains(&name) && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// Modules that reach themselves through their imports.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<&String> = g[from].iter().collect();
        while let Some(m) = pending.pop() {
            if seen.insert(m.clone()) {
                pending.extend(g.get(m).into_iter().flatten());
            }
        }
        seen
    };
    g.keys()
        .filter(|m| reach(m).contains(*m))
        .cloned()
        .collect()
}

#[test]
fn no_two_modules_import_each_other_directly_or_through_others() {
    for (dir, prefixes) in crates() {
        let g = module_graph(&dir, &prefixes);
        assert!(g.len() > 8, "{}: {} modules found", dir.display(), g.len());
        let edges: usize = g.values().map(BTreeSet::len).sum();
        assert!(edges > 8, "{}: only {edges} imports found", dir.display());
        let circular = cycles(&g);
        assert!(
            circular.is_empty(),
            "{}: modules in an import circle: {circular:?}\n{g:#?}",
            dir.display()
        );
    }
}

#[test]
fn the_checks_see_what_they_check() {
    // A function of 3 lines with a brace in a string and one in a comment.
    let f = "fn a() {\n    let s = \"}\"; // }\n}\n";
    assert_eq!(functions(&blank(f)), vec![("a".to_string(), 1, 3)]);
    // A cycle of two, and a chain that is none.
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), ["a", "b"]);
}
