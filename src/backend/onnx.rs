//! The ONNX backend: a model run by ONNX Runtime's CPU execution provider.
//!
//! ONNX Runtime is a shared library loaded at run time (`ort`'s `load-dynamic`), so a
//! TorchScript-only run never needs it. It is looked for in this order: the file
//! named by `ROTBENCH_ONNXRUNTIME`; the Python `onnxruntime` package that the
//! wheel's launcher found (`ROTBENCH_PY_ONNXRUNTIME`); rotbench's cache. When none
//! has it, [`ensure_runtime`] fetches PyPI's `onnxruntime` wheel with pip, once, into
//! the cache, as `make setup` fetches libtorch. The version is written once, in
//! Cargo.toml's `[package.metadata.rotbench]`.
//!
//! A model exported with a fixed batch size runs in chunks of that size. The last
//! chunk is padded with zeros and the padded rows are dropped.

use anyhow::{anyhow, bail, Context, Result};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use rotbench_core::spec::SpecFile;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tch::{Kind, Tensor};

/// The ONNX Runtime version rotbench fetches (Cargo.toml, through build.rs).
pub const ONNXRUNTIME_VERSION: &str = env!("ROTBENCH_ONNXRUNTIME_VERSION");
/// The `metadata_props` key that holds an embedded spec.
pub const METADATA_KEY: &str = "rotbench.json";

/// The loaded ONNX Runtime.
pub struct Runtime {
    pub path: PathBuf,
    /// Its version as the library reports it ([`library_version`]).
    pub version: String,
    /// Where it was found: the variable, the Python package, the cache, or fetched.
    pub origin: String,
    env: ort::environment::Environment,
}

fn cache_root() -> PathBuf {
    if let Some(c) = std::env::var_os("ROTBENCH_CACHE") {
        return PathBuf::from(c);
    }
    crate::cache_home()
}

/// The cache folder for this version: `<cache>/onnxruntime-<version>/`.
pub fn cache_dir() -> PathBuf {
    cache_root().join(format!("onnxruntime-{ONNXRUNTIME_VERSION}"))
}

fn library_name() -> String {
    format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}")
}

/// The first place that has the library, without fetching.
pub fn find_library() -> Option<(PathBuf, String)> {
    if let Some(p) = std::env::var_os("ROTBENCH_ONNXRUNTIME") {
        return Some((PathBuf::from(p), "ROTBENCH_ONNXRUNTIME".into()));
    }
    if let Some(p) = std::env::var_os("ROTBENCH_PY_ONNXRUNTIME") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some((p, "the Python onnxruntime package".into()));
        }
    }
    let cached = cache_dir().join(library_name());
    cached
        .is_file()
        .then(|| (cached, "rotbench's cache".to_string()))
}

