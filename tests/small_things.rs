//! Issue 21, "Small things a user hits" and "Traceability": a closed stdout,
//! a gate config naming a model that was not swept, negative numbers, the
//! `--data` help, p-values as a reader writes them, and the `source` of every
//! prediction. Each test is named after what a user sees.

mod common;
use common::*;
use std::io::Read;
use std::process::Stdio;

/// `rotbench sweep` of the bundled model on MNIST into `out`, with `extra` flags
/// (a second `--model` adds a model).
fn mnist_sweep(out: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["sweep", "--model", s(bundled_model()), "--data", s(mnist())];
    args.extend(["--out", s(out)]);
    args.extend(extra);
    run(&args, None)
}

/// Run `rotbench ARGS` with its stdout closed before it prints anything, as
/// `| head -0` leaves it; returns (exit code, stderr).
fn with_stdout_closed(args: &[&str]) -> (i32, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rotbench"));
    c.args(args)
        .env("XDG_CACHE_HOME", fresh_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, err)
}

#[test]
fn a_closed_stdout_ends_inspect_and_sweep_quietly_and_the_results_are_still_written_whole() {
    let (code, err) = with_stdout_closed(&["inspect", s(bundled_model())]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("panicked"),
        "{err}"
    );

    let out = kept_dir("closed-stdout");
    let (code, err) = with_stdout_closed(&[
        "sweep",
        "--model",
        s(bundled_model()),
        "--data",
        s(mnist()),
        "--limit",
        "32",
        "--angles",
        "0,90",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(summary(&out)["dataset"]["n"], 32);
    assert_eq!(
        read_csv(&out.join("predictions.csv")).len(),
        64,
        "32 samples x 2 angles"
    );
}

#[test]
fn a_gate_config_naming_a_model_that_was_not_swept_names_the_file_and_its_key() {
    let out = kept_dir("gate-config-model");
    let r = mnist_sweep(&out, &["--limit", "16", "--angles", "0", "--quiet"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let toml = out.join("gate.toml");
    std::fs::write(
        &toml,
        "[gate]\nmodels = [\"mnist-cnn-typo\"]\nmin_accuracy = 0.1\n",
    )
    .unwrap();
    let r = run(&["gate", "--results", s(&out), "--config", s(&toml)], None);
    assert_eq!(r.code, 2);
    let want = format!(
        "{}: [gate] models `mnist-cnn-typo`: no such model",
        toml.display()
    );
    assert!(
        r.stderr.contains(&want),
        "wanted `{want}` in:\n{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("--model"),
        "no --model flag was given:\n{}",
        r.stderr
    );
}

#[test]
fn negative_numbers_are_read_as_values_not_as_flags() {
    let dir = kept_dir("negative-numbers");
    let png = dir.join("in.png");
    image::GrayImage::from_pixel(8, 8, image::Luma([200]))
        .save(&png)
        .unwrap();
    let r = run(
        &[
            "rotate",
            "--angle",
            "30",
            "--fill",
            "-0.1",
            s(&png),
            s(dir.join("out.png")),
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("-0.1") && !r.stderr.contains("unexpected argument"),
        "the value is judged as a fill, not taken for a flag:\n{}",
        r.stderr
    );
    let r = run(
        &[
            "rotate",
            "--angle",
            "-30",
            "--fill",
            "0.5",
            s(&png),
            s(dir.join("out.png")),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn sweep_help_for_data_lists_every_format_it_reads() {
    let r = run(&["sweep", "--help"], None);
    let help = r
        .stdout
        .replace('\n', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for what in ["MNIST IDX", "CIFAR-10/100", "CSV manifest", "image folder"] {
        assert!(
            help.contains(what),
            "`{what}` missing from sweep --help:\n{}",
            r.stdout
        );
    }
}

#[test]
fn console_p_values_and_predictions_sources_read_as_a_user_expects() {
    let out = kept_dir("p-values-sources");
    let p4cnn = root().join("models/mnist-p4cnn.pt");
    let r = mnist_sweep(
        &out,
        &["--model", s(p4cnn), "--limit", "40", "--angles", "0,90"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("McNemar p"))
        .collect();
    assert!(!lines.is_empty(), "{}", r.stdout);
    for l in &lines {
        let p = l.rsplit(' ').next().unwrap();
        let v: f64 = p.parse().unwrap();
        let ok = if v >= 0.001 {
            p.len() == 5 && p.contains('.')
        } else {
            p.contains("e-")
        };
        assert!(
            ok,
            "`{p}` in `{l}`: three decimals, or 2.3e-20 form below 0.001"
        );
    }
    // Every prediction names its record in the IDX file.
    for row in read_csv(&out.join("predictions.csv")) {
        assert_eq!(
            row["source"],
            format!("t10k-images.idx3-ubyte.gz#{}", row["index"])
        );
    }
    // And for a CSV manifest, the file relative to it.
    let shapes = root().join("tests/fixtures/shapes");
    let out = kept_dir("sources-manifest");
    let r = run(
        &[
            "sweep",
            "--model",
            s(shapes.join("shapes-cnn.pt")),
            "--data",
            s(shapes.join("manifest.csv")),
            "--angles",
            "0",
            "--out",
            s(&out),
            "--quiet",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = read_csv(&out.join("predictions.csv"));
    let listed: Vec<String> = std::fs::read_to_string(shapes.join("manifest.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str()).collect();
    assert_eq!(sources, listed, "in the manifest's order, relative to it");
    assert!(shapes.join(sources[0]).is_file());
}

#[test]
fn batch_size_1_changes_no_class_and_moves_confidences_by_under_1e_5() {
    let rows = |b: &str| {
        let out = kept_dir(&format!("batch-{b}"));
        let r = mnist_sweep(
            &out,
            &[
                "--limit",
                "96",
                "--angles",
                "0,45",
                "--batch-size",
                b,
                "--quiet",
                "--no-report",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        read_csv(&out.join("predictions.csv"))
    };
    let (one, many) = (rows("1"), rows("64"));
    assert_eq!(one.len(), many.len());
    for (a, b) in one.iter().zip(&many) {
        assert_eq!(
            (&a["index"], &a["pred"]),
            (&b["index"], &b["pred"]),
            "the same class"
        );
        let d = (a["confidence"].parse::<f64>().unwrap() - b["confidence"].parse::<f64>().unwrap())
            .abs();
        assert!(
            d < 1e-5,
            "index {} at {}: confidence moved {d}",
            a["index"],
            a["angle"]
        );
    }
}

#[test]
fn rotate_reads_a_png_named_jpg_and_writes_the_format_its_output_name_asks_for() {
    let fx = root().join("tests/fixtures/pipeline/rotate-naming");
    let dir = kept_dir("rotate-naming");
    let out = dir.join("turned.bmp");
    let r = run(
        &[
            "rotate",
            "--angle",
            "0",
            s(fx.join("png-named.jpg")),
            s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Bmp
    );
    let got = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let want = image::open(fx.join("png-named.rgb.png")).unwrap().to_rgb8();
    assert_eq!(got, want, "at 0 degrees: pil_loader's pixels");
    // RGBA becomes RGB (alpha dropped, as PIL's convert("RGB")), 16-bit grey 8-bit grey.
    for (input, color) in [
        ("rgba.png", image::ColorType::Rgb8),
        ("gray16.png", image::ColorType::L8),
    ] {
        let out = dir.join(format!("{input}.png"));
        let r = run(
            &["rotate", "--angle", "0", s(fx.join(input)), s(&out)],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(image::open(&out).unwrap().color(), color, "{input}");
    }
    let r = run(
        &[
            "rotate",
            "--angle",
            "0",
            s(fx.join("rgba.png")),
            s(dir.join("x.unknown")),
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("x.unknown") && r.stderr.contains(".png"),
        "{}",
        r.stderr
    );
}
