//! Issue #22, item 12 (escaping): a model file named `a<b>&"c.pt` and class
//! folders named `<x>` and `&y` reach every output intact: escaped in the HTML,
//! well-formed in every SVG (inline and in plots/), and quoted in the CSVs so that
//! a CSV reader gets the names back exactly.

mod common;
use common::*;
use std::fs;

const MODEL: &str = "a<b>&\"c";

#[test]
fn markup_in_model_and_class_names_is_escaped_in_html_and_svg_and_quoted_in_csv() {
    let t = tempfile::tempdir().unwrap();
    let m = root().join("models");
    let model = t.path().join(format!("{MODEL}.pt"));
    fs::copy(m.join("mnist-cnn.pt"), &model).unwrap();
    fs::copy(
        m.join("mnist-cnn.json"),
        t.path().join(format!("{MODEL}.json")),
    )
    .unwrap();
    let classes = t.path().join("classes.txt");
    let names = ["<x>", "&y", "2", "3", "4", "5", "6", "7", "8", "9"];
    fs::write(&classes, names.join("\n")).unwrap();
    let fx = root().join("tests/fixtures/rotation");
    let d = t.path().join("d");
    for (folder, img) in [
        ("<x>", "mnist0.png"),
        ("&y", "mnist1.png"),
        ("7", "mnist2.png"),
    ] {
        fs::create_dir_all(d.join(folder)).unwrap();
        fs::copy(fx.join(img), d.join(folder).join("a.png")).unwrap();
    }
    let out = t.path().join("o");
    rotbench()
        .args(["sweep", "--quiet", "--angles", "0,90", "--classes"])
        .arg(&classes)
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&d)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();

    // HTML: the names appear escaped, never raw.
    let html = fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        !html.contains("a<b>"),
        "the raw model name reached the page"
    );
    assert!(!html.contains("<x>"), "the raw class name reached the page");
    assert!(
        html.contains("a&lt;b&gt;&amp;"),
        "the model name is not shown escaped"
    );
    assert!(
        html.contains("&lt;x&gt;"),
        "the class name is not shown escaped"
    );

    // SVG: every inline chart and every file in plots/ is well-formed XML.
    let mut svgs = 0;
    let mut rest = html.as_str();
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("an inline svg is closed") + i + 6;
        roxmltree::Document::parse(&rest[i..end])
            .unwrap_or_else(|e| panic!("inline svg {svgs}: {e}"));
        svgs += 1;
        rest = &rest[end..];
    }
    for e in fs::read_dir(out.join("plots")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "svg") {
            let text = fs::read_to_string(e.path()).unwrap();
            roxmltree::Document::parse(&text)
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            svgs += 1;
        }
    }
    assert!(svgs >= 4, "only {svgs} svgs");

    // CSV: a reader gets the names back exactly.
    for f in [
        "per_angle.csv",
        "per_class.csv",
        "predictions.csv",
        "confusion.csv",
    ] {
        for r in read_csv(&out.join(f)) {
            assert_eq!(r["model"], MODEL, "{f}");
        }
    }
    // per_class.csv lists the classes with samples or predictions (issue 20),
    // each under its exact name.
    let per_class = read_csv(&out.join("per_class.csv"));
    assert!(!per_class.is_empty());
    for r in &per_class {
        let i: usize = r["class"].parse().unwrap();
        assert_eq!(r["class_name"], names[i], "class {i} in per_class.csv");
    }

    assert_eq!(summary(&out)["models"][0]["name"], MODEL);
}
