//! `rotbench doctor`: what this install runs on, and whether it works. It prints
//! rotbench's build, the libtorch in use (path, version, origin), CUDA, the CPU,
//! the bundle, then runs one forward pass of a bundled model on each device and
//! checks the answers. Any problem is exit 2 with the fix.

use crate::cli::DoctorArgs;
use anyhow::{anyhow, bail, Result};
use rotbench::backend::onnx;
use rotbench::bundled::Bundle;
use rotbench::dataset::{self, OpenOptions, Target};
use rotbench::device::{device_name, parse_device};
use rotbench::libtorch::{self, Cuda};
use rotbench::model::Model;
use rotbench::spec::{Inference, SpecFlags};
use std::process::ExitCode;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Digits the check runs through the bundled CNN, and the accuracy it must reach
/// (the model scores over 98% on the MNIST test set upright).
const CHECK_IMAGES: usize = 256;
const CHECK_ACCURACY: f64 = 0.95;

pub fn doctor(args: DoctorArgs) -> Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    outln!(
        "rotbench  {} ({} build, {}-{}, for libtorch {}; reads TorchScript, ONNX and AOTInductor .pt2)",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::env::consts::ARCH,
        std::env::consts::OS,
        rotbench::LIBTORCH_VERSION,
    );
    match libtorch::current() {
        None => problems.push("libtorch_cpu.so is not mapped into this process".into()),
        Some(lt) => {
            // As the loaded library reports it (its build settings), not its folder.
            let v = libtorch::version().to_string();
            outln!(
                "libtorch  {v} at {}, from {}",
                lt.lib_dir.display(),
                lt.origin.describe()
            );
            let pip = format!(
                "install torch=={0} (`pip install torch=={0}`)",
                rotbench::LIBTORCH_VERSION
            );
            if !libtorch::version_matches(&v, rotbench::LIBTORCH_VERSION) {
                problems.push(format!(
                    "libtorch {v} at {} is not the {} this rotbench is built for; {pip}",
                    lt.lib_dir.display(),
                    rotbench::LIBTORCH_VERSION,
                ));
            }
            // The folder's version file (build-version, version.py) must agree with
            // the library: a mix of two installs is not one libtorch.
            if let Some(f) = lt
                .version
                .as_deref()
                .filter(|f| !libtorch::version_matches(f, &v))
            {
                problems.push(format!(
                    "the libtorch at {} reports version {v}, but the version file beside it says {f}: the folder mixes two installs; {pip}",
                    lt.lib_dir.display(),
                ));
            }
        }
    }
    match onnx::find_library() {
        Some((path, from)) => outln!(
            "onnx      ONNX Runtime {} at {} (from {from})",
            onnx::library_version(&path).unwrap_or_else(|| "of unknown version".into()),
            path.display()
        ),
        None => outln!(
            "onnx      ONNX Runtime {} not on this machine yet: the first .onnx model fetches it into {}",
            onnx::ONNXRUNTIME_VERSION,
            onnx::cache_dir().display()
        ),
    }
    outln!("cpu       {}", cpu_line());

    // Which devices to check.
    let want = args.device.as_str();
    // The CPU always: it is the reference a GPU's predictions are compared with.
    let mut devices: Vec<Device> = vec![Device::Cpu];
    if want != "cpu" {
        cuda_lines(want, &mut devices, &mut problems);
    }

    let bundle = Bundle::find();
    outln!(
        "bundle    {} ({})",
        bundle.root.display(),
        if bundle.installed {
            "installed, ROTBENCH_SHARE"
        } else {
            "the source checkout"
        }
    );
    match bundle.check() {
        Err(e) => problems.push(format!("{e:#}")),
        Ok(()) => {
            let mut reference: Option<Vec<i64>> = None;
            for d in devices {
                match forward_check(&bundle, d, reference.as_deref()) {
                    Ok((line, preds)) => {
                        outln!("check     {:<7} pass: {line}", device_name(d));
                        reference.get_or_insert(preds);
                    }
                    Err(e) => {
                        outln!("check     {:<7} FAIL", device_name(d));
                        problems.push(format!("{}: {e:#}", device_name(d)));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        outln!("all well");
        return Ok(ExitCode::SUCCESS);
    }
    bail!(
        "rotbench doctor found {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

fn cpu_line() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.into());
    let mut features: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                std::arch::is_x86_feature_detected!("avx512bf16"),
            ),
        ] {
            if on {
                features.push(name);
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{model}; {}; {cores} threads available, libtorch uses {}",
        if features.is_empty() {
            "no x86 vector extensions".to_string()
        } else {
            features.join(" ")
        },
        tch::get_num_threads()
    )
}

/// Print the CUDA lines and add the GPUs to check. `want` is `all`, `cuda` or `cuda:N`.
fn cuda_lines(want: &str, devices: &mut Vec<Device>, problems: &mut Vec<String>) {
    let required = want != "all";
    if required {
        match parse_device(want) {
            Ok(d) => {
                print_cuda();
                devices.push(d);
            }
            Err(e) => {
                outln!("cuda      unavailable");
                problems.push(format!("{e:#}"));
            }
        }
        return;
    }
    match libtorch::load_cuda() {
        Cuda::CpuOnly(_) => outln!("cuda      none: the libtorch in use is a CPU-only build"),
        Cuda::NoLibtorch => {}
        failed @ Cuda::Failed(so, _) => {
            outln!("cuda      {} would not load", so.display());
            problems.extend(
                libtorch::cuda_problem(failed)
                    .map(|why| format!("{why}; or check with --device cpu")),
            );
        }
        Cuda::Loaded(_) => {
            print_cuda();
            for i in 0..tch::Cuda::device_count().max(0) {
                devices.push(Device::Cuda(i as usize));
            }
        }
    }
}

fn print_cuda() {
    let Cuda::Loaded(so) = libtorch::load_cuda() else {
        return;
    };
    let n = tch::Cuda::device_count();
    let info = libtorch::cuda_info();
    let driver = info
        .driver
        .map_or("none loaded (no NVIDIA driver, libcuda.so)".into(), |v| {
            libtorch::cuda_version(v)
        });
    outln!(
        "cuda      {} from {}; driver {driver}, runtime {}, cuDNN {}",
        if n > 0 {
            "loaded"
        } else {
            "loaded, no GPU visible,"
        },
        so.display(),
        info.runtime
            .map_or("unknown".into(), libtorch::cuda_version),
        if tch::Cuda::cudnn_is_available() {
            "yes"
        } else {
            "no"
        }
    );
    for g in &info.devices {
        outln!(
            "gpu       cuda:{} {}, {:.1} GiB, compute capability {}.{}",
            g.index,
            g.name,
            g.memory_bytes as f64 / (1u64 << 30) as f64,
            g.compute_capability.0,
            g.compute_capability.1
        );
    }
}

/// One forward pass of the bundled CNN over the first digits of the bundled test
/// set on `device`: the predictions must be mostly right, and on a GPU the
/// disagreements with the CPU's are counted.
fn forward_check(
    bundle: &Bundle,
    device: Device,
    reference: Option<&[i64]>,
) -> Result<(String, Vec<i64>)> {
    let path = &bundle.models()[0];
    let t0 = Instant::now();
    let model = Model::load(
        path,
        &SpecFlags::default(),
        device,
        Inference::Optimized,
        false,
    )?;
    let s = &model.spec;
    let target = Target {
        channels: s.channels(),
        height: s.height(),
        width: s.width(),
    };
    let opts = OpenOptions {
        limit: Some(CHECK_IMAGES),
        ..OpenOptions::default()
    };
    let mut src = dataset::open(
        &bundle.data(),
        target,
        &dataset::LabelSpace::of_spec(s, false),
        &opts,
    )?;
    let chunk = src
        .next_chunk(CHECK_IMAGES)?
        .ok_or_else(|| anyhow!("{}: no images", bundle.data().display()))?;
    let n = chunk.len();
    let x = Tensor::from_slice(&chunk.pixels)
        .to_kind(Kind::Float)
        .view([
            n as i64,
            target.channels as i64,
            target.height as i64,
            target.width as i64,
        ]);
    let logits = model.forward_raw(&x)?.view([n as i64, -1]);
    let preds: Vec<i64> = Vec::try_from(logits.argmax(1, false))?;
    let finite = bool::try_from(logits.isfinite().all())?;
    if !finite {
        bail!("{}: the logits hold NaN or infinity", path.display());
    }
    let right = preds
        .iter()
        .zip(&chunk.labels)
        .filter(|(p, l)| **p == **l as i64)
        .count();
    let acc = right as f64 / n as f64;
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    let mut line = format!(
        "{file}, {n} digits upright: {right} right ({:.1}%), {:.0} ms",
        100.0 * acc,
        t0.elapsed().as_secs_f64() * 1e3
    );
    if acc < CHECK_ACCURACY {
        bail!(
            "{file} got {right} of {n} digits right on {} (under {:.0}%): this libtorch computes wrong answers; reinstall torch {}",
            device_name(device),
            100.0 * CHECK_ACCURACY,
            rotbench::LIBTORCH_VERSION
        );
    }
    if let Some(r) = reference {
        let differ: Vec<usize> = (0..n).filter(|&i| preds[i] != r[i]).collect();
        if differ.is_empty() {
            line.push_str(", the same predictions as the CPU");
        } else {
            line.push_str(&format!(
                ", {} prediction(s) differ from the CPU's (digits {:?})",
                differ.len(),
                differ
            ));
        }
    }
    Ok((line, preds))
}
