//! The model backends behind [`crate::model::Model`], one file each (as candle's
//! `backend.rs` with a folder per device): TorchScript through libtorch's JIT
//! ([`torchscript`]), torch.export AOTInductor packages through libtorch's loader
//! ([`pt2`]) and ONNX through ONNX Runtime ([`onnx`]). This file owns what they
//! share: a model file's format from its content, the opened network ([`Net`])
//! with the spec its file embeds and what its forward returns, the checks of a
//! spec against it, and one forward pass for all three.

pub mod onnx;
pub mod pt2;
pub mod torchscript;

use crate::device::device_name;
use crate::ffi::first_line;
use anyhow::{anyhow, bail, Context, Result};
use rotbench_core::spec::{
    read_embedded_spec, Inference, ModelSpec, Provenance, Returns, SpecFile, EMBEDDED,
};
use std::ffi::CStr;
use std::fs;
use std::io::Read;
use std::path::Path;
use tch::{Device, Kind, Tensor};
pub use torchscript::{module_name, TrainingMode};
use torchscript::{ScriptModule, EXPORT};

/// Why forward gave no logits.
pub enum ForwardError {
    /// Forward itself raised (often the input shape).
    Raised(String),
    /// Forward ran, but its output holds no tensor where the spec's output choice says.
    Output(String),
}

/// A model file's format, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TorchScript,
    Onnx,
    /// A torch.export AOTInductor package.
    Pt2,
}

const FORMATS: &str = "rotbench reads TorchScript (.pt: torch.jit.save), ONNX (.onnx: torch.onnx.export, tf2onnx) and torch.export AOTInductor packages (.pt2: torch._inductor.aoti_compile_and_package)";

/// The format of a model file from its first bytes and, for zips, its entries.
fn detect_format(path: &Path, head: &[u8], len: u64) -> Result<Format> {
    if len == 0 {
        bail!("{}: the model file is empty; {FORMATS}", path.display());
    }
    let named_pt2 = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pt2"));
    if head.starts_with(b"PK\x03\x04") {
        let zip = match zip::ZipArchive::new(fs::File::open(path)?) {
            Ok(zip) => zip,
            Err(e) if named_pt2 => bail!(
                "{}: not a readable AOTInductor package (broken zip archive: {e}); the file is corrupt or truncated: export it again (torch._inductor.aoti_compile_and_package)",
                path.display()
            ),
            Err(e) => bail!(
                "{}: not a TorchScript file (broken zip archive: {e}); {EXPORT}",
                path.display()
            ),
        };
        let names: Vec<std::borrow::Cow<str>> = zip.file_names().flatten().collect();
        let has = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| f(n));
        if has(&|n| {
            n.contains("/data/aotinductor/")
                || n.ends_with("/archive_format")
                || n == "archive_format"
        }) {
            return Ok(Format::Pt2);
        }
        // A zip with pickled data and no code is torch.save's, not TorchScript's.
        if has(&|n| n.ends_with("data.pkl"))
            && !has(&|n| n.contains("/code/") || n.starts_with("code/"))
        {
            bail!(
                "{}: this is a state_dict or pickled object saved with torch.save, not TorchScript; load it into your model class in Python and {EXPORT}",
                path.display()
            );
        }
        return Ok(Format::TorchScript);
    }
    if onnx::looks_like_onnx(head) {
        return Ok(Format::Onnx);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(ext.as_str(), "pt" | "pth" | "jit" | "torchscript") {
        bail!(
            "{}: not a TorchScript file (TorchScript files are zip archives); {EXPORT}",
            path.display()
        );
    }
    if ext == "onnx" {
        bail!(
            "{}: named .onnx but not an ONNX model (an ONNX file is a protobuf ModelProto starting with its ir_version); export it again",
            path.display()
        );
    }
    bail!(
        "{}: not a model format rotbench reads; {FORMATS}",
        path.display()
    )
}

