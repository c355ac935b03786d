//! A model's spec: input size, channels, mean/std, classes and preprocessing, and
//! where each field came from. No backend here: the engine's backends load models
//! and run them; this module only reads and resolves what they expect.
//!
//! Spec precedence: command-line flags, then the sidecar `MODEL.json` next to
//! `MODEL.pt`, then `extra/rotbench.json` embedded in the model's zip.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The schema users see in errors about a malformed sidecar.
pub const SIDECAR_SCHEMA: &str = r#"{"input": [C, H, W], "mean": [m, ...], "std": [s, ...], "classes": ["name", ...]} (optional: "resize": N or [H, W], "order": "rotate-then-crop"|"crop-then-rotate", "channel_order": "rgb"|"bgr", "value_range": 1|255, "output_index": N or "output_key": "name", "output": "logits"|"probabilities"|"log_probabilities", "class_subset": ["name or index", ...], "grayscale": "pil"|"rec709", "desaturate": true|false)"#;

/// What the model expects. `mean`/`std` have one value per channel and apply to
/// pixels on the `value_range` scale: `x = (pixel * value_range/255 - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub input: [usize; 3],
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub classes: Vec<String>,
    #[serde(default)]
    pub preprocess: Preprocess,
    /// Where the logits are when forward does not return a tensor: element
    /// `output_index` of the tuple (or list) it returns, or the value under
    /// `output_key` of the dict. At most one is set; neither for a model that
    /// returns a tensor, whose spec JSON then has neither field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// What the chosen output holds: logits (the default, absent from the JSON so
    /// that a logits model's spec keeps its bytes), probabilities (a softmax at
    /// the end) or log-probabilities (a log-softmax). Declared in the spec, or
    /// decided from the outputs when it is not ([`OutputKind::of_rows`]).
    #[serde(default, skip_serializing_if = "OutputKind::is_logits")]
    pub output: OutputKind,
    /// The model's own output classes, when `classes` are a subset of them
    /// (`class_subset`) or coarse classes made of them (`class_map`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_classes: Option<Vec<String>>,
    /// `--class-subset`: for each of `classes`, its index among `model_classes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_subset: Option<Vec<usize>>,
    /// `--class-map`: for each of `classes` (a coarse class), the indices among
    /// `model_classes` it aggregates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_map: Option<Vec<Vec<usize>>>,
    /// `--class-map-rule`: how a coarse class's probability comes from its members'.
    #[serde(default, skip_serializing_if = "GroupRule::is_sum")]
    pub class_map_rule: GroupRule,
}

/// What a model's output rows hold. rotbench scores with a softmax over logits;
/// probabilities are turned back into logits (their logarithms) first, and
/// log-probabilities are logits already (a softmax gives the probabilities back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    #[default]
    Logits,
    Probabilities,
    #[cfg_attr(feature = "clap", value(alias = "log_probabilities"))]
    LogProbabilities,
}

/// How far a probability row's sum may stray from 1, and a log-probability
/// row's log-sum-exp from 0, and still count as one (float32 softmax over 1,000
/// classes strays by about 1e-5).
pub const OUTPUT_SUM_TOLERANCE: f64 = 1e-3;

impl OutputKind {
    pub fn is_logits(&self) -> bool {
        *self == OutputKind::Logits
    }

    /// The spec's spelling: `logits`, `probabilities`, `log_probabilities`.
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Logits => "logits",
            OutputKind::Probabilities => "probabilities",
            OutputKind::LogProbabilities => "log_probabilities",
        }
    }

    /// What every row of a batch of outputs (`width` values per row) looks like:
    /// probabilities when every value is finite and non-negative and every row
    /// sums to 1; log-probabilities when every value is at most 0 and every row's
    /// log-sum-exp is 0 (both within [`OUTPUT_SUM_TOLERANCE`]); logits otherwise.
    /// A row of one value is never taken for either (there is nothing to tell).
    pub fn of_rows(values: &[f32], width: usize) -> OutputKind {
        if width < 2 || values.is_empty() || values.len() % width != 0 {
            return OutputKind::Logits;
        }
        let rows = || values.chunks_exact(width);
        let probabilities = rows().all(|r| {
            r.iter().all(|v| v.is_finite() && *v >= 0.0)
                && (r.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() <= OUTPUT_SUM_TOLERANCE
        });
        if probabilities {
            return OutputKind::Probabilities;
        }
        let log_probabilities = rows().all(|r| {
            r.iter().all(|v| v.is_finite() && *v <= 0.0) && {
                let m = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let lse = m + r.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
                lse.abs() <= OUTPUT_SUM_TOLERANCE
            }
        });
        if log_probabilities {
            OutputKind::LogProbabilities
        } else {
            OutputKind::Logits
        }
    }

    /// Whether outputs that look like `seen` ([`OutputKind::of_rows`]) can be
    /// of this kind. Log-probabilities are valid logits (a softmax gives the
    /// probabilities back), so logits accept them; nothing else is accepted.
    pub fn admits(self, seen: OutputKind) -> bool {
        self == seen || (self == OutputKind::Logits && seen == OutputKind::LogProbabilities)
    }
}

impl std::str::FromStr for OutputKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "logits" => Ok(OutputKind::Logits),
            "probabilities" => Ok(OutputKind::Probabilities),
            "log_probabilities" | "log-probabilities" => Ok(OutputKind::LogProbabilities),
            _ => Err(format!(
                "`{s}` is not an output kind; use logits, probabilities or log_probabilities"
            )),
        }
    }
}

/// How the model's outputs become scores over `classes` (see [`ModelSpec::class_space`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassSpace {
    /// The model's classes as they are.
    Identity,
    /// Only these logits, in this order, before the softmax and the argmax (the
    /// ImageNet-R/A evaluation's `output[:, indices]`).
    Subset(Vec<usize>),
    /// Coarse classes: each one's probability is the sum of its model classes'
    /// softmax probabilities, renormalised over the classes in any group (a model
    /// class in no group is dropped).
    Groups(Vec<Vec<usize>>, GroupRule),
}

/// How an image becomes the model's input (besides mean/std), in this order:
/// decode, convert to the model's channels, resize, then centre-crop to the input
/// size and rotate in the order `order` says, scale by `value_range`, reorder
/// channels, normalise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// `None`: resize straight to the input size when an image differs from it.
    pub resize: Option<Resize>,
    pub order: CropOrder,
    pub channel_order: ChannelOrder,
    /// Pixels are divided by 255 when this is 1 ([0,1] scale), left as is when 255.
    pub value_range: f32,
    /// How colour becomes grey (for a one-channel model, and with `desaturate`).
    #[serde(default, skip_serializing_if = "Grayscale::is_pil")]
    pub grayscale: Grayscale,
    /// Make every image grey and give the model that grey in each of its channels
    /// (model-vs-human's stimuli).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub desaturate: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            resize: None,
            order: CropOrder::RotateThenCrop,
            channel_order: ChannelOrder::Rgb,
            value_range: 1.0,
            grayscale: Grayscale::Pil,
            desaturate: false,
        }
    }
}

/// The formula that turns an RGB pixel grey.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Grayscale {
    /// PIL's `convert("L")`: ITU-R 601-2 luma (0.299, 0.587, 0.114), rounded.
    #[default]
    Pil,
    /// scikit-image's `rgb2gray` (0.2125, 0.7154, 0.0721) on [0, 1] values, then x 255
    /// truncated to 8 bits, as model-vs-human's stimuli were saved.
    Rec709,
}

impl Grayscale {
    pub fn is_pil(&self) -> bool {
        *self == Grayscale::Pil
    }
    pub fn name(self) -> &'static str {
        match self {
            Grayscale::Pil => "pil",
            Grayscale::Rec709 => "rec709",
        }
    }
}