/// Fetch PyPI's onnxruntime wheel with pip and keep only its library, in the cache.
/// `notify` hears what is happening (the commands print it on stderr).
pub fn fetch(notify: &dyn Fn(&str)) -> Result<PathBuf> {
    let dir = cache_dir();
    let fix = format!(
        "install it yourself: `pip install onnxruntime=={ONNXRUNTIME_VERSION}` and set ROTBENCH_ONNXRUNTIME to its onnxruntime/capi/{} (the wheel's `rotbench` finds an installed onnxruntime by itself)",
        library_name()
    );
    std::fs::create_dir_all(cache_root())
        .with_context(|| format!("ONNX Runtime: cannot create {}", cache_root().display()))?;
    let work = tempfile::Builder::new()
        .prefix(".onnxruntime-")
        .tempdir_in(cache_root())
        .with_context(|| format!("ONNX Runtime: cannot write in {}", cache_root().display()))?;
    notify(&format!(
        "ONNX Runtime {ONNXRUNTIME_VERSION} is not on this machine yet: fetching PyPI's onnxruntime wheel with pip (about 24 MB, once) into {}",
        dir.display()
    ));
    let out = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"])
        .arg("-d")
        .arg(work.path())
        .arg(format!("onnxruntime=={ONNXRUNTIME_VERSION}"))
        .output()
        .map_err(|e| anyhow!("ONNX Runtime's library is missing and python3 could not be run to fetch it ({e}); {fix}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("ONNX Runtime's library is missing and `pip download onnxruntime=={ONNXRUNTIME_VERSION}` failed ({}); {fix}", last.trim());
    }
    let wheel = std::fs::read_dir(work.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| anyhow!("pip downloaded no onnxruntime wheel; {fix}"))?;
    let want = format!("onnxruntime/capi/{}", library_name());
    let stage = work.path().join("stage");
    std::fs::create_dir_all(&stage)?;
    // pip's python unzips it (the wheel is deflated; rotbench's zip reader reads
    // stored TorchScript archives only).
    let unzip = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(&want)
        .arg(stage.join(library_name()))
        .output()?;
    if !unzip.status.success() {
        bail!(
            "{} holds no readable {want} ({}); {fix}",
            wheel.display(),
            String::from_utf8_lossy(&unzip.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    // Another rotbench may have fetched it meanwhile (tests run in parallel): keep
    // whichever folder landed first.
    if !dir.join(library_name()).is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::rename(&stage, &dir) {
            if !dir.join(library_name()).is_file() {
                bail!(
                    "ONNX Runtime: cannot move the library into {}: {e}",
                    dir.display()
                );
            }
        }
    }
    Ok(dir.join(library_name()))
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The one thread pool every ONNX model of the process runs on: `threads`
/// intra-op threads (libtorch's count when the runtime starts, `--threads` in a
/// sweep) and no inter-op pool. A pool per session let each model's idle
/// workers spin while another model ran: three ONNX models in one sweep took
/// 65-114 s on 2 cores against 43 s for the three alone (issue 36).
fn shared_pool(threads: usize) -> ort::Result<ort::environment::GlobalThreadPoolOptions> {
    ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(threads.max(1))?
        .with_inter_threads(1)
}

/// ONNX Runtime, loaded once per process: found, or fetched when it is nowhere.
pub fn ensure_runtime(notify: &dyn Fn(&str)) -> Result<&'static Runtime> {
    let r = RUNTIME.get_or_init(|| {
        let (path, origin) = match find_library() {
            Some(found) => found,
            None => match fetch(notify) {
                Ok(p) => (p, "rotbench's cache (fetched now)".into()),
                Err(e) => return Err(format!("{e:#}")),
            },
        };
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime's library {} (from {origin}) does not exist; point ROTBENCH_ONNXRUNTIME at libonnxruntime.so, or unset it to use rotbench's cache",
                path.display()
            ));
        }
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
        let env = ort::init_from(&path).map(|b| {
            shared_pool(threads)
                .and_then(|pool| b.with_name("rotbench").with_global_thread_pool(pool).build())
        });
        match env {
            Ok(Ok(env)) => match library_version(&path) {
                Some(version) => Ok(Runtime {
                    path,
                    version,
                    origin,
                    env,
                }),
                None => Err(format!(
                    "ONNX Runtime's library {} (from {origin}) does not report its version (OrtGetApiBase); point ROTBENCH_ONNXRUNTIME at a libonnxruntime.so of ONNX Runtime 1.22 or newer",
                    path.display()
                )),
            },
            Ok(Err(e)) => Err(format!(
                "ONNX Runtime ({}) would not start: {}",
                path.display(),
                ort_message(e)
            )),
            Err(e) => Err(format!(
                "ONNX Runtime's library {} (from {origin}) would not load: {e}; rotbench needs ONNX Runtime 1.22 or newer ({ONNXRUNTIME_VERSION} is fetched when none is found)",
                path.display()
            )),
        }
    });
    r.as_ref().map_err(|e| anyhow!("{e}"))
}

/// The version an ONNX Runtime library reports of itself (`OrtGetApiBase()->
/// GetVersionString()`), whatever its file is named: the one the cache keys and
/// summary.json record. `None` when it cannot be opened or lacks the entry point.
pub fn library_version(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    /// The head of ONNX Runtime's `OrtApiBase`: two function pointers.
    #[repr(C)]
    struct ApiBase {
        _get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
        get_version_string: unsafe extern "C" fn() -> *const std::ffi::c_char,
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: dlopen/dlsym/dlclose on a path; the symbol, when present, is ONNX
    // Runtime's `const OrtApiBase* OrtGetApiBase(void)`, whose second member
    // returns a static NUL-terminated string.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if h.is_null() {
            return None;
        }
        let sym = libc::dlsym(h, c"OrtGetApiBase".as_ptr());
        let version = if sym.is_null() {
            None
        } else {
            let get_base: unsafe extern "C" fn() -> *const ApiBase = std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                None
            } else {
                let v = ((*base).get_version_string)();
                (!v.is_null()).then(|| std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned())
            }
        };
        libc::dlclose(h);
        version
    }
}