/// A model file's format: the file must exist, be a file and hold one of the three.
pub fn format_of(path: &Path) -> Result<Format> {
    let meta = fs::metadata(path).map_err(|e| {
        anyhow!(
            "--model {}: cannot read the model file ({e}); check the path",
            path.display()
        )
    })?;
    if meta.is_dir() {
        bail!(
            "--model {}: is a folder; give the model file (.pt, .pt2 or .onnx)",
            path.display()
        );
    }
    let mut head = [0u8; 4];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("--model {}: cannot read the model file", path.display()))?;
    detect_format(path, &head[..n], meta.len())
}

/// The network behind a model: TorchScript through the C++ shim, an ONNX model in
/// ONNX Runtime, or an AOTInductor package.
pub enum Net {
    Script(ScriptModule),
    Onnx(onnx::OnnxNet),
    Pt2(pt2::Pt2Net),
}

/// A network as opened, with what its file says: the spec it embeds (and where
/// that sits, for the provenance), what forward declares it returns, and the
/// ops it runs in training mode (TorchScript only).
pub struct Opened {
    pub net: Net,
    pub embedded: Option<(&'static str, SpecFile)>,
    pub returns: Returns,
    pub training: TrainingMode,
}

/// The provenance name of an ONNX model's embedded spec.
const ONNX_EMBEDDED: &str = "embedded metadata_props rotbench.json";
/// The provenance name of an AOTInductor package's embedded spec.
const PT2_EMBEDDED: &str = "embedded AOTI metadata rotbench.json";

impl Net {
    /// Open a model file of any format on `device`.
    pub fn open(path: &Path, device: Device, inference: Inference) -> Result<Opened> {
        match format_of(path)? {
            Format::TorchScript => {
                let embedded = read_embedded_spec(path)?.map(|e| (EMBEDDED, e));
                let module = ScriptModule::load(path, device, inference).map_err(|e| {
                    let hint = if inference == Inference::Optimized {
                        "; if the optimisation step is the problem, retry with --exact"
                    } else {
                        ""
                    };
                    anyhow!(
                        "{}: libtorch could not load this TorchScript file: {}{hint}",
                        path.display(),
                        first_line(&e)
                    )
                })?;
                Ok(Opened {
                    embedded,
                    returns: module.returns(),
                    training: module.training_mode(),
                    net: Net::Script(module),
                })
            }
            Format::Onnx => {
                if device != Device::Cpu {
                    bail!(
                        "--device {}: {} is an ONNX model, and rotbench runs ONNX models with ONNX Runtime's CPU provider (PyPI's onnxruntime has no CUDA provider); use --device cpu for it",
                        device_name(device),
                        path.display()
                    );
                }
                let (net, embedded) = onnx::OnnxNet::load(path)?;
                Ok(Opened {
                    net: Net::Onnx(net),
                    embedded: embedded.map(|e| (ONNX_EMBEDDED, e)),
                    returns: Returns::Tensor,
                    training: TrainingMode::default(),
                })
            }
            Format::Pt2 => {
                let (net, embedded) = pt2::Pt2Net::load(path, device)?;
                let embedded = match embedded {
                    Some(text) => Some((
                        PT2_EMBEDDED,
                        SpecFile::parse(&text, &format!("{} ({PT2_EMBEDDED})", path.display()))?,
                    )),
                    None => None,
                };
                Ok(Opened {
                    net: Net::Pt2(net),
                    embedded,
                    returns: Returns::Tensor,
                    training: TrainingMode::default(),
                })
            }
        }
    }