impl std::str::FromStr for Grayscale {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pil" => Ok(Grayscale::Pil),
            "rec709" => Ok(Grayscale::Rec709),
            _ => Err(format!("`{s}` is not a grey conversion; use pil or rec709")),
        }
    }
}

/// How a coarse class's probability comes from its model classes' (`--class-map`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum GroupRule {
    /// The sum (the probability of the group as an event).
    #[default]
    Sum,
    /// The mean (model-vs-human's 16-class decision: groups of different sizes weigh alike).
    Mean,
    /// The largest member's probability.
    Max,
}

impl GroupRule {
    pub fn is_sum(&self) -> bool {
        *self == GroupRule::Sum
    }
    pub fn name(self) -> &'static str {
        match self {
            GroupRule::Sum => "sum",
            GroupRule::Mean => "mean",
            GroupRule::Max => "max",
        }
    }
}

/// `256` resizes the shorter side to 256 (aspect kept, torchvision's `Resize(256)`);
/// `[H, W]` resizes to exactly that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resize {
    Shorter(usize),
    Exact([usize; 2]),
}

impl std::str::FromStr for Resize {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}` is not a resize; give N (shorter side) or HxW (exact)");
        match s.split_once(['x', 'X']) {
            Some((h, w)) => Ok(Resize::Exact([
                h.trim().parse().map_err(|_| bad())?,
                w.trim().parse().map_err(|_| bad())?,
            ])),
            None => Ok(Resize::Shorter(s.trim().parse().map_err(|_| bad())?)),
        }
    }
}

/// Rotate the resized image and then centre-crop (the default: the crop's corners
/// come from real image content at moderate angles, not from the fill), or crop
/// first and rotate the crop (what rotating the model's input tensor does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum CropOrder {
    RotateThenCrop,
    CropThenRotate,
}

impl std::str::FromStr for CropOrder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "rotate-then-crop" => Ok(CropOrder::RotateThenCrop),
            "crop-then-rotate" => Ok(CropOrder::CropThenRotate),
            _ => Err(format!(
                "`{s}` is not an order; use rotate-then-crop or crop-then-rotate"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[cfg_attr(feature = "clap", value(alias = "RGB"))]
    Rgb,
    #[cfg_attr(feature = "clap", value(alias = "BGR"))]
    Bgr,
}

impl std::str::FromStr for ChannelOrder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "rgb" | "RGB" => Ok(ChannelOrder::Rgb),
            "bgr" | "BGR" => Ok(ChannelOrder::Bgr),
            _ => Err(format!("`{s}` is not a channel order; use rgb or bgr")),
        }
    }
}

impl ModelSpec {
    pub fn channels(&self) -> usize {
        self.input[0]
    }
    pub fn height(&self) -> usize {
        self.input[1]
    }
    pub fn width(&self) -> usize {
        self.input[2]
    }
    /// The classes scored: the model's, or those of its subset or coarse map.
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// How many values per image the model outputs.
    pub fn output_width(&self) -> usize {
        self.model_classes
            .as_ref()
            .map_or(self.classes.len(), |c| c.len())
    }

    /// Warnings for a mean or std that the pixel scale cannot hold: pixels on the
    /// `value_range` scale lie in [0, value_range], so a mean outside that range,
    /// or a std above it, normalises every image into a sliver (`--mean 72.93
    /// --std 90` for a [0, 1] pipeline predicts one class for everything).
    /// `prov` names where mean, std and value_range came from.
    pub fn scale_warnings(&self, prov: &Provenance) -> Vec<String> {
        let v = self.preprocess.value_range;
        let odd_mean = self.mean.iter().any(|&m| !(0.0..=v).contains(&m));
        let odd_std = self.std.iter().any(|&s| s > v);
        if !odd_mean && !odd_std {
            return Vec::new();
        }
        let what = match (odd_mean, odd_std) {
            (true, true) => format!("mean {:?} and std {:?} lie", self.mean, self.std),
            (true, false) => format!("mean {:?} lies", self.mean),
            _ => format!("std {:?} lies", self.std),
        };
        let hint = if v == 1.0 && self.mean.iter().chain(&self.std).any(|&x| x > 1.0) {
            "; they look like values for 0-255 pixels: divide them by 255, or pass --value-range 255 if the model takes 0-255 pixels"
        } else {
            "; check them against the model's training pipeline"
        };
        let from = |k: &str| prov.get(k).map_or("?", String::as_str).to_string();
        vec![format!(
            "{what} outside the [0, {v}] scale of the pixels they apply to (value_range {v}, from {}; mean from {}, std from {}){hint}",
            from("value-range"),
            from("mean"),
            from("std")
        )]
    }

    /// How the model's outputs become scores over `classes`.
    pub fn class_space(&self) -> ClassSpace {
        match (&self.class_subset, &self.class_map) {
            (Some(s), _) => ClassSpace::Subset(s.clone()),
            (None, Some(g)) => ClassSpace::Groups(g.clone(), self.class_map_rule),
            (None, None) => ClassSpace::Identity,
        }
    }

    /// Check the output choice against the type forward declares, before any work:
    /// a tuple (or list) without a choice takes element 0, recorded here and in
    /// `prov` as the default; a choice that cannot apply is refused with the cause.
    /// A dict's keys and a list's length are not part of its type: the caller checks
    /// those choices (and a dict without `output_key`) by running it once.
    pub fn choose_output(
        &mut self,
        prov: &mut Provenance,
        returns: &Returns,
        model: &Path,
    ) -> Result<()> {
        let model = model.display();
        let from = |key: &str| prov.get(key).cloned().unwrap_or_default();
        let pick_index =
            "pick the logits with --output-index N (or \"output_index\" in the sidecar)";
        let pick_key = "pick the logits with --output-key NAME (or \"output_key\" in the sidecar)";
        match (returns, self.output_index, &self.output_key) {
            (Returns::Tensor, Some(i), _) => bail!(
                "{}: output_index {i} picks an element of a tuple, but forward in {model} returns a single tensor; remove it",
                from("output-index")
            ),
            (Returns::Tensor, _, Some(k)) => bail!(
                "{}: output_key `{k}` picks a value of a dict, but forward in {model} returns a single tensor; remove it",
                from("output-key")
            ),
            (Returns::Tuple(types), _, Some(k)) => bail!(
                "{}: output_key `{k}` picks a value of a dict, but forward in {model} returns a tuple ({}); {pick_index}",
                from("output-key"),
                types.join(", ")
            ),
            (Returns::Tuple(types), index, None) => {
                let i = index.unwrap_or(0);
                let elements = types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("{i}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if i >= types.len() {
                    bail!(
                        "{}: output_index {i} is out of range: forward in {model} returns a tuple of {} elements ({elements}); give 0 to {}",
                        from("output-index"),
                        types.len(),
                        types.len().saturating_sub(1)
                    );
                }
                if types[i] != "Tensor" {
                    let which = if index.is_some() {
                        format!("element {i}")
                    } else {
                        format!("element {i} (the default)")
                    };
                    bail!(
                        "{model}: forward returns a tuple ({elements}) and {which} is {}, not a tensor of logits; {pick_index}",
                        types[i]
                    );
                }
                if index.is_none() {
                    self.output_index = Some(0);
                    prov.insert("output-index".into(), "default (forward returns a tuple; element 0)".into());
                }
            }
            (Returns::List(_), None, None) => {
                self.output_index = Some(0);
                prov.insert("output-index".into(), "default (forward returns a list; element 0)".into());
            }
            (Returns::List(t), _, Some(k)) => bail!(
                "{}: output_key `{k}` picks a value of a dict, but forward in {model} returns a {t}; {pick_index}",
                from("output-key")
            ),
            (Returns::Dict(t), Some(i), _) => bail!(
                "{}: output_index {i} picks an element of a tuple, but forward in {model} returns a {t}; {pick_key}",
                from("output-index")
            ),
            _ => {}
        }
        Ok(())
    }
}

