//! The visual report: plots and index.html after a real sweep, `rotbench report`
//! re-rendering them, `--no-report`, and HTML escaping of dataset-controlled text.

mod common;
use common::*;
use std::fs;
use std::path::Path;

/// A sweep of the bundled model over the first 200 MNIST images at 0/90/180/270.
fn small_sweep(out: &Path, extra: &[&str]) {
    rotbench()
        .args(["sweep", "--quiet", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "0:360:90", "--limit", "200"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

const PLOT_FILES: &[&str] = &[
    "plots/accuracy.png",
    "plots/accuracy.svg",
    "plots/f1.png",
    "plots/f1.svg",
    "plots/consistency.png",
    "plots/consistency.svg",
    "plots/polar.png",
    "plots/polar.svg",
    "plots/recall-mnist-cnn.png",
    "plots/confusion-mnist-cnn-0.png",
    "plots/confusion-mnist-cnn-worst.png",
    "plots/strip.png",
];

fn png_size(path: &Path) -> (u32, u32) {
    let img =
        image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (img.width(), img.height())
}

/// The value of `attr="..."` in the tag that carries `data-file="{file}"`.
fn attr_of(html: &str, file: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!(r#"data-file="{file}""#))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let key = format!(r#" {attr}=""#);
    let from = tag.find(&key)? + key.len();
    Some(tag[from..from + tag[from..].find('"')?].to_string())
}

/// Every `src=`, `href=` and CSS `url(` target in the page.
fn link_targets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["src=\"", "src='", "href=\"", "href='", "url("] {
        let mut rest = html;
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            out.push(
                rest.chars()
                    .take(16)
                    .collect::<String>()
                    .trim_start_matches(['"', '\''])
                    .to_ascii_lowercase(),
            );
        }
    }
    out
}

#[test]
fn a_sweep_writes_every_plot_and_a_self_contained_page() {
    let out = tempfile::tempdir().unwrap();
    small_sweep(out.path(), &[]);
    let dir = out.path();
    assert!(dir.join("index.html").is_file(), "index.html missing");
    for f in PLOT_FILES {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(png_size(&dir.join("plots/accuracy.png")), (800, 450));
    assert_eq!(png_size(&dir.join("plots/f1.png")), (800, 450));
    assert_eq!(png_size(&dir.join("plots/consistency.png")), (800, 450));
    assert_eq!(png_size(&dir.join("plots/polar.png")), (560, 560));
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    // Issue 33: a reliability diagram takes a full row (it left half of one empty,
    // with its text shrunk to half), drawn at that width.
    assert!(
        html.contains(r#"<figure class="plot wide" id="plot-reliability-mnist-cnn">"#),
        "the reliability diagram is not a full-width figure"
    );
    assert_eq!(
        png_size(&dir.join("plots/reliability-mnist-cnn.png")),
        (1200, 480)
    );
    // Heatmaps and the strip are embedded as PNGs whose size the page states.
    for f in [
        "plots/recall-mnist-cnn.png",
        "plots/confusion-mnist-cnn-0.png",
        "plots/confusion-mnist-cnn-worst.png",
        "plots/strip.png",
    ] {
        let (w, h) = png_size(&dir.join(f));
        assert!(w >= 200 && h >= 150, "{f} is only {w}x{h}");
        let width: u32 = attr_of(&html, f, "width")
            .unwrap_or_else(|| panic!("{f} not in the page"))
            .parse()
            .unwrap();
        let height: u32 = attr_of(&html, f, "height").unwrap().parse().unwrap();
        assert_eq!((w, h), (width, height), "{f}");
        // The embedded copy is the file itself.
        let src = attr_of(&html, f, "src").unwrap();
        let b64 = src
            .strip_prefix("data:image/png;base64,")
            .expect("a data-URI PNG");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes, fs::read(dir.join(f)).unwrap(), "{f}");
    }
    for svg in ["plots/accuracy.svg", "plots/polar.svg"] {
        let text = fs::read_to_string(dir.join(svg)).unwrap();
        assert!(text.contains("<svg") && text.contains("mnist-cnn"), "{svg}");
        roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{svg} is not well-formed XML: {e}"));
    }
    // Self-contained: no http(s) target, a CSP that forbids fetching, the metadata is there.
    for t in link_targets(&html) {
        assert!(
            !t.starts_with("http:") && !t.starts_with("https:") && !t.starts_with("//"),
            "external target {t}"
        );
    }
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"));
    let sha = summary(dir)["models"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        sha.as_str(),
        "bilinear",
        "2.13.0",
        "cpu",
        "Wall time",
        "rb-angle",
        "0° to 270° in steps of 90°",
    ] {
        assert!(html.contains(needle), "index.html lacks {needle}");
    }
}

#[test]
fn a_class_named_like_a_script_tag_shows_as_text() {
    let out = tempfile::tempdir().unwrap();
    let classes = out.path().join("classes.txt");
    let names = [
        "zero",
        "one",
        "two",
        "<script>alert(1)</script>",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    ];
    fs::write(&classes, names.join("\n")).unwrap();
    let dir = out.path().join("run");
    small_sweep(&dir, &["--classes", classes.to_str().unwrap()]);
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the class name is not shown escaped"
    );
    assert!(
        !html.contains("<script>alert(1)"),
        "the raw tag reached the page"
    );
    // In the explorer's JSON the name is written with \u003c so it cannot end the script element.
    assert!(html.contains(r"\u003cscript\u003ealert(1)\u003c/script\u003e"));
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "only the data block and the script end a script element"
    );
}

#[test]
fn report_re_renders_an_output_folder_without_running_a_model() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    small_sweep(dir, &[]);
    let page = fs::read(dir.join("index.html")).unwrap();
    let strip = fs::read(dir.join("plots/strip.png")).unwrap();
    fs::remove_file(dir.join("index.html")).unwrap();
    fs::remove_dir_all(dir.join("plots")).unwrap();
    rotbench().arg("report").arg(dir).assert().success();
    for f in PLOT_FILES {
        assert!(dir.join(f).is_file(), "{f} missing after rotbench report");
    }
    // Same inputs (the wall time comes from timing.json): the same bytes.
    assert_eq!(fs::read(dir.join("index.html")).unwrap(), page);
    assert_eq!(fs::read(dir.join("plots/strip.png")).unwrap(), strip);

    // Without examples.json the page still renders, without strip and gallery.
    fs::remove_file(dir.join("examples.json")).unwrap();
    fs::remove_dir_all(dir.join("plots")).unwrap();
    rotbench().arg("report").arg(dir).assert().success();
    assert!(dir.join("plots/accuracy.png").is_file());
    assert!(!dir.join("plots/strip.png").exists());
}

#[test]
fn report_names_the_file_when_summary_json_is_missing_or_malformed() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let a = rotbench().arg("report").arg(dir).assert().code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("summary.json") && err.contains("missing"),
        "{err}"
    );
    fs::write(dir.join("summary.json"), "{\"schema\": 1,").unwrap();
    let a = rotbench().arg("report").arg(dir).assert().code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("summary.json") && err.contains("line 1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn no_report_writes_no_plots_and_no_page() {
    let out = tempfile::tempdir().unwrap();
    small_sweep(out.path(), &["--no-report"]);
    assert!(out.path().join("summary.json").is_file());
    assert!(!out.path().join("index.html").exists());
    assert!(!out.path().join("plots").exists());
}
