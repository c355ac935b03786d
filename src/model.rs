//! A model: its file opened by one of the backends ([`crate::backend`]), the spec
//! it runs with and where each field came from, what its outputs hold, and its
//! forward pass on raw pixels (scaling, normalisation, channel order and the
//! conversion of probabilities back to logits). It is the engine's
//! [`Classifier`](crate::classifier::Classifier).

use crate::backend::{output_error, ForwardError, Net, Opened, TrainingMode};
use crate::classifier::Normalisation;
use crate::ffi::first_line;
use anyhow::{anyhow, bail, Result};
use rotbench_core::hash::sha256_file;
use rotbench_core::spec::{
    model_spec, ChannelOrder, Inference, ModelSpec, OutputKind, Provenance, Returns, SpecFlags,
};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

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
    normalisation: Normalisation,
    /// `normalisation`'s mean and 1/std as tensors on `device`.
    normalisation_tensors: (Tensor, Tensor),
    /// Set once the first real batch's outputs were checked against `spec.output`.
    output_checked: std::sync::atomic::AtomicBool,
}

impl Model {
    /// Load a model of any format: open its network, resolve its spec in one call
    /// (flags over the sidecar over the spec its file embeds, the output choice
    /// checked against what forward returns), check the spec against the network,
    /// then decide what its outputs hold. One traced in training mode is refused
    /// unless `allow_training_mode`; then it runs as saved and carries a warning.
    pub fn load(
        path: &Path,
        flags: &SpecFlags,
        device: Device,
        inference: Inference,
        allow_training_mode: bool,
    ) -> Result<Model> {
        let opened = Net::open(path, device, inference)?;
        let embedded = opened.embedded.as_ref().map(|(from, e)| (*from, e));
        let (spec, provenance) = if flags.index_labels
            && !rotbench_core::spec::declares_classes(path, flags, embedded)?
        {
            default_classes(path, flags, embedded, &opened, device)?
        } else {
            model_spec(path, flags, embedded, &opened.returns)?
        };
        let output_key = output_key(&spec, &provenance)?;
        opened.net.check(
            path,
            &spec,
            &provenance,
            &opened.returns,
            output_key.as_deref(),
            device,
        )?;
        let mut warnings = Vec::new();
        if opened.training.is_on() {
            if !allow_training_mode {
                bail!("{}", opened.training.refusal(path));
            }
            warnings.push(opened.training.warning(path));
        }
        Model::assemble(
            path, spec, provenance, device, inference, opened, warnings, output_key,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        path: &Path,
        spec: ModelSpec,
        provenance: Provenance,
        device: Device,
        inference: Inference,
        opened: Opened,
        warnings: Vec<String>,
        output_key: Option<CString>,
    ) -> Result<Model> {
        let Opened {
            net,
            returns,
            training,
            ..
        } = opened;
        let normalisation = Normalisation::of_spec(&spec);
        let normalisation_tensors = normalisation.tensors(device);
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
            normalisation,
            normalisation_tensors,
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
        let out = self.forward_outputs(self.normalised(&raw))?;
        let values = Vec::<f32>::try_from(&out)
            .map_err(|e| anyhow!("{}: cannot read the outputs: {e}", self.path.display()))?;
        let seen = OutputKind::of_rows(&values, self.spec.output_width());
        match self.provenance.get("output").cloned() {
            Some(from) => {
                if !self.spec.output.admits(seen) {
                    bail!(
                        "{}",
                        output_kind_error(
                            &self.path,
                            self.spec.output,
                            seen,
                            &from,
                            "a probe batch of four synthetic images"
                        )
                    );
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

    /// The backend that runs it, as summary.json and the cache keys record it.
    pub fn backend(&self) -> String {
        self.net.backend()
    }

    /// Whether its forward pass runs outside libtorch ([`Net::runs_outside_libtorch`]).
    pub fn runs_outside_libtorch(&self) -> bool {
        self.net.runs_outside_libtorch()
    }

    /// The backend with its version and what it knows of the file (inspect, doctor).
    pub fn backend_details(&self) -> String {
        self.net.details()
    }

    /// Run the model on a batch of raw pixels (0..255 scale, NCHW on any device):
    /// scale to [0, 1], normalise, forward. Returns logits on the CPU, flattened
    /// row by row (N × the output width): a model that outputs probabilities has
    /// them turned into their logarithms (clamped at the smallest normal float,
    /// so a probability of 0 stays finite), whose softmax gives them back. The
    /// first batch's outputs are checked against the output kind.
    pub fn forward_raw(&self, raw: &Tensor) -> Result<Tensor> {
        self.logits_of(self.normalised(raw))
    }

    /// Raw pixels (any device) scaled and normalised on the model's device.
    fn normalised(&self, raw: &Tensor) -> Tensor {
        let x = raw.to_device(self.device);
        self.normalisation
            .apply_tensor(&x, &self.normalisation_tensors)
    }

    /// [`Model::forward_raw`] for a batch already scaled and normalised
    /// ([`Normalisation::apply`]).
    pub fn forward_normalised(&self, x: &Tensor) -> Result<Tensor> {
        self.logits_of(x.to_device(self.device))
    }

    /// The logits of a normalised batch on the model's device (see [`Model::forward_raw`]).
    fn logits_of(&self, x: Tensor) -> Result<Tensor> {
        let out = self.forward_outputs(x)?;
        if !self
            .output_checked
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let values = Vec::<f32>::try_from(&out)
                .map_err(|e| anyhow!("{}: cannot read the outputs: {e}", self.path.display()))?;
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

    /// The forward pass of a normalised batch on the model's device: the model's
    /// outputs as they are, flat, on the CPU.
    fn forward_outputs(&self, mut x: Tensor) -> Result<Tensor> {
        let pre = &self.spec.preprocess;
        // mean/std are given in RGB order; a BGR model gets the normalised channels reversed.
        if pre.channel_order == ChannelOrder::Bgr {
            x = x.flip([1]);
        }
        let shape = x.size();
        let key = self.output_key.as_deref();
        let out = self.net.forward(&x, self.spec.output_index, key);
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
    fn forward_normalised(&self, x: &Tensor) -> Result<Tensor> {
        Model::forward_normalised(self, x)
    }
    /// On the CPU: the engine then normalises each image as it rotates it, while
    /// it is in the cache, instead of libtorch making a new batch for it.
    fn host_normalisation(&self) -> Option<Normalisation> {
        (self.device == Device::Cpu).then(|| self.normalisation.clone())
    }
    /// TorchScript on the CPU: a batch's slices run on several threads, each
    /// with one libtorch thread, instead of one batch on libtorch's OpenMP
    /// threads. OpenMP's workers meet at a barrier after every parallel region,
    /// dozens per forward pass; on a machine whose cores other processes share,
    /// a descheduled worker stalls each of them. Split, the threads meet once per
    /// batch (docs/performance.md, "A busy machine", has the measurements).
    ///
    /// Concurrent calls are sound: `torch::jit::Module::forward` is safe to call
    /// from several threads, the normalisation tensors are only read (libtorch
    /// counts references atomically), and the output check is an atomic flag.
    /// ONNX Runtime and AOTInductor run their own threads: never split.
    fn splits_batches(&self) -> bool {
        matches!(self.net, Net::Script(_)) && self.device == Device::Cpu
    }
}

/// The spec's `output_key` as the C string forward takes.
fn output_key(spec: &ModelSpec, prov: &Provenance) -> Result<Option<CString>> {
    spec.output_key
        .as_deref()
        .map(|k| {
            CString::new(k)
                .map_err(|_| anyhow!("{}: output_key holds a NUL byte", prov["output-key"]))
        })
        .transpose()
}

/// A model that names no classes, on data whose labels are class indices: the
/// spec with classes `0..C-1`, C the width of its output on one blank input
/// (run with every other field of the spec resolved), the default recorded as
/// the classes' source.
fn default_classes(
    path: &Path,
    flags: &SpecFlags,
    embedded: Option<(&str, &rotbench_core::spec::SpecFile)>,
    opened: &crate::backend::Opened,
    device: Device,
) -> Result<(ModelSpec, Provenance)> {
    let mut probe = flags.clone();
    probe.classes = Some(("(probe)".into(), vec!["0".into()]));
    let (spec, prov) = model_spec(path, &probe, embedded, &opened.returns)?;
    let (c, h, w) = (
        spec.channels() as i64,
        spec.height() as i64,
        spec.width() as i64,
    );
    let x = Tensor::zeros([1, c, h, w], (Kind::Float, device));
    let key = output_key(&spec, &prov)?;
    let out = opened
        .net
        .forward(&x, spec.output_index, key.as_deref())
        .map_err(|_| {
            anyhow!(
                "{}: the model names no classes and failed on a blank input; give --classes FILE or `classes` in the spec",
                path.display()
            )
        })?;
    let width = match out.size().as_slice() {
        [1, n] if *n > 0 => *n as usize,
        shape => bail!(
            "{}: the model returned shape {shape:?} for one image; rotbench needs logits of shape [N, classes]",
            path.display()
        ),
    };
    let mut named = flags.clone();
    named.classes = Some((
        "(default)".into(),
        (0..width).map(|i| i.to_string()).collect(),
    ));
    let (spec, mut prov) = model_spec(path, &named, embedded, &opened.returns)?;
    prov.insert(
        "classes".into(),
        rotbench_core::spec::default_classes_source(width),
    );
    Ok((spec, prov))
}