/// A spec as written in a sidecar or embedded file: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub input: Option<Vec<usize>>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub classes: Option<Vec<String>>,
    pub resize: Option<Resize>,
    pub order: Option<CropOrder>,
    pub channel_order: Option<ChannelOrder>,
    pub value_range: Option<f32>,
    pub output_index: Option<usize>,
    pub output_key: Option<String>,
    /// What the output holds (`--output-kind`).
    pub output: Option<OutputKind>,
    /// Score a subset of the model's classes (names or indices), as `--class-subset`.
    pub class_subset: Option<Vec<String>>,
    /// `--grayscale`.
    pub grayscale: Option<Grayscale>,
    /// `--desaturate`.
    pub desaturate: Option<bool>,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl SpecFile {
    /// Parse JSON, reporting line and column and the expected schema on error.
    pub fn parse(text: &str, origin: &str) -> Result<SpecFile> {
        serde_json::from_str(text).map_err(|e| {
            anyhow!(
                "{origin}: invalid model spec at line {}, column {}: {e}; expected {SIDECAR_SCHEMA} (optional \"name\", \"description\")",
                e.line(),
                e.column()
            )
        })
    }
}

/// Spec fields given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SpecFlags {
    pub input: Option<[usize; 3]>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub classes: Option<(PathBuf, Vec<String>)>,
    pub resize: Option<Resize>,
    pub order: Option<CropOrder>,
    pub channel_order: Option<ChannelOrder>,
    pub value_range: Option<f32>,
    pub output_index: Option<usize>,
    pub output_key: Option<String>,
    /// `--output-kind`.
    pub output: Option<OutputKind>,
    /// `--class-subset FILE`: the file and its entries (model class names or indices).
    pub class_subset: Option<(PathBuf, Vec<String>)>,
    /// `--class-map FILE`: the file and its (model class, coarse class) lines.
    pub class_map: Option<(PathBuf, Vec<(String, String)>)>,
    /// `--class-map-rule`.
    pub class_map_rule: Option<GroupRule>,
    /// `--protocol NAME`: its model-input settings, the lowest layer (beneath the
    /// model's sidecar and embedded spec).
    pub protocol: Option<(String, SpecFile)>,
    /// The data's labels are class indices (MNIST IDX, CIFAR): a model that names
    /// no classes gets `0..C-1`, C its output width.
    pub index_labels: bool,
    pub grayscale: Option<Grayscale>,
    pub desaturate: Option<bool>,
}

/// Read a text file a user wrote (class lists, subsets, maps, sidecars, gate
/// configs), without the UTF-8 byte-order mark that some editors put first (it
/// would otherwise become part of the first name or break the parse).
pub fn read_user_text(path: &Path) -> std::io::Result<String> {
    let text = fs::read_to_string(path)?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Read a `--class-subset` file: one model class per line (its name, or its index
/// when no class has that name), blank lines and `#` comments ignored.
pub fn read_subset_file(path: &Path) -> Result<Vec<String>> {
    let text = read_user_text(path).with_context(|| {
        format!(
            "--class-subset {}: cannot read the file; give a text file with one model class (name or index) per line",
            path.display()
        )
    })?;
    let v: Vec<String> = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if v.is_empty() {
        bail!(
            "--class-subset {}: the file lists no classes; write one model class per line",
            path.display()
        );
    }
    Ok(v)
}

/// Read a `--class-map` file: lines `model class,coarse class` (the model class by
/// name, or by index when no class has that name); coarse classes are numbered in
/// the order they first appear. Blank lines and `#` comments are ignored.
pub fn read_map_file(path: &Path) -> Result<Vec<(String, String)>> {
    read_pairs(path, "--class-map", "model class,coarse class")
}

/// Read a `--class-folder-map` file: lines `folder,class` (the class by name, or
/// by index into the model's classes when no class has that name).
pub fn read_folder_map_file(path: &Path) -> Result<Vec<(String, String)>> {
    read_pairs(path, "--class-folder-map", "folder,class")
}

/// Lines `a,b` (split at the last comma), blank lines and `#` comments ignored;
/// errors name `flag`, the file, the line and the `form`.
fn read_pairs(path: &Path, flag: &str, form: &str) -> Result<Vec<(String, String)>> {
    let text = read_user_text(path).with_context(|| {
        format!(
            "{flag} {}: cannot read the file; give a text file of `{form}` lines",
            path.display()
        )
    })?;
    let mut v = vec![];
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((a, b)) = l.rsplit_once(',') else {
            bail!(
                "{flag} {} line {}: `{l}` is not `{form}`",
                path.display(),
                i + 1
            );
        };
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() || b.is_empty() {
            bail!(
                "{flag} {} line {}: `{l}` has an empty field; write `{form}`",
                path.display(),
                i + 1
            );
        }
        v.push((a.to_string(), b.to_string()));
    }
    if v.is_empty() {
        bail!("{flag} {}: the file has no `{form}` lines", path.display());
    }
    Ok(v)
}

/// A model class named in a subset or map entry: by name, else by index.
fn model_class(classes: &[String], entry: &str, from: &str) -> Result<usize> {
    if let Some(i) = classes.iter().position(|c| c == entry) {
        return Ok(i);
    }
    match entry.parse::<usize>() {
        Ok(i) if i < classes.len() => Ok(i),
        Ok(i) => bail!(
            "{from}: class index {i} is beyond the model's {} classes (0..{})",
            classes.len(),
            classes.len() - 1
        ),
        Err(_) => bail!(
            "{from}: `{entry}` is not one of the model's {} classes (by name or index); check the spelling against its `classes`",
            classes.len()
        ),
    }
}

/// Which part of forward's output holds the logits: one choice, made by the first
/// layer (flag, sidecar, embedded) that makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChoice {
    Index(usize),
    Key(String),
}

impl OutputChoice {
    /// The choice one layer makes; `from` names the layer when it makes two.
    fn of(index: Option<usize>, key: Option<&String>, from: &str) -> Result<Option<OutputChoice>> {
        match (index, key) {
            (Some(i), Some(k)) => bail!(
                "{from}: both output_index {i} and output_key `{k}` are set; a tuple output takes output_index, a dict output takes output_key, so keep one"
            ),
            (Some(i), None) => Ok(Some(OutputChoice::Index(i))),
            (None, Some(k)) => Ok(Some(OutputChoice::Key(k.clone()))),
            (None, None) => Ok(None),
        }
    }
}

/// The type forward declares it returns (its TorchScript schema), as the backend
/// reports it; [`ModelSpec::choose_output`] checks the output choice against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returns {
    Tensor,
    /// A tuple, with each element's type (`Tensor`, `List[Tensor]`, ...).
    Tuple(Vec<String>),
    /// A dict (its type, e.g. `Dict[str, Tensor]`); its keys are known only once it runs.
    Dict(String),
    /// A list (its type); its length is known only once it runs.
    List(String),
    /// Anything else (`Any`, ...): checked when it runs.
    Other(String),
}

/// Where each spec field came from, for `inspect` and the reports.
pub type Provenance = BTreeMap<String, String>;

/// The sidecar path for a model: `x.pt` -> `x.json`.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// Read a `--classes` file: one name per line, blank lines ignored.
pub fn read_classes_file(path: &Path) -> Result<Vec<String>> {
    let text = read_user_text(path).with_context(|| {
        format!(
            "--classes {}: cannot read the file; give a text file with one class name per line",
            path.display()
        )
    })?;
    let classes: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if classes.is_empty() {
        bail!(
            "--classes {}: the file has no class names; write one name per line",
            path.display()
        );
    }
    Ok(classes)
}

