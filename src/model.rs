//! The TorchScript backend: loading a model through libtorch with clear errors,
//! and the forward pass. The spec it runs with (input size, mean/std, classes and
//! where each came from) is resolved by `rotbench_core::spec`, re-exported here.

pub use rotbench_core::spec::*;

use anyhow::{anyhow, bail, Context, Result};
use rotbench_core::hash::sha256_file;
use std::ffi::{c_char, c_int, CStr, CString};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
/// How to export TorchScript, for the messages about a file that is not.
const EXPORT: &str = "export it with `torch.jit.save(torch.jit.script(model.eval()), \"model.pt\")` (or torch.jit.trace)";

mod shim {
    use std::ffi::{c_char, c_int};
    #[repr(C)]
    pub struct RbModule {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn rb_load(
            path: *const c_char,
            device_kind: c_int,
            device_index: c_int,
            optimize: c_int,
            err: *mut *mut c_char,
        ) -> *mut RbModule;
        pub fn rb_info(m: *mut RbModule, what: c_int) -> *mut c_char;
        pub fn rb_forward(
            m: *mut RbModule,
            input: *const torch_sys::C_tensor,
            index: i64,
            key: *const c_char,
            err_kind: *mut c_int,
            err: *mut *mut c_char,
        ) -> *mut torch_sys::C_tensor;
        pub fn rb_free(m: *mut RbModule);
        pub fn rb_free_message(s: *mut c_char);
    }
}

/// Take ownership of a message from the shim.
pub(crate) fn shim_message(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown libtorch error".into();
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd string, freed here once.
    let s = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { shim::rb_free_message(err) };
    s
}

/// A TorchScript module owned through the C++ shim (src/shim/optimized.cpp).
struct ScriptModule {
    ptr: *mut shim::RbModule,
}

impl ScriptModule {
    fn load(
        path: &Path,
        device: Device,
        inference: Inference,
    ) -> std::result::Result<Self, String> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| "the path holds a NUL byte".to_string())?;
        let (kind, index) = match device {
            Device::Cuda(i) => (1, i as c_int),
            _ => (0, 0),
        };
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid C string; err is an out-pointer the shim sets on failure.
        let ptr = unsafe {
            shim::rb_load(
                c_path.as_ptr(),
                kind,
                index,
                (inference == Inference::Optimized) as c_int,
                &mut err,
            )
        };
        if ptr.is_null() {
            return Err(shim_message(err));
        }
        Ok(ScriptModule { ptr })
    }

    /// Forward, then the logits from its output: the output itself, element
    /// `index` of a tuple or list, or the value under `key` of a dict.
    fn forward(
        &self,
        x: &Tensor,
        index: Option<usize>,
        key: Option<&CStr>,
    ) -> std::result::Result<Tensor, ForwardError> {
        let mut err: *mut c_char = std::ptr::null_mut();
        let mut kind: c_int = 0;
        let index = index.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
        let key = key.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: self.ptr is live; x.as_ptr() is a valid torch::Tensor* for the
        // call; key is null or a NUL-terminated string that outlives the call.
        let out =
            unsafe { shim::rb_forward(self.ptr, x.as_ptr(), index, key, &mut kind, &mut err) };
        if out.is_null() {
            let message = shim_message(err);
            return Err(if kind == 2 {
                ForwardError::Output(message)
            } else {
                ForwardError::Raised(message)
            });
        }
        // SAFETY: the shim hands over a new heap torch::Tensor*, which tch now owns.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// What the shim recorded at load, before eval() and freezing: 0 the training-mode
    /// report, 1 forward's declared return type, 2 the modules whose training flag is set.
    fn info(&self, what: c_int) -> String {
        // SAFETY: self.ptr is live; the shim returns a new malloc'd string.
        shim_message(unsafe { shim::rb_info(self.ptr, what) })
    }

    /// The modules whose code runs an op in training mode, each with those ops, and
    /// the modules saved with their training flag set.
    fn training_mode(&self) -> TrainingMode {
        TrainingMode {
            ops: self
                .info(0)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(m, op)| (m.to_string(), op.to_string()))
                .collect(),
            flags: self.info(2).lines().map(str::to_string).collect(),
        }
    }

    /// The type forward declares it returns.
    fn returns(&self) -> Returns {
        let text = self.info(1);
        let mut lines = text.lines();
        let (kind, ty) = lines
            .next()
            .and_then(|l| l.split_once('\t'))
            .unwrap_or(("other", "?"));
        match kind {
            "tensor" => Returns::Tensor,
            "tuple" => Returns::Tuple(lines.map(str::to_string).collect()),
            "dict" => Returns::Dict(ty.to_string()),
            "list" => Returns::List(ty.to_string()),
            _ => Returns::Other(ty.to_string()),
        }
    }
}

