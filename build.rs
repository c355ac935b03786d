//! Link-time set-up: an rpath to libtorch so that `rotbench` and the test
//! binaries run from any shell without LD_LIBRARY_PATH.
//!
//! torch-sys declares `links = "tch"`, so cargo hands us its libtorch lib folder
//! as `DEP_TCH_LIBTORCH_LIB`.
use std::env;
use std::fs;
use std::path::PathBuf;

/// The libtorch version from Cargo.toml's `[package.metadata.rotbench]`, the one
/// place it is written.
fn expected_torch() -> String {
    metadata("libtorch")
}

/// `KEY = "VALUE"` under Cargo.toml's `[package.metadata.rotbench]`.
fn metadata(key: &str) -> String {
    let text = fs::read_to_string("Cargo.toml").unwrap_or_default();
    let mut in_table = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == "[package.metadata.rotbench]";
        } else if in_table {
            if let Some(v) = line.strip_prefix(key) {
                let v = v.trim_start().trim_start_matches('=').trim();
                return v.trim_matches('"').to_owned();
            }
        }
    }
    panic!("Cargo.toml has no `{key} = \"X.Y.Z\"` under [package.metadata.rotbench]");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let expected = expected_torch();
    println!("cargo:rustc-env=ROTBENCH_LIBTORCH_VERSION={expected}");
    println!(
        "cargo:rustc-env=ROTBENCH_ONNXRUNTIME_VERSION={}",
        metadata("onnxruntime")
    );
    let expected = expected.as_str();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its libtorch folder; binaries will need LD_LIBRARY_PATH");
        return;
    };
    // `.libtorch` is a symlink into the cache: bake in the real folder so a
    // binary keeps working wherever the checkout moves.
    let lib = fs::canonicalize(&lib).unwrap_or_else(|_| PathBuf::from(&lib));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if let Some(root) = lib.parent() {
        // The LIBTORCH route skips tch's own version check, so pin it here.
        if let Ok(v) = fs::read_to_string(root.join("build-version")) {
            let v = v.trim();
            if !v.starts_with(expected) {
                panic!(
                    "libtorch at {} is version {v}, but tch 0.26 needs {expected}; \
                     unset LIBTORCH to use `make setup`'s slim copy",
                    root.display()
                );
            }
        }
    }
    build_shim(&lib);
    build_torch_stub();
    // No libtorch_cuda.so here, even when the folder has one: the binary opens it at
    // run time when it sits beside libtorch_cpu.so (src/libtorch.rs), so one binary
    // runs on CPU-only and CUDA builds of the same libtorch.
}

/// Compile src/shim/optimized.cpp (freeze + optimize_for_inference, forward on
/// tch tensors) against the same libtorch headers torch-sys uses.
fn build_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/shim/optimized.cpp");
    println!("cargo:rerun-if-changed=src/shim/aoti.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = lib.parent().expect("libtorch lib folder has a parent");
    let abi = env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("src/shim/optimized.cpp")
        .file("src/shim/aoti.cpp")
        .compile("rotbench_shim");
}

/// An empty shared library whose soname is `libtorch.so`, embedded in the binary
/// (src/pt2.rs). An AOTInductor package's code lists libtorch.so as NEEDED but uses
/// nothing from it (libtorch.so is a wrapper over libtorch_cpu.so and
/// libtorch_cuda.so). The slim CPU set's libtorch.so needs libtorch_cuda.so and so
/// cannot load; when the real one will not load, this one answers to its name.
fn build_torch_stub() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = out.join("torch_stub.c");
    fs::write(
        &src,
        "/* rotbench: stands in for libtorch.so's name only. */\n",
    )
    .expect("write torch_stub.c");
    let so = out.join("libtorch_stub.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libtorch.so",
            "-o",
        ])
        .arg(&so)
        .arg(&src)
        .status()
        .expect("run the C compiler for the libtorch.so stub");
    assert!(status.success(), "building the libtorch.so stub failed");
}