fn per_channel(values: &[f32], channels: usize, what: &str, from: &str) -> Result<Vec<f32>> {
    let out = match values.len() {
        1 => vec![values[0]; channels],
        n if n == channels => values.to_vec(),
        n if channels == 1 => bail!("{from}: {what} has {n} values but the input has 1 channel; give 1 value"),
        n => bail!("{from}: {what} has {n} values but the input has {channels} channels; give 1 value (for all) or {channels}"),
    };
    if out.iter().any(|v| !v.is_finite()) {
        bail!("{from}: {what} must be finite numbers");
    }
    Ok(out)
}

/// Where a spec field was found. A model's spec follows one precedence rule:
/// flags over the sidecar over the embedded spec ([`layered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Flag,
    Sidecar,
    Embedded,
    /// No layer sets it: rotbench's default (preprocessing fields only).
    Default,
    /// `--protocol`'s model-input settings, beneath the model's own.
    Protocol,
}

/// The provenance name of a TorchScript zip's embedded spec.
pub const EMBEDDED: &str = "embedded extra/rotbench.json";

/// The value of the first layer that sets it (flag, then sidecar, then embedded).
pub fn layered<T>(flag: Option<T>, sidecar: Option<T>, embedded: Option<T>) -> Option<(T, Layer)> {
    flag.map(|v| (v, Layer::Flag))
        .or_else(|| sidecar.map(|v| (v, Layer::Sidecar)))
        .or_else(|| embedded.map(|v| (v, Layer::Embedded)))
}

/// Combine flags, sidecar and embedded spec into a checked [`ModelSpec`].
pub fn resolve_spec(
    model_path: &Path,
    flags: &SpecFlags,
    sidecar: Option<(&Path, &SpecFile)>,
    embedded: Option<&SpecFile>,
) -> Result<(ModelSpec, Provenance)> {
    resolve_spec_from(model_path, flags, sidecar, embedded.map(|e| (EMBEDDED, e)))
}

/// [`resolve_spec`] with the embedded spec's source named (provenance): a
/// TorchScript zip's `extra/rotbench.json`, an ONNX model's `metadata_props`.
pub fn resolve_spec_from(
    model_path: &Path,
    flags: &SpecFlags,
    sidecar: Option<(&Path, &SpecFile)>,
    embedded: Option<(&str, &SpecFile)>,
) -> Result<(ModelSpec, Provenance)> {
    let mut r = Resolver::new(model_path, flags, sidecar, embedded);
    r.all_present()?;
    let input = r.input()?;
    let mean = r.channel_values("mean", flags.mean.as_ref(), |s| s.mean.as_ref(), input[0])?;
    let std = r.channel_values("std", flags.std.as_ref(), |s| s.std.as_ref(), input[0])?;
    if std.iter().any(|s| *s <= 0.0) {
        bail!(
            "{}: std must be positive in every channel, got {:?}",
            r.prov["std"],
            std
        );
    }
    let classes = r.classes()?;
    let preprocess = r.preprocess(input)?;
    let (output_index, output_key) = r.output_choice()?;
    let output = r.output_kind();
    let space = r.class_space(classes)?;
    if let Some((name, p)) = &flags.protocol {
        note_protocol_differences(&mut r.prov, name, p, input, &mean, &std, preprocess.resize);
    }
    Ok((
        ModelSpec {
            input,
            mean,
            std,
            classes: space.classes,
            preprocess,
            output_index,
            output_key,
            output,
            model_classes: space.model_classes,
            class_subset: space.class_subset,
            class_map_rule: match space.class_map {
                Some(_) => flags.class_map_rule.unwrap_or_default(),
                None => GroupRule::Sum,
            },
            class_map: space.class_map,
        },
        r.prov,
    ))
}

/// The model's own value wins over a protocol's (it is part of the model): where
/// they differ, the field's source says so, for summary.json, inspect and a note.
fn note_protocol_differences(
    prov: &mut Provenance,
    name: &str,
    p: &SpecFile,
    input: [usize; 3],
    mean: &[f32],
    std: &[f32],
    resize: Option<Resize>,
) {
    let mut theirs: Vec<(&str, String)> = vec![];
    if let Some(v) = p.input.as_ref().filter(|v| v[..] != input[..]) {
        let dims: Vec<String> = v.iter().map(|d| d.to_string()).collect();
        theirs.push(("input-size", dims.join("x")));
    }
    if let Some(v) = p.mean.as_ref().filter(|v| v[..] != *mean) {
        theirs.push(("mean", format!("{v:?}")));
    }
    if let Some(v) = p.std.as_ref().filter(|v| v[..] != *std) {
        theirs.push(("std", format!("{v:?}")));
    }
    if let Some(v) = p.resize.filter(|v| Some(*v) != resize) {
        let text = match v {
            Resize::Shorter(n) => n.to_string(),
            Resize::Exact([h, w]) => format!("{h}x{w}"),
        };
        theirs.push(("resize", text));
    }
    for (key, value) in theirs {
        if let Some(src) = prov.get_mut(key) {
            *src = format!("{src} (the model's own, not protocol {name}'s {value})");
        }
    }
}

/// One model's three spec layers (flags, sidecar, embedded) and the provenance
/// of every field taken from them. Every field goes through one rule
/// ([`layered`]); [`Resolver::pick`] records its source.
struct Resolver<'a> {
    model_path: &'a Path,
    flags: &'a SpecFlags,
    sidecar: Option<&'a SpecFile>,
    embedded: Option<&'a SpecFile>,
    side_name: Option<String>,
    emb_name: String,
    prov: Provenance,
}

/// The classes a model is scored on, and how they come from its own outputs
/// (the [`ModelSpec`] fields of the same names).
struct ClassFields {
    classes: Vec<String>,
    model_classes: Option<Vec<String>>,
    class_subset: Option<Vec<usize>>,
    class_map: Option<Vec<Vec<usize>>>,
}

impl<'a> Resolver<'a> {
    fn new(
        model_path: &'a Path,
        flags: &'a SpecFlags,
        sidecar: Option<(&'a Path, &'a SpecFile)>,
        embedded: Option<(&str, &'a SpecFile)>,
    ) -> Resolver<'a> {
        let (emb_name, embedded) = match embedded {
            Some((n, e)) => (n.to_string(), Some(e)),
            None => (EMBEDDED.to_string(), None),
        };
        Resolver {
            model_path,
            flags,
            sidecar: sidecar.map(|(_, s)| s),
            embedded,
            side_name: sidecar.map(|(p, _)| format!("sidecar {}", p.display())),
            emb_name,
            prov: Provenance::new(),
        }
    }