/// Why forward gave no logits.
enum ForwardError {
    /// Forward itself raised (often the input shape).
    Raised(String),
    /// Forward ran, but its output holds no tensor where the spec's output choice says.
    Output(String),
}

/// The modules of a model that run in training mode, and what that does to results.
///
/// A module traced without .eval() has `training=True` baked into its graph as a
/// constant argument of dropout, batch_norm, ...: eval() cannot undo that, so such
/// ops (`ops`) are what rotbench refuses. A scripted module reads its training flag
/// when it runs instead; rotbench always sets eval mode, so flags saved on (`flags`)
/// change nothing by themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainingMode {
    /// (module name, op) pairs; the top-level module's name is empty.
    pub ops: Vec<(String, String)>,
    /// The modules saved with their training flag set.
    pub flags: Vec<String>,
}

/// A module's name in messages.
pub fn module_name(m: &str) -> &str {
    if m.is_empty() {
        "(top level)"
    } else {
        m
    }
}

impl TrainingMode {
    /// True when an op runs in training mode (results change from run to run).
    pub fn is_on(&self) -> bool {
        !self.ops.is_empty()
    }

    /// "modules bn1, drop are" / "module drop is" / "the top-level module is".
    fn modules(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (m, _) in &self.ops {
            if !names.contains(&m.as_str()) {
                names.push(m);
            }
        }
        match names.as_slice() {
            [""] => "the top-level module is".to_string(),
            [one] => format!("module {one} is"),
            _ => format!(
                "modules {} are",
                names
                    .iter()
                    .map(|m| module_name(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// What training mode does here, e.g. "BatchNorm uses batch statistics and
    /// Dropout drops at random".
    pub fn effects(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for (_, op) in &self.ops {
            let e = if op.contains("batch_norm") {
                "BatchNorm uses batch statistics".to_string()
            } else if op.contains("dropout") {
                "Dropout drops at random".to_string()
            } else if op == "rrelu" {
                "RReLU draws random slopes".to_string()
            } else {
                format!("{op} runs in training mode")
            };
            if !out.contains(&e) {
                out.push(e);
            }
        }
        match out.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Refuse to run it, saying how to fix the export.
    fn refusal(&self, path: &Path) -> String {
        format!(
            "{}: {} in training mode (traced or scripted without .eval()): {}, so results change from run to run; re-export with `torch.jit.trace(model.eval(), x)` (or `torch.jit.script(model.eval())`), or pass --allow-training-mode to run it anyway",
            path.display(),
            self.modules(),
            self.effects()
        )
    }

    /// The warning a run with --allow-training-mode carries (stderr and summary.json).
    fn warning(&self, path: &Path) -> String {
        format!(
            "{}: {} in training mode (run anyway: --allow-training-mode): {}, so these results change from run to run; the prediction cache is not used for this model",
            path.display(),
            self.modules(),
            self.effects()
        )
    }
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        // SAFETY: allocated by rb_load, freed once.
        unsafe { shim::rb_free(self.ptr) }
    }
}

/// The network behind a [`Model`]: TorchScript through the C++ shim, or an ONNX
/// model in ONNX Runtime (`crate::onnx`).
enum Net {
    Script(ScriptModule),
    Onnx(crate::onnx::OnnxNet),
    Pt2(crate::pt2::Pt2Net),
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
    if crate::onnx::looks_like_onnx(head) {
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

/// The provenance name of an ONNX model's embedded spec.
const ONNX_EMBEDDED: &str = "embedded metadata_props rotbench.json";
/// The provenance name of an AOTInductor package's embedded spec.
const PT2_EMBEDDED: &str = "embedded AOTI metadata rotbench.json";

/// A loaded model with its spec.
pub struct Model {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub spec: ModelSpec,
    pub provenance: Provenance,
    pub device: Device,
    pub inference: Inference,
    /// What forward declares it returns.
    pub returns: Returns,
    /// Ops traced in training mode (refused unless the load allowed them).
    pub training: TrainingMode,
    /// Warnings its results carry into summary.json.
    pub warnings: Vec<String>,
    net: Net,
    /// `spec.output_key` for the shim.
    output_key: Option<CString>,
    mean: Tensor,
    inv_std: Tensor,
    /// Set once the first real batch's outputs were checked against `spec.output`.
    output_checked: std::sync::atomic::AtomicBool,
}

impl Model {
    /// Load a model. One traced in training mode is refused unless
    /// `allow_training_mode`; then it runs as saved and carries a warning.
    pub fn load(
        path: &Path,
        flags: &SpecFlags,
        device: Device,
        inference: Inference,
        allow_training_mode: bool,
    ) -> Result<Model> {
        let meta = fs::metadata(path).map_err(|e| {
            anyhow!(
                "--model {}: cannot read the model file ({e}); check the path",
                path.display()
            )
        })?;
        if meta.is_dir() {
            bail!(
                "--model {}: is a folder; give the TorchScript .pt file",
                path.display()
            );
        }
        let mut head = [0u8; 4];
        let n = fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .with_context(|| format!("--model {}: cannot read the model file", path.display()))?;
        match detect_format(path, &head[..n], meta.len())? {
            Format::Onnx => return Model::load_onnx(path, flags, device, inference),
            Format::Pt2 => return Model::load_pt2(path, flags, device, inference),
            Format::TorchScript => {}
        }
        let (mut spec, mut provenance) = load_spec(path, flags)?;
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
        let training = module.training_mode();
        let mut warnings = Vec::new();
        if training.is_on() {
            if !allow_training_mode {
                bail!("{}", training.refusal(path));
            }
            warnings.push(training.warning(path));
        }
        let returns = module.returns();
        spec.choose_output(&mut provenance, &returns, path)?;
        let output_key = match &spec.output_key {
            None => None,
            Some(k) => Some(CString::new(k.as_str()).map_err(|_| {
                anyhow!("{}: output_key holds a NUL byte", provenance["output-key"])
            })?),
        };
        if !matches!(returns, Returns::Tensor | Returns::Tuple(_)) {
            // A dict's keys and a list's length are known only once it runs: check
            // the output choice on one blank image before any work.
            let (c, h, w) = (spec.channels(), spec.height(), spec.width());
            let x = Tensor::zeros([1, c as i64, h as i64, w as i64], (Kind::Float, device));
            // One that raises here fails again, with the input hint, on the first batch.
            if let Err(ForwardError::Output(e)) =
                module.forward(&x, spec.output_index, output_key.as_deref())
            {
                bail!("{}", output_error(path, &provenance, &e));
            }
        }
        Model::assemble(
            path,
            spec,
            provenance,
            device,
            inference,
            returns,
            training,
            warnings,
            Net::Script(module),
            output_key,
        )
    }

    /// Load an ONNX model: ONNX Runtime on the CPU, the spec from flags, sidecar and
    /// the model's `metadata_props`.
    fn load_onnx(
        path: &Path,
        flags: &SpecFlags,
        device: Device,
        inference: Inference,
    ) -> Result<Model> {
        if device != Device::Cpu {
            bail!(
                "--device {}: {} is an ONNX model, and rotbench runs ONNX models with ONNX Runtime's CPU provider (PyPI's onnxruntime has no CUDA provider); use --device cpu for it",
                device_name(device),
                path.display()
            );
        }
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
        let (net, embedded) = crate::onnx::OnnxNet::load(path, threads)?;
        let embedded = embedded.map(|e| (ONNX_EMBEDDED, e));
        Model::from_net(path, flags, device, inference, Net::Onnx(net), embedded)
    }

    /// Load an AOTInductor package: checked against the device and this CPU first,
    /// the spec from flags, sidecar and the package's metadata.
    fn load_pt2(
        path: &Path,
        flags: &SpecFlags,
        device: Device,
        inference: Inference,
    ) -> Result<Model> {
        let (net, embedded) = crate::pt2::Pt2Net::load(path, device)?;
        let embedded = match embedded {
            Some(text) => Some((
                PT2_EMBEDDED,
                SpecFile::parse(&text, &format!("{} ({PT2_EMBEDDED})", path.display()))?,
            )),
            None => None,
        };
        Model::from_net(path, flags, device, inference, Net::Pt2(net), embedded)
    }

    /// A model of a format other than TorchScript, from its loaded network and the
    /// spec embedded in it (with where it came from): the spec resolved from flags,
    /// sidecar and that, the input checked against it, its first output the logits.
    fn from_net(
        path: &Path,
        flags: &SpecFlags,
        device: Device,
        inference: Inference,
        net: Net,
        embedded: Option<(&str, SpecFile)>,
    ) -> Result<Model> {
        let (mut spec, mut provenance) =
            load_spec_with(path, flags, embedded.as_ref().map(|(from, e)| (*from, e)))?;
        if let Net::Onnx(n) = &net {
            let from = provenance.get("input-size").cloned().unwrap_or_default();
            n.check_input(path, spec.input, &from)?;
        }
        let returns = Returns::Tensor;
        spec.choose_output(&mut provenance, &returns, path)?;
        Model::assemble(
            path,
            spec,
            provenance,
            device,
            inference,
            returns,
            TrainingMode::default(),
            Vec::new(),
            net,
            None,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        path: &Path,
        spec: ModelSpec,
        provenance: Provenance,
        device: Device,
        inference: Inference,
        returns: Returns,
        training: TrainingMode,
        warnings: Vec<String>,
        net: Net,
        output_key: Option<CString>,
    ) -> Result<Model> {
        let c = spec.channels() as i64;
        let mean = Tensor::from_slice(&spec.mean)
            .view([1, c, 1, 1])
            .to_device(device);
        let inv_std = Tensor::from_slice(&spec.std.iter().map(|s| 1.0 / s).collect::<Vec<f32>>())
            .view([1, c, 1, 1])
            .to_device(device);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let mut model = Model {
            name,
            path: path.to_path_buf(),
            sha256: sha256_file(path)?,
            spec,
            provenance,
            device,
            inference,
            returns,
            training,
            warnings,
            net,
            output_key,
            mean,
            inv_std,
            output_checked: std::sync::atomic::AtomicBool::new(false),
        };
        let scale = model.spec.scale_warnings(&model.provenance);
        model.warnings.extend(scale);
        model.decide_output()?;
        Ok(model)
    }

    /// Decide what the outputs hold, or check what the spec declares, on a probe
    /// batch of four synthetic images (black, white, mid-grey and a pattern): a
    /// softmax's rows are non-negative and sum to 1 whatever the input, a
    /// log-softmax's have a log-sum-exp of 0, and logits' rows are neither. The
    /// decision goes into the spec and the provenance (`output`), before any
    /// cache key is made; [`Model::forward_raw`] checks it again on the first
    /// real batch.
    fn decide_output(&mut self) -> Result<()> {
        let (c, h, w) = (
            self.spec.channels() as i64,
            self.spec.height() as i64,
            self.spec.width() as i64,
        );
        let plane = (c * h * w) as usize;
        let mut px = vec![0f32; 4 * plane];
        for (i, v) in px.iter_mut().enumerate() {
            let (img, at) = (i / plane, i % plane);
            *v = match img {
                0 => 0.0,
                1 => 255.0,
                2 => 128.0,
                _ => ((at * 37 + at / w as usize * 11) % 256) as f32,
            };
        }
        let raw = Tensor::from_slice(&px).view([4, c, h, w]);
        let out = self.forward_outputs(&raw)?;
        let values = Vec::<f32>::try_from(&out)
            .map_err(|e| anyhow!("{}: cannot read the outputs: {e}", self.path.display()))?;
        let seen = OutputKind::of_rows(&values, self.spec.output_width());
        match self.provenance.get("output").cloned() {
            Some(from) => {
                if !self.spec.output.admits(seen) {
                    bail!("{}", output_kind_error(&self.path, self.spec.output, seen, &from, "a probe batch of four synthetic images"));
                }
            }
            None => {
                self.spec.output = seen;
                let how = match seen {
                    OutputKind::Logits => "decided from the outputs: logits (a probe batch's rows are neither probabilities nor log-probabilities)".to_string(),
                    kind => format!(
                        "decided from the outputs: {} (every row of a probe batch {}; declare `output` in the spec or pass --output-kind to say so)",
                        kind.name(),
                        seen_rows(kind)
                    ),
                };
                self.provenance.insert("output".into(), how);
            }
        }
        Ok(())
    }

    /// The note a sweep prints when the output kind was decided, not declared.
    pub fn output_note(&self) -> Option<String> {
        let how = self.provenance.get("output")?;
        (how.starts_with("decided") && !self.spec.output.is_logits()).then(|| {
            format!(
                "{}: the model outputs {}: every row of a probe batch {}, so rotbench scores them as such (no second softmax); declare `\"output\": \"{}\"` in the spec or pass --output-kind {} to say so",
                self.path.display(),
                self.spec.output.name().replace('_', "-"),
                seen_rows(self.spec.output),
                self.spec.output.name(),
                self.spec.output.name().replace('_', "-"),
            )
        })
    }

    /// The backend that runs it, as summary.json and the cache keys record it:
    /// `torchscript`, or `onnxruntime X.Y.Z` (the version of the library loaded).
    pub fn backend(&self) -> String {
        match self.net {
            Net::Script(_) => crate::BACKEND.to_string(),
            Net::Pt2(_) => "aotinductor".to_string(),
            Net::Onnx(_) => {
                // As the loaded library reports it (OrtGetApiBase's GetVersionString),
                // not as its file is named.
                let v = crate::onnx::runtime().map_or("unknown", |r| r.version.as_str());
                format!("onnxruntime {v}")
            }
        }
    }

    /// The backend with its version and what it knows of the file, for inspect and
    /// doctor: the library behind it, an ONNX model's exported input and batch, a
    /// package's device and instruction set.
    pub fn backend_details(&self) -> String {
        match &self.net {
            Net::Script(_) => format!("{} (libtorch {})", self.backend(), crate::libtorch::version()),
            Net::Onnx(n) => {
                let (name, shape) = n.input();
                let lib = crate::onnx::runtime().map_or(String::new(), |r| {
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

    /// Run the model on a batch of raw pixels (0..255 scale, NCHW on any device):
    /// scale to [0, 1], normalise, forward. Returns logits on the CPU, flattened
    /// row by row (N × the output width): a model that outputs probabilities has
    /// them turned into their logarithms (clamped at the smallest normal float,
    /// so a probability of 0 stays finite), whose softmax gives them back. The
    /// first batch's outputs are checked against the output kind.
    pub fn forward_raw(&self, raw: &Tensor) -> Result<Tensor> {
        let out = self.forward_outputs(raw)?;
        if !self
            .output_checked
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let values = Vec::<f32>::try_from(&out).map_err(|e| {
                anyhow!("{}: cannot read the outputs: {e}", self.path.display())
            })?;
            let seen = OutputKind::of_rows(&values, self.spec.output_width());
            if !self.spec.output.admits(seen) {
                let from = self.provenance.get("output").cloned().unwrap_or_default();
                bail!(
                    "{}",
                    output_kind_error(&self.path, self.spec.output, seen, &from, "the first batch")
                );
            }
        }
        Ok(match self.spec.output {
            OutputKind::Probabilities => out.clamp_min(f32::MIN_POSITIVE as f64).log(),
            OutputKind::Logits | OutputKind::LogProbabilities => out,
        })
    }

    /// The forward pass: the model's outputs as they are, flat, on the CPU.
    fn forward_outputs(&self, raw: &Tensor) -> Result<Tensor> {
        let pre = &self.spec.preprocess;
        let x = raw.to_device(self.device);
        // One new tensor (the input may be shared by several models), then in place:
        // the same operations in the same order as `(x / 255 - mean) * inv_std`,
        // without two more batch-sized allocations.
        let mut x = if pre.value_range == 1.0 {
            let mut x = x * (1.0 / 255.0);
            let _ = x.g_sub_(&self.mean);
            x
        } else {
            x - &self.mean
        };
        let _ = x.g_mul_(&self.inv_std);
        // mean/std are given in RGB order; a BGR model gets the normalised channels reversed.
        if pre.channel_order == ChannelOrder::Bgr {
            x = x.flip([1]);
        }
        let shape = x.size();
        let key = self.output_key.as_deref();
        let out = match &self.net {
            Net::Script(m) => m.forward(&x, self.spec.output_index, key),
            Net::Onnx(n) => n.forward(&x).map_err(ForwardError::Raised),
            Net::Pt2(n) => n.forward(&x).map_err(ForwardError::Raised),
        };
        let out = match out {
            Ok(out) => out,
            Err(ForwardError::Raised(e)) => bail!(
                "{}: the model failed in forward on an input of shape {:?} (float32, NCHW): {}; check `input` in the spec (--input-size)",
                self.path.display(),
                shape,
                first_line(&e)
            ),
            Err(ForwardError::Output(e)) => {
                bail!("{}", output_error(&self.path, &self.provenance, &e))
            }
        };
        let size = out.size();
        if size.len() != 2 || size[0] != shape[0] {
            bail!(
                "{}: the model returned shape {:?} for an input of shape {:?}; rotbench needs logits of shape [N, classes]",
                self.path.display(),
                size,
                shape
            );
        }
        if size[1] as usize != self.spec.output_width() {
            bail!(
                "{}: the model outputs {} values per image but the spec lists {} classes ({}); fix `classes` in the sidecar or --classes",
                self.path.display(),
                size[1],
                self.spec.output_width(),
                self.provenance.get("classes").map(String::as_str).unwrap_or("spec")
            );
        }
        out.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .f_view([-1])
            .map_err(|e| anyhow!("{}: cannot read the logits: {e}", self.path.display()))
    }
}

/// How rows of `kind` look, for notes and errors.
fn seen_rows(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Probabilities => "is non-negative and sums to 1",
        OutputKind::LogProbabilities => "is at most 0 with a log-sum-exp of 0",
        OutputKind::Logits => "is neither non-negative summing to 1 nor log-probabilities",
    }
}

/// The error for a declared output kind that the outputs contradict.
fn output_kind_error(
    path: &Path,
    declared: OutputKind,
    seen: OutputKind,
    from: &str,
    batch: &str,
) -> String {
    let tol = rotbench_core::spec::OUTPUT_SUM_TOLERANCE;
    let (what, fix) = match (declared, seen) {
        (OutputKind::Logits, OutputKind::Probabilities) => (
            format!("every row of {batch} is non-negative and sums to 1 (within {tol}): the model ends in a softmax, and a second softmax would squash every probability-based figure"),
            "declare `\"output\": \"probabilities\"` (or pass --output-kind probabilities)".to_string(),
        ),
        (OutputKind::Probabilities, _) => (
            format!("the rows of {batch} are not probabilities (some value is negative or not finite, or a row does not sum to 1 within {tol})"),
            "declare `\"output\": \"logits\"` (or pass --output-kind logits), or fix the export".to_string(),
        ),
        (OutputKind::LogProbabilities, _) => (
            format!("the rows of {batch} are not log-probabilities (some value is above 0, or a row's log-sum-exp is not 0 within {tol})"),
            "declare `\"output\": \"logits\"` (or pass --output-kind logits), or fix the export".to_string(),
        ),
        _ => (format!("the outputs of {batch} disagree with it"), "check the spec".to_string()),
    };
    format!(
        "{}: the spec says the model outputs {} ({from}), but {what}; {fix}",
        path.display(),
        declared.name()
    )
}

/// The error for an output that holds no logits where the spec's choice says,
/// naming where that choice came from.
fn output_error(path: &Path, provenance: &Provenance, e: &str) -> String {
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

pub(crate) fn first_line(s: &str) -> String {
    // libtorch errors carry C++ backtraces after the first lines; keep the message.
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let keep: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.contains("Exception raised from") && !l.starts_with("frame #"))
        .take(6)
        .copied()
        .collect();
    keep.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parse `--device cpu|cuda|cuda:N|auto`. Anything but `cpu` first opens
/// `libtorch_cuda.so` when it sits beside the libtorch in use (see [`crate::libtorch`]).
pub fn parse_device(s: &str) -> Result<Device> {
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let flag = format!("--device {s}");
    match s {
        "auto" => {
            crate::libtorch::load_cuda();
            Ok(Device::cuda_if_available())
        }
        "cuda" | "gpu" => match crate::libtorch::cuda_unavailable(&flag) {
            None => Ok(Device::Cuda(0)),
            Some(why) => bail!("{why}"),
        },
        s if s.starts_with("cuda:") => {
            let i: usize = s[5..]
                .parse()
                .map_err(|_| anyhow!("{flag}: expected cuda:N with N a GPU index"))?;
            if let Some(why) = crate::libtorch::cuda_unavailable(&flag) {
                bail!("{why}");
            }
            if (i as i64) < tch::Cuda::device_count() {
                Ok(Device::Cuda(i))
            } else {
                bail!(
                    "{flag}: libtorch sees {} CUDA device(s), numbered from 0",
                    tch::Cuda::device_count()
                )
            }
        }
        _ => bail!("{flag}: use cpu, cuda, cuda:N or auto"),
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl Model {
    /// Its identity as results record it.
    pub fn id(&self) -> rotbench_core::results::ModelId {
        rotbench_core::results::ModelId {
            name: self.name.clone(),
            path: self.path.display().to_string(),
            sha256: self.sha256.clone(),
            spec: self.spec.clone(),
            spec_sources: self.provenance.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

impl crate::classifier::Classifier for Model {
    fn path(&self) -> &Path {
        &self.path
    }
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    fn device(&self) -> Device {
        self.device
    }
    fn forward_raw(&self, raw: &Tensor) -> Result<Tensor> {
        Model::forward_raw(self, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_lose_their_backtrace() {
        let e = "shape mismatch\nException raised from foo at bar.cpp:1\nframe #0: x";
        assert_eq!(first_line(e), "shape mismatch");
    }
}