    /// Check a resolved spec against the network, before any work: an ONNX model's
    /// exported input against `input`; for a TorchScript forward that returns a
    /// dict or a list, whose keys and length are known only once it runs, the
    /// output choice on one blank image.
    pub fn check(
        &self,
        path: &Path,
        spec: &ModelSpec,
        provenance: &Provenance,
        returns: &Returns,
        output_key: Option<&CStr>,
        device: Device,
    ) -> Result<()> {
        match self {
            Net::Onnx(n) => {
                let from = provenance.get("input-size").cloned().unwrap_or_default();
                n.check_input(path, spec.input, &from)
            }
            Net::Script(m) if !matches!(returns, Returns::Tensor | Returns::Tuple(_)) => {
                let (c, h, w) = (spec.channels(), spec.height(), spec.width());
                let x = Tensor::zeros([1, c as i64, h as i64, w as i64], (Kind::Float, device));
                // One that raises here fails again, with the input hint, on the first batch.
                if let Err(ForwardError::Output(e)) = m.forward(&x, spec.output_index, output_key) {
                    bail!("{}", output_error(path, provenance, &e));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The output for a normalised float32 NCHW batch: the output itself, or (for
    /// TorchScript) element `index` of a tuple or the value under `key` of a dict.
    pub fn forward(
        &self,
        x: &Tensor,
        index: Option<usize>,
        key: Option<&CStr>,
    ) -> std::result::Result<Tensor, ForwardError> {
        match self {
            Net::Script(m) => m.forward(x, index, key),
            Net::Onnx(n) => n.forward(x).map_err(ForwardError::Raised),
            Net::Pt2(n) => n.forward(x).map_err(ForwardError::Raised),
        }
    }

    /// Whether the network's forward pass runs outside libtorch (ONNX Runtime's
    /// own thread pool); libtorch then only scales and normalises its batches.
    pub fn runs_outside_libtorch(&self) -> bool {
        matches!(self, Net::Onnx(_))
    }

    /// The backend, as summary.json and the cache keys record it: `torchscript`,
    /// `aotinductor`, or `onnxruntime X.Y.Z` (the version the loaded library reports,
    /// through `OrtGetApiBase`'s GetVersionString, not its file name).
    pub fn backend(&self) -> String {
        match self {
            Net::Script(_) => crate::BACKEND.to_string(),
            Net::Pt2(_) => "aotinductor".to_string(),
            Net::Onnx(_) => {
                let v = onnx::runtime().map_or("unknown", |r| r.version.as_str());
                format!("onnxruntime {v}")
            }
        }
    }

    /// The backend with its version and what it knows of the file, for inspect and
    /// doctor: the library behind it, an ONNX model's exported input and batch, a
    /// package's device and instruction set.
    pub fn details(&self) -> String {
        match self {
            Net::Script(_) => format!(
                "{} (libtorch {})",
                self.backend(),
                crate::libtorch::version()
            ),
            Net::Onnx(n) => {
                let (name, shape) = n.input();
                let lib = onnx::runtime().map_or(String::new(), |r| {
                    format!(", {} from {}", r.path.display(), r.origin)
                });
                let batch = match n.fixed_batch {
                    Some(b) => {
                        format!("fixed batch {b}: run in chunks of {b}, the last one padded")
                    }
                    None => "any batch size".into(),
                };
                format!("{}{lib}; input '{name}' {shape}, {batch}", self.backend())
            }
            Net::Pt2(n) => {
                let get = |k: &str| n.metadata.get(k).map(String::as_str).unwrap_or("?");
                format!(
                    "{} (libtorch {}); compiled for {} on {}, CPU instruction set {}",
                    self.backend(),
                    crate::libtorch::version(),
                    get("AOTI_DEVICE_KEY"),
                    get("AOTI_MACHINE"),
                    get("AOTI_CPU_ISA")
                )
            }
        }
    }
}

/// The error for an output that holds no logits where the spec's choice says,
/// naming where that choice came from.
pub(crate) fn output_error(path: &Path, provenance: &Provenance, e: &str) -> String {
    let chosen = [
        ("output-index", "output_index"),
        ("output-key", "output_key"),
    ]
    .iter()
    .find_map(|(k, field)| {
        provenance
            .get(*k)
            .map(|src| format!(" ({field} from {src})"))
    })
    .unwrap_or_default();
    format!("{}: {}{chosen}", path.display(), first_line(e))
}