    /// The flag's value, else the sidecar's, else the embedded spec's ([`layered`]).
    fn layered<T>(
        &self,
        flag: Option<T>,
        field: impl Fn(&'a SpecFile) -> Option<T>,
    ) -> Option<(T, Layer)> {
        layered(
            flag,
            self.sidecar.and_then(&field),
            self.embedded.and_then(&field),
        )
        .or_else(|| {
            let (_, p) = self.flags.protocol.as_ref()?;
            field(p).map(|v| (v, Layer::Protocol))
        })
    }

    /// Record where `key` came from (`flag` names the flag when it is not
    /// `--key`) and return that source.
    fn pick(&mut self, key: &str, flag: Option<String>, layer: Layer) -> String {
        let src = match layer {
            Layer::Flag => flag.unwrap_or_else(|| format!("flag --{key}")),
            Layer::Sidecar => self.side_name.clone().unwrap_or_default(),
            Layer::Embedded => self.emb_name.clone(),
            Layer::Default => "default".to_string(),
            Layer::Protocol => match &self.flags.protocol {
                Some((name, _)) => format!("protocol {name}"),
                None => "protocol".to_string(),
            },
        };
        self.prov.insert(key.to_string(), src.clone());
        src
    }

    /// Every required field that no layer sets, named in one error with the
    /// flag or sidecar key that gives it (issue 33: not one run per field).
    fn all_present(&self) -> Result<()> {
        let f = self.flags;
        let missing: Vec<(&str, &str)> = [
            (
                self.layered(f.input.map(|i| i.to_vec()), |s| s.input.clone())
                    .is_none(),
                ("input", "--input-size CxHxW"),
            ),
            (
                self.layered(f.mean.as_ref(), |s| s.mean.as_ref()).is_none(),
                ("mean", "--mean V"),
            ),
            (
                self.layered(f.std.as_ref(), |s| s.std.as_ref()).is_none(),
                ("std", "--std V"),
            ),
            (
                self.layered(f.classes.as_ref().map(|(_, c)| c.clone()), |s| {
                    s.classes.clone()
                })
                .is_none(),
                ("classes", "--classes FILE (one name per line)"),
            ),
        ]
        .into_iter()
        .filter_map(|(gone, what)| gone.then_some(what))
        .collect();
        match missing.as_slice() {
            [] => Ok(()),
            [(field, flag)] => bail!(self.how_to(field, flag)),
            many => bail!(
                "{}: the model spec has no {}; add them to the sidecar {} ({SIDECAR_SCHEMA}) or pass {}",
                self.model_path.display(),
                many.iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                sidecar_path(self.model_path).display(),
                many.iter().map(|(_, f)| *f).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The error for a field that no layer sets.
    fn how_to(&self, field: &str, flag: &str) -> String {
        format!(
            "{}: the model spec has no `{field}`; add it to the sidecar {} ({SIDECAR_SCHEMA}) or pass {flag}",
            self.model_path.display(),
            sidecar_path(self.model_path).display()
        )
    }

    /// `input`: [C, H, W] with 1 or 3 channels and sides of 1 to 8192.
    fn input(&mut self) -> Result<[usize; 3]> {
        let (input, layer) = self
            .layered(self.flags.input.map(|i| i.to_vec()), |s| s.input.clone())
            .ok_or_else(|| anyhow!(self.how_to("input", "--input-size CxHxW")))?;
        let from = self.pick("input-size", None, layer);
        if input.len() != 3 {
            bail!(
                "{from}: `input` must be [C, H, W], got {} values",
                input.len()
            );
        }
        let input = [input[0], input[1], input[2]];
        if !(input[0] == 1 || input[0] == 3) {
            bail!(
                "{from}: the input has {} channels; rotbench feeds 1 (grayscale) or 3 (RGB)",
                input[0]
            );
        }
        if input[1] == 0 || input[2] == 0 || input[1] > 8192 || input[2] > 8192 {
            bail!(
                "{from}: input height and width must be between 1 and 8192, got {}x{}",
                input[1],
                input[2]
            );
        }
        Ok(input)
    }

    /// `mean` or `std`: one value for every channel, or one per channel.
    fn channel_values(
        &mut self,
        field: &str,
        flag: Option<&'a Vec<f32>>,
        of: impl Fn(&'a SpecFile) -> Option<&'a Vec<f32>>,
        channels: usize,
    ) -> Result<Vec<f32>> {
        let (v, layer) = self.layered(flag, of).ok_or_else(|| {
            anyhow!(self.how_to(
                field,
                &format!("--{field} V (one value, or one per channel)")
            ))
        })?;
        let src = self.pick(field, None, layer);
        per_channel(v, channels, field, &src)
    }

    /// `classes`: the model's output classes in order, each name once.
    fn classes(&mut self) -> Result<Vec<String>> {
        let flags = self.flags;
        let (classes, layer) = self
            .layered(flags.classes.as_ref().map(|(_, c)| c.clone()), |s| {
                s.classes.clone()
            })
            .ok_or_else(|| anyhow!(self.how_to("classes", "--classes FILE (one name per line)")))?;
        let flag_file = flags
            .classes
            .as_ref()
            .map(|(p, _)| format!("flag --classes {}", p.display()));
        self.pick("classes", flag_file, layer);
        if classes.is_empty() {
            bail!(
                "{}: `classes` is empty; list the model's output classes in order",
                self.prov["classes"]
            );
        }
        for (i, c) in classes.iter().enumerate() {
            if classes[..i].contains(c) {
                bail!(
                    "{}: class name `{c}` appears twice; class names must be unique",
                    self.prov["classes"]
                );
            }
        }
        Ok(classes)
    }

    /// Preprocessing: each field from the first layer that has it, else the default.
    fn preprocess(&mut self, input: [usize; 3]) -> Result<Preprocess> {
        let mut pre = Preprocess::default();
        macro_rules! preprocess {
            ($field:ident, $name:expr) => {
                match self.layered(self.flags.$field, |s| s.$field) {
                    Some((v, layer)) => {
                        pre.$field = v.into();
                        self.pick($name, None, layer);
                    }
                    None => {
                        self.pick($name, None, Layer::Default);
                    }
                }
            };
        }
        preprocess!(resize, "resize");
        preprocess!(order, "order");
        preprocess!(channel_order, "channel-order");
        preprocess!(value_range, "value-range");
        // Recorded only when a layer sets them, so that specs without them keep
        // their sources (and summary.json its bytes).
        if let Some((v, layer)) = self.layered(self.flags.grayscale, |s| s.grayscale) {
            pre.grayscale = v;
            self.pick("grayscale", None, layer);
        }
        if let Some((v, layer)) = self.layered(self.flags.desaturate, |s| s.desaturate) {
            pre.desaturate = v;
            self.pick("desaturate", None, layer);
        }
        if pre.value_range != 1.0 && pre.value_range != 255.0 {
            bail!(
                "{}: value_range must be 1 (pixels in [0,1]) or 255 (pixels in [0,255]), got {}",
                self.prov["value-range"],
                pre.value_range
            );
        }
        match pre.resize {
            Some(Resize::Shorter(n)) if n < input[1].min(input[2]) => bail!(
                "{}: resize {n} makes the shorter side smaller than the {}x{} input; use at least {}",
                self.prov["resize"],
                input[1],
                input[2],
                input[1].max(input[2])
            ),
            Some(Resize::Exact([h, w])) if h < input[1] || w < input[2] || h == 0 || w == 0 => bail!(
                "{}: resize {h}x{w} is smaller than the {}x{} input; the centre crop needs at least the input size",
                self.prov["resize"],
                input[1],
                input[2]
            ),
            _ => {}
        }
        Ok(pre)
    }

    /// The output choice (`output_index` or `output_key`): recorded (and in the
    /// provenance) only when a layer makes one.
    fn output_choice(&mut self) -> Result<(Option<usize>, Option<String>)> {
        let flags = self.flags;
        let side_from = self.side_name.clone().unwrap_or_default();
        let choice = layered(
            OutputChoice::of(flags.output_index, flags.output_key.as_ref(), "flags")?,
            match self.sidecar {
                Some(s) => OutputChoice::of(s.output_index, s.output_key.as_ref(), &side_from)?,
                None => None,
            },
            match self.embedded {
                Some(s) => OutputChoice::of(s.output_index, s.output_key.as_ref(), &self.emb_name)?,
                None => None,
            },
        );
        Ok(match choice {
            Some((OutputChoice::Index(i), layer)) => {
                self.pick("output-index", None, layer);
                (Some(i), None)
            }
            Some((OutputChoice::Key(k), layer)) => {
                self.pick("output-key", None, layer);
                (None, Some(k))
            }
            None => (None, None),
        })
    }

    /// What the output holds: declared by a layer, or left to the loader, which
    /// decides it from the outputs and records how (`output` in the provenance).
    fn output_kind(&mut self) -> OutputKind {
        match self.layered(self.flags.output, |s| s.output) {
            Some((kind, layer)) => {
                self.pick("output", Some("flag --output-kind".into()), layer);
                kind
            }
            None => OutputKind::Logits,
        }
    }

    /// Class spaces: a subset (flag or sidecar) or a coarse map (flag), not both.
    fn class_space(&mut self, classes: Vec<String>) -> Result<ClassFields> {
        let flags = self.flags;
        let side_from = self.side_name.clone().unwrap_or_default();
        let subset = layered(
            flags
                .class_subset
                .as_ref()
                .map(|(p, v)| (format!("flag --class-subset {}", p.display()), v.clone())),
            self.sidecar
                .and_then(|s| s.class_subset.clone())
                .map(|v| (side_from.clone(), v)),
            self.embedded
                .and_then(|s| s.class_subset.clone())
                .map(|v| (self.emb_name.clone(), v)),
        );
        let mut space = ClassFields {
            classes,
            model_classes: None,
            class_subset: None,
            class_map: None,
        };
        let classes = &mut space.classes;
        match (subset, &flags.class_map) {
            (Some(((from, _), _)), Some((p, _))) => bail!(
                "--class-map {} and the class subset from {from}: give one; a subset keeps some of the model's classes, a map merges them into coarse ones",
                p.display()
            ),
            (Some(((from, entries), _)), None) => {
                let mut idx = Vec::with_capacity(entries.len());
                for e in &entries {
                    let i = model_class(classes, e, &from)?;
                    if idx.contains(&i) {
                        bail!("{from}: class `{}` is listed twice", classes[i]);
                    }
                    idx.push(i);
                }
                self.prov.insert("class-subset".into(), from);
                let names = idx.iter().map(|&i| classes[i].clone()).collect();
                space.model_classes = Some(std::mem::replace(classes, names));
                space.class_subset = Some(idx);
            }
            (None, Some((p, lines))) => {
                let from = format!("flag --class-map {}", p.display());
                let (mut names, mut groups): (Vec<String>, Vec<Vec<usize>>) = (vec![], vec![]);
                let mut seen = vec![false; classes.len()];
                for (fine, coarse) in lines {
                    let i = model_class(classes, fine, &from)?;
                    if std::mem::replace(&mut seen[i], true) {
                        bail!(
                            "{from}: model class `{}` is mapped twice; each model class belongs to at most one coarse class",
                            classes[i]
                        );
                    }
                    match names.iter().position(|n| n == coarse) {
                        Some(g) => groups[g].push(i),
                        None => {
                            names.push(coarse.clone());
                            groups.push(vec![i]);
                        }
                    }
                }
                self.prov.insert("class-map".into(), from);
                space.model_classes = Some(std::mem::replace(classes, names));
                space.class_map = Some(groups);
            }
            (None, None) => {}
        }
        Ok(space)
    }
}

/// Read `extra/rotbench.json` from a TorchScript zip, if present.
pub fn read_embedded_spec(path: &Path) -> Result<Option<SpecFile>> {
    let Ok(file) = fs::File::open(path) else {
        return Ok(None);
    };
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        return Ok(None);
    };
    let name: Option<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("/extra/rotbench.json") || n == "extra/rotbench.json");
    let Some(name) = name else { return Ok(None) };
    let mut text = String::new();
    zip.by_name(&name)
        .map_err(|e| anyhow!("{}: cannot read embedded {name}: {e}", path.display()))?
        .read_to_string(&mut text)
        .with_context(|| format!("{}: embedded {name} is not UTF-8 text", path.display()))?;
    SpecFile::parse(&text, &format!("{} (embedded {name})", path.display())).map(Some)
}

/// How the TorchScript module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inference {
    /// `torch.jit.freeze` + `torch.jit.optimize_for_inference`, done in-process (the default).
    Optimized,
    /// The module as loaded, in eval mode (`--exact`).
    Exact,
}

impl Inference {
    pub fn name(self) -> &'static str {
        match self {
            Inference::Optimized => "optimized",
            Inference::Exact => "exact",
        }
    }
}

/// A model's spec in one call, once its file is open: the flags, the sidecar
/// beside it and the spec its file embeds (`embedded`, with where it sits),
/// layered by [`resolve_spec_from`], and the output choice checked against what
/// forward returns ([`ModelSpec::choose_output`]).
pub fn model_spec(
    path: &Path,
    flags: &SpecFlags,
    embedded: Option<(&str, &SpecFile)>,
    returns: &Returns,
) -> Result<(ModelSpec, Provenance)> {
    let (mut spec, mut prov) = load_spec_with(path, flags, embedded)?;
    spec.choose_output(&mut prov, returns, path)?;
    Ok((spec, prov))
}

/// Whether any layer (the flags, the sidecar beside `path`, the embedded spec)
/// names the model's classes.
pub fn declares_classes(
    path: &Path,
    flags: &SpecFlags,
    embedded: Option<(&str, &SpecFile)>,
) -> Result<bool> {
    if flags.classes.is_some() || embedded.is_some_and(|(_, e)| e.classes.is_some()) {
        return Ok(true);
    }
    let side = sidecar_path(path);
    if !side.is_file() {
        return Ok(false);
    }
    let text = read_user_text(&side)
        .with_context(|| format!("{}: cannot read the sidecar", side.display()))?;
    Ok(SpecFile::parse(&text, &side.display().to_string())?
        .classes
        .is_some())
}

/// The source of default classes `0..width-1`, for provenance and notes.
pub fn default_classes_source(width: usize) -> String {
    format!(
        "default: 0..{} (the data's labels are class indices and the model names no classes; give --classes FILE or `classes` in the spec to name them)",
        width.saturating_sub(1)
    )
}

/// Load the spec for a model path: sidecar (if present), embedded (if present), flags.
pub fn load_spec(path: &Path, flags: &SpecFlags) -> Result<(ModelSpec, Provenance)> {
    let embedded = read_embedded_spec(path)?;
    load_spec_with(path, flags, embedded.as_ref().map(|e| (EMBEDDED, e)))
}

/// [`load_spec`] with the embedded spec (and where it came from) read by the
/// caller: formats other than TorchScript keep it elsewhere than in a zip.
pub fn load_spec_with(
    path: &Path,
    flags: &SpecFlags,
    embedded: Option<(&str, &SpecFile)>,
) -> Result<(ModelSpec, Provenance)> {
    let side = sidecar_path(path);
    let sidecar = if side.is_file() {
        let text = read_user_text(&side)
            .with_context(|| format!("{}: cannot read the sidecar", side.display()))?;
        Some(SpecFile::parse(&text, &side.display().to_string())?)
    } else {
        None
    };
    resolve_spec_from(
        path,
        flags,
        sidecar.as_ref().map(|s| (side.as_path(), s)),
        embedded,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(json: &str) -> SpecFile {
        SpecFile::parse(json, "m.json").unwrap()
    }

    #[test]
    fn the_sidecar_gives_the_spec() {
        let s = side(r#"{"input":[1,28,28],"mean":[0.1307],"std":[0.3081],"classes":["a","b"]}"#);
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &SpecFlags::default(),
            Some((Path::new("m.json"), &s)),
            None,
        )
        .unwrap();
        assert_eq!(spec.input, [1, 28, 28]);
        assert_eq!(spec.mean, vec![0.1307]);
        assert_eq!(spec.classes.len(), 2);
        assert_eq!(prov["mean"], "sidecar m.json");
    }

    #[test]
    fn flags_override_the_sidecar_which_overrides_the_embedded_spec() {
        let s = side(r#"{"input":[3,32,32],"mean":[0.5],"classes":["a","b"]}"#);
        let e = side(r#"{"input":[1,8,8],"mean":[0.1],"std":[0.2],"classes":["x"]}"#);
        let flags = SpecFlags {
            class_subset: None,
            class_map: None,
            mean: Some(vec![0.1, 0.2, 0.3]),
            ..Default::default()
        };
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &flags,
            Some((Path::new("m.json"), &s)),
            Some(&e),
        )
        .unwrap();
        assert_eq!(spec.input, [3, 32, 32]);
        assert_eq!(spec.mean, vec![0.1, 0.2, 0.3]);
        assert_eq!(
            spec.std,
            vec![0.2, 0.2, 0.2],
            "one std value spreads to every channel"
        );
        assert_eq!(spec.classes, vec!["a", "b"]);
        assert_eq!(prov["mean"], "flag --mean");
        assert_eq!(prov["std"], "embedded extra/rotbench.json");
    }

    /// The error from resolving a spec given only by this sidecar.
    fn sidecar_err(json: &str) -> String {
        let s = side(json);
        resolve_spec(
            Path::new("m.pt"),
            &SpecFlags::default(),
            Some((Path::new("m.json"), &s)),
            None,
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn each_field_comes_from_the_first_layer_that_sets_it() {
        assert_eq!(layered(Some(1), Some(2), Some(3)), Some((1, Layer::Flag)));
        assert_eq!(layered(None, Some(2), Some(3)), Some((2, Layer::Sidecar)));
        assert_eq!(layered(None, None, Some(3)), Some((3, Layer::Embedded)));
        assert_eq!(layered::<i32>(None, None, None), None);
        let s = side(
            r#"{"input":[3,8,8],"mean":[0.5],"std":[0.5],"classes":["a"],"order":"crop-then-rotate"}"#,
        );
        let e = side(r#"{"channel_order":"bgr","order":"rotate-then-crop"}"#);
        let flags = SpecFlags {
            class_subset: None,
            class_map: None,
            value_range: Some(255.0),
            ..Default::default()
        };
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &flags,
            Some((Path::new("m.json"), &s)),
            Some(&e),
        )
        .unwrap();
        assert_eq!(spec.preprocess.order, CropOrder::CropThenRotate);
        assert_eq!(spec.preprocess.channel_order, ChannelOrder::Bgr);
        assert_eq!(spec.preprocess.value_range, 255.0);
        assert_eq!(prov["order"], "sidecar m.json");
        assert_eq!(prov["channel-order"], "embedded extra/rotbench.json");
        assert_eq!(prov["value-range"], "flag --value-range");
        assert_eq!(prov["resize"], "default");
    }

    #[test]
    fn a_missing_field_says_how_to_give_it() {
        let msg = sidecar_err(r#"{"input":[1,28,28],"mean":[0.5],"std":[0.5]}"#);
        assert!(
            msg.contains("no `classes`") && msg.contains("--classes FILE"),
            "{msg}"
        );
    }

    #[test]
    fn issue33_every_missing_field_is_named_at_once() {
        let msg = sidecar_err(r#"{"input":[1,28,28]}"#);
        assert!(
            msg.contains("no `mean`, `std`, `classes`")
                && msg.contains("--mean V, --std V, --classes FILE"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = [
            (
                r#"{"input":[2,28,28],"mean":[0],"std":[1],"classes":["a"]}"#,
                "channels",
            ),
            (
                r#"{"input":[1,28],"mean":[0],"std":[1],"classes":["a"]}"#,
                "[C, H, W]",
            ),
            (
                r#"{"input":[1,28,28],"mean":[0,0],"std":[1],"classes":["a"]}"#,
                "input has 1 channel; give 1 value",
            ),
            (
                r#"{"input":[1,28,28],"mean":[0],"std":[0],"classes":["a"]}"#,
                "positive",
            ),
            (
                r#"{"input":[1,28,28],"mean":[0],"std":[1],"classes":["a","a"]}"#,
                "twice",
            ),
            (
                r#"{"input":[1,28,28],"mean":[0],"std":[1],"classes":[]}"#,
                "empty",
            ),
        ];
        for (json, want) in bad {
            let err = sidecar_err(json);
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn issue33_a_one_channel_spec_is_not_told_to_give_1_value_or_1() {
        let e = per_channel(&[0.0, 0.0], 1, "mean", "spec")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("give 1 value") && !e.contains("or 1"), "{e}");
        let e = per_channel(&[0.0, 0.0], 3, "mean", "spec")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give 1 value (for all) or 3"), "{e}");
    }

    #[test]
    fn the_output_choice_is_layered_like_every_field_and_one_layer_may_make_only_one() {
        let s =
            side(r#"{"input":[1,8,8],"mean":[0],"std":[1],"classes":["a"],"output_key":"logits"}"#);
        let e = side(r#"{"output_index":2}"#);
        let resolve = |flags: &SpecFlags| {
            resolve_spec(
                Path::new("m.pt"),
                flags,
                Some((Path::new("m.json"), &s)),
                Some(&e),
            )
        };
        let (spec, prov) = resolve(&SpecFlags::default()).unwrap();
        assert_eq!(
            (spec.output_index, spec.output_key.as_deref()),
            (None, Some("logits"))
        );
        assert_eq!(prov["output-key"], "sidecar m.json");
        assert!(!prov.contains_key("output-index"));
        // A flag's index replaces the sidecar's key: one choice, not two.
        let flags = SpecFlags {
            class_subset: None,
            class_map: None,
            output_index: Some(1),
            ..Default::default()
        };
        let (spec, prov) = resolve(&flags).unwrap();
        assert_eq!((spec.output_index, spec.output_key), (Some(1), None));
        assert_eq!(prov["output-index"], "flag --output-index");
        let both = sidecar_err(
            r#"{"input":[1,8,8],"mean":[0],"std":[1],"classes":["a"],"output_index":0,"output_key":"x"}"#,
        );
        assert!(
            both.starts_with("sidecar m.json: both output_index 0 and output_key `x`"),
            "{both}"
        );
    }

    #[test]
    fn a_spec_without_an_output_choice_serializes_as_before() {
        // The spec is in summary.json and in every prediction-cache key: a model that
        // returns a tensor must keep the bytes it had before output choices existed.
        let s = side(r#"{"input":[1,2,2],"mean":[0.5],"std":[0.25],"classes":["a","b"]}"#);
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &SpecFlags::default(),
            Some((Path::new("m.json"), &s)),
            None,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&spec).unwrap(),
            r#"{"input":[1,2,2],"mean":[0.5],"std":[0.25],"classes":["a","b"],"preprocess":{"resize":null,"order":"rotate-then-crop","channel_order":"rgb","value_range":1.0}}"#
        );
        assert_eq!(
            prov.keys().collect::<Vec<_>>(),
            [
                "channel-order",
                "classes",
                "input-size",
                "mean",
                "order",
                "resize",
                "std",
                "value-range"
            ]
        );
        let back: ModelSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn a_tuple_takes_element_0_unless_told_and_a_choice_that_cannot_apply_names_the_cause() {
        let plain = || {
            let s = side(r#"{"input":[1,8,8],"mean":[0],"std":[1],"classes":["a"]}"#);
            resolve_spec(
                Path::new("m.pt"),
                &SpecFlags::default(),
                Some((Path::new("m.json"), &s)),
                None,
            )
            .unwrap()
        };
        let choose = |index: Option<usize>, key: Option<&str>, returns: Returns| {
            let (mut spec, mut prov) = plain();
            spec.output_index = index;
            spec.output_key = key.map(str::to_string);
            for (k, on) in [
                ("output-index", index.is_some()),
                ("output-key", key.is_some()),
            ] {
                if on {
                    prov.insert(k.into(), format!("flag --{k}"));
                }
            }
            spec.choose_output(&mut prov, &returns, Path::new("m.pt"))
                .map(|()| (spec.output_index, prov.get("output-index").cloned()))
                .map_err(|e| e.to_string())
        };
        let t = |types: &[&str]| Returns::Tuple(types.iter().map(|t| t.to_string()).collect());
        assert_eq!(choose(None, None, Returns::Tensor), Ok((None, None)));
        assert_eq!(
            choose(None, None, t(&["Tensor", "Tensor"])),
            Ok((
                Some(0),
                Some("default (forward returns a tuple; element 0)".into())
            ))
        );
        assert_eq!(
            choose(Some(1), None, t(&["Tensor", "Tensor"])),
            Ok((Some(1), Some("flag --output-index".into())))
        );
        let err = |r: Result<(Option<usize>, Option<String>), String>| r.unwrap_err();
        let e = err(choose(Some(2), None, t(&["Tensor", "Tensor"])));
        assert!(
            e.contains("out of range")
                && e.contains("a tuple of 2 elements")
                && e.contains("give 0 to 1"),
            "{e}"
        );
        let e = err(choose(None, None, t(&["List[Tensor]", "Tensor"])));
        assert!(
            e.contains("element 0 (the default) is List[Tensor], not a tensor")
                && e.contains("--output-index N"),
            "{e}"
        );
        let e = err(choose(None, Some("logits"), t(&["Tensor"])));
        assert!(
            e.contains("returns a tuple (Tensor)") && e.contains("--output-index N"),
            "{e}"
        );
        let e = err(choose(
            Some(0),
            None,
            Returns::Dict("Dict[str, Tensor]".into()),
        ));
        assert!(
            e.contains("returns a Dict[str, Tensor]") && e.contains("--output-key NAME"),
            "{e}"
        );
        let e = err(choose(Some(0), None, Returns::Tensor));
        assert!(
            e.starts_with("flag --output-index: ") && e.contains("single tensor; remove it"),
            "{e}"
        );
        // A dict's keys are checked by running it (the backend's job).
        assert_eq!(
            choose(
                None,
                Some("logits"),
                Returns::Dict("Dict[str, Tensor]".into())
            ),
            Ok((None, None))
        );
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = SpecFile::parse(
            "{\n  \"input\": [1, 28, 28],\n  \"mean\": oops\n}",
            "m.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(err.contains("\"classes\""), "shows the schema: {err}");
        let err = SpecFile::parse(r#"{"inputs":[1,2,3]}"#, "m.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `inputs`"), "{err}");
    }
}

#[cfg(test)]
mod issue31_tests {
    use super::*;

    fn softmax(row: &[f32]) -> Vec<f32> {
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn output_rows_are_told_apart_by_their_sums() {
        let logits = [2.0f32, -1.0, 0.5, 3.0, 0.0, -2.0];
        let probs: Vec<f32> = logits.chunks(3).flat_map(softmax).collect();
        let logp: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
        assert_eq!(OutputKind::of_rows(&logits, 3), OutputKind::Logits);
        assert_eq!(OutputKind::of_rows(&probs, 3), OutputKind::Probabilities);
        assert_eq!(OutputKind::of_rows(&logp, 3), OutputKind::LogProbabilities);
        // One row that is not a probability row makes the batch logits.
        let mut mixed = probs.clone();
        mixed[5] += 0.01;
        assert_eq!(OutputKind::of_rows(&mixed, 3), OutputKind::Logits);
        // The tolerance is the stated one: 1 ± 1e-3 passes, beyond fails.
        assert_eq!(
            OutputKind::of_rows(&[0.5, 0.5009], 2),
            OutputKind::Probabilities
        );
        assert_eq!(OutputKind::of_rows(&[0.5, 0.5011], 2), OutputKind::Logits);
        assert_eq!(
            OutputKind::of_rows(&[-0.0, 1.0], 2),
            OutputKind::Probabilities
        );
        assert_eq!(
            OutputKind::of_rows(&[1.0], 1),
            OutputKind::Logits,
            "one class: nothing to tell"
        );
        assert!(OutputKind::Logits.admits(OutputKind::LogProbabilities));
        assert!(!OutputKind::Logits.admits(OutputKind::Probabilities));
        assert!(!OutputKind::Probabilities.admits(OutputKind::Logits));
        assert!(!OutputKind::LogProbabilities.admits(OutputKind::Logits));
    }

    #[test]
    fn output_is_a_spec_key_and_logits_keep_the_spec_bytes() {
        let s = SpecFile::parse(
            r#"{"input":[1,2,2],"mean":[0.5],"std":[0.25],"classes":["a","b"],"output":"log_probabilities"}"#,
            "m.json",
        )
        .unwrap();
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &SpecFlags::default(),
            Some((Path::new("m.json"), &s)),
            None,
        )
        .unwrap();
        assert_eq!(spec.output, OutputKind::LogProbabilities);
        assert_eq!(prov["output"], "sidecar m.json");
        assert!(serde_json::to_string(&spec)
            .unwrap()
            .contains(r#""output":"log_probabilities""#));
        let flags = SpecFlags {
            output: Some(OutputKind::Logits),
            ..Default::default()
        };
        let (spec, prov) = resolve_spec(
            Path::new("m.pt"),
            &flags,
            Some((Path::new("m.json"), &s)),
            None,
        )
        .unwrap();
        assert_eq!(prov["output"], "flag --output-kind");
        assert!(!serde_json::to_string(&spec).unwrap().contains("output"));
        assert!(SpecFile::parse(r#"{"output":"softmax"}"#, "m.json").is_err());
    }

    #[test]
    fn a_byte_order_mark_does_not_become_part_of_the_first_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.txt");
        fs::write(&p, "\u{feff}cat\ndog\n").unwrap();
        assert_eq!(read_classes_file(&p).unwrap(), ["cat", "dog"]);
        assert_eq!(read_subset_file(&p).unwrap(), ["cat", "dog"]);
        fs::write(&p, "\u{feff}cat,animal\n").unwrap();
        assert_eq!(
            read_map_file(&p).unwrap(),
            [("cat".into(), "animal".into())]
        );
        let side = d.path().join("m.json");
        fs::write(
            &side,
            "\u{feff}{\"input\":[1,2,2],\"mean\":[0],\"std\":[1],\"classes\":[\"a\"]}",
        )
        .unwrap();
        let (spec, _) =
            load_spec_with(&d.path().join("m.pt"), &SpecFlags::default(), None).unwrap();
        assert_eq!(spec.classes, ["a"]);
    }
}

#[cfg(test)]
mod protocol_difference_tests {
    use super::*;

    /// A model's own input size, mean and resize, where a protocol's differ, keep
    /// their source and say what the protocol's value was, written as its flag takes it.
    #[test]
    fn the_source_names_the_protocols_value_where_the_models_own_differs() {
        let p = SpecFile {
            input: Some(vec![3, 224, 224]),
            mean: Some(vec![0.485, 0.456, 0.406]),
            std: Some(vec![0.5, 0.5, 0.5]),
            resize: Some(Resize::Shorter(256)),
            ..Default::default()
        };
        let mut prov = Provenance::new();
        for k in ["input-size", "mean", "std", "resize"] {
            prov.insert(k.into(), "sidecar m.json".into());
        }
        note_protocol_differences(
            &mut prov,
            "x",
            &p,
            [3, 299, 299],
            &[0.5, 0.5, 0.5],
            &[0.5, 0.5, 0.5],
            Some(Resize::Exact([320, 320])),
        );
        assert_eq!(
            prov["input-size"],
            "sidecar m.json (the model's own, not protocol x's 3x224x224)"
        );
        assert_eq!(
            prov["mean"],
            "sidecar m.json (the model's own, not protocol x's [0.485, 0.456, 0.406])"
        );
        assert_eq!(
            prov["std"], "sidecar m.json",
            "the same std: nothing to say"
        );
        assert_eq!(
            prov["resize"],
            "sidecar m.json (the model's own, not protocol x's 256)"
        );
    }
}