/// The runtime if [`ensure_runtime`] has loaded it.
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get().and_then(|r| r.as_ref().ok())
}

/// Whether a file holds an ONNX model, by content: a protobuf `ModelProto` starts
/// with a varint field (ir_version is field 1: byte 0x08), and is not a zip.
pub fn looks_like_onnx(head: &[u8]) -> bool {
    head.first() == Some(&0x08) && head.len() > 1
}

/// An ONNX model in an ONNX Runtime session.
pub struct OnnxNet {
    session: Mutex<Session>,
    input_name: String,
    /// The input's shape as exported (-1: any size).
    input_shape: Vec<i64>,
    output_name: String,
    /// The batch size the model was exported with, when it is fixed.
    pub fixed_batch: Option<usize>,
}

/// ONNX Runtime's message, shortened to its first line.
fn ort_message(e: impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|&d| {
            if d < 0 {
                "N".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

impl OnnxNet {
    /// Open `path` in a session on the CPU, on the process's one thread pool
    /// ([`shared_pool`]), and check that it takes one float32 NCHW tensor and
    /// returns a float32 tensor.
    pub fn load(path: &Path) -> Result<(OnnxNet, Option<SpecFile>)> {
        let rt = ensure_runtime(&|m| eprintln!("rotbench: {m}"))?;
        let mut builder = Session::builder(&rt.env)
            .map_err(|e| anyhow!("ONNX Runtime: cannot make a session: {}", ort_message(e)))?;
        let session = builder
            .commit_from_file(path)
            .map_err(|e| load_error(path, &ort_message(e)))?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
            bail!(
                "{}: the model has {} inputs ({names:?}); rotbench feeds one float32 NCHW image batch, so export a model with a single image input",
                path.display(),
                inputs.len()
            );
        }
        let input = &inputs[0];
        let (ty, shape) = match input.dtype() {
            ValueType::Tensor { ty, shape, .. } => (ty.clone(), shape.to_vec()),
            other => bail!(
                "{}: input '{}' is a {other:?}, not a tensor; rotbench feeds one float32 NCHW tensor [N, C, H, W]",
                path.display(),
                input.name()
            ),
        };
        if ty != TensorElementType::Float32 || shape.len() != 4 {
            bail!(
                "{}: input '{}' is {ty:?} of shape {}; rotbench feeds one float32 NCHW tensor [N, C, H, W] (normalised as the spec says): export the model with such an input",
                path.display(),
                input.name(),
                shape_text(&shape)
            );
        }
        let outputs = session.outputs();
        let Some(output) = outputs.first() else {
            bail!("{}: the model has no outputs", path.display());
        };
        match output.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                ..
            } => {}
            other => bail!(
                "{}: the first output '{}' is {other:?}; rotbench needs float32 logits [N, classes] there",
                path.display(),
                output.name()
            ),
        }
        let embedded = match session.metadata() {
            Ok(meta) => match meta.custom(METADATA_KEY) {
                Some(text) => Some(SpecFile::parse(
                    &text,
                    &format!(
                        "{} (embedded metadata_props {METADATA_KEY})",
                        path.display()
                    ),
                )?),
                None => None,
            },
            Err(_) => None,
        };
        let fixed_batch = (shape[0] > 0).then_some(shape[0] as usize);
        let net = OnnxNet {
            input_name: input.name().to_string(),
            input_shape: shape,
            output_name: output.name().to_string(),
            session: Mutex::new(session),
            fixed_batch,
        };
        Ok((net, embedded))
    }

    /// The input's name and shape as exported, for inspect.
    pub fn input(&self) -> (&str, String) {
        (&self.input_name, shape_text(&self.input_shape))
    }

    /// Check the exported input size against the spec's CxHxW.
    pub fn check_input(&self, path: &Path, chw: [usize; 3], from: &str) -> Result<()> {
        for (i, (&d, &want)) in self.input_shape[1..].iter().zip(chw.iter()).enumerate() {
            if d > 0 && d as usize != want {
                bail!(
                    "{}: input '{}' has shape {} but the spec ({from}) says {}x{}x{} (CxHxW); dimension {} differs: fix `input` in the sidecar or pass --input-size",
                    path.display(),
                    self.input_name,
                    shape_text(&self.input_shape),
                    chw[0],
                    chw[1],
                    chw[2],
                    i + 1
                );
            }
        }
        Ok(())
    }

    /// Logits for a normalised float32 NCHW batch (on any device): `[N, K]` on the CPU.
    pub fn forward(&self, x: &Tensor) -> std::result::Result<Tensor, String> {
        let x = x
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape = x.size();
        let n = shape[0] as usize;
        let per: usize = shape[1..].iter().product::<i64>() as usize;
        let data: Vec<f32> =
            Vec::<f32>::try_from(x.view([-1])).map_err(|e: tch::TchError| e.to_string())?;
        let step = self.fixed_batch.unwrap_or(n.max(1));
        let mut session = self
            .session
            .lock()
            .map_err(|_| "the session lock is poisoned".to_string())?;
        let mut logits: Vec<f32> = Vec::new();
        let mut width = 0usize;
        let mut padded: Vec<f32>;
        let mut start = 0;
        while start < n {
            let take = step.min(n - start);
            let chunk = &data[start * per..(start + take) * per];
            // A fixed-batch model gets a full batch: the rows past `take` are zeros.
            let feed: &[f32] = if take < step {
                padded = vec![0f32; step * per];
                padded[..chunk.len()].copy_from_slice(chunk);
                &padded
            } else {
                chunk
            };
            let dims = [step as i64, shape[1], shape[2], shape[3]];
            let input = TensorRef::from_array_view((dims, feed)).map_err(ort_message)?;
            let outputs = session
                .run(ort::inputs![self.input_name.as_str() => input])
                .map_err(ort_message)?;
            let out = &outputs[self.output_name.as_str()];
            let (oshape, values) = out.try_extract_tensor::<f32>().map_err(ort_message)?;
            if oshape.len() != 2 || oshape[0] != step as i64 {
                return Err(format!(
                    "the model returned shape {} for a batch of {step}; rotbench needs logits of shape [N, classes]",
                    shape_text(oshape)
                ));
            }
            width = oshape[1] as usize;
            logits.extend_from_slice(&values[..take * width]);
            start += take;
        }
        Ok(Tensor::from_slice(&logits).view([n as i64, width as i64]))
    }
}

/// The number after `word` in `text` (`"opset 26"` -> 26).
fn number_after(text: &str, word: &str) -> Option<u32> {
    text.match_indices(word).find_map(|(at, _)| {
        let rest = &text[at + word.len()..];
        let digits: String = rest
            .strip_prefix(' ')?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// The error for a file ONNX Runtime would not open, with the fix.
fn load_error(path: &Path, msg: &str) -> anyhow::Error {
    // "Load model from PATH failed:REASON": keep the reason.
    let reason = msg.split_once(" failed:").map_or(msg, |(_, r)| r).trim();
    let lower = reason.to_lowercase();
    if lower.contains("opset") {
        let stamped = number_after(reason, "Opset").or_else(|| number_after(reason, "opset"));
        let newest = number_after(reason, "till opset");
        let stamped = stamped.map_or("an opset".to_string(), |o| format!("opset {o}"));
        let newest = newest.map_or(String::new(), |o| {
            format!(" (it supports ai.onnx up to opset {o})")
        });
        anyhow!(
            "{}: the model is stamped with {stamped}, which this ONNX Runtime cannot run{newest}; re-export it with an older opset, e.g. torch.onnx.export(..., opset_version=18)",
            path.display()
        )
    } else if lower.contains("protobuf") {
        anyhow!(
            "{}: not a readable ONNX model ({reason}); the file is corrupt or truncated: export it again (torch.onnx.export, or tf2onnx for Keras/TensorFlow)",
            path.display()
        )
    } else {
        anyhow!(
            "{}: ONNX Runtime could not load the model: {reason}",
            path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opset_error_names_the_stamped_and_the_newest_opset() {
        let msg = "Load model from m.onnx failed:/src/model_load_utils.h:46 void f(...) ONNX Runtime only *guarantees* support for models stamped with official released onnx opset versions. Opset 99 is under development and support for this is limited. Current official support for domain ai.onnx is till opset 26.";
        let e = load_error(Path::new("m.onnx"), msg).to_string();
        assert!(e.contains("stamped with opset 99"), "{e}");
        assert!(e.contains("up to opset 26"), "{e}");
        assert!(e.contains("opset_version=18"), "{e}");
    }

    #[test]
    fn onnx_files_are_told_from_zips_by_their_first_byte() {
        assert!(looks_like_onnx(&[0x08, 0x08]));
        assert!(!looks_like_onnx(b"PK\x03\x04"));
        assert!(!looks_like_onnx(&[0x08]));
    }
}
