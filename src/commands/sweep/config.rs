//! A sweep's flags, checked and converted once (as ripgrep's `lowargs` become
//! `hiargs`): [`SweepArgs::check`] gives a [`SweepConfig`] before any work
//! starts, so a typo costs nothing, and no code after it sees a clap type.

use crate::cli::{parse_shard, ModelArg, RotateOnFlag, SweepArgs};
use crate::run::cache::default_cache_dir;
use anyhow::{anyhow, bail, Result};
use rotbench::dataset::{ClassFolders, SampleSpec};
use rotbench::device::parse_device;
use rotbench::gate::{self, Checks};
use rotbench::poses::{parse_translate, Translate};
use rotbench::protocols::{self, Protocol, ProtocolUse};
use rotbench::results::{BatchSize, RotateOn};
use rotbench::rotate::{Fill, Interpolation, RotateOptions};
use rotbench::spec::{read_folder_map_file, Inference, SpecFlags};
use std::path::PathBuf;
use tch::Device;

/// Everything a sweep was asked for, checked.
pub struct SweepConfig {
    /// Each model's name and file: `NAME=PATH`'s name, else the file stem, else
    /// (when stems collide) the file name.
    pub models: Vec<(String, PathBuf)>,
    pub data: PathBuf,
    pub out: PathBuf,
    /// The user's angles, in their order.
    pub angles: Vec<f64>,
    /// `--translate`, parsed (its offsets become pixels once the models' input size
    /// is known).
    pub translate: Option<Translate>,
    /// `--worst-of K`.
    pub worst_of: Option<usize>,
    pub grid_early_stop: bool,
    /// `--difficulty D`.
    pub difficulty: usize,
    /// `--protocol NAME`: the protocol and what the run records of it.
    pub protocol: Option<(&'static Protocol, ProtocolUse)>,
    /// `--relative-to DIR`: the reference run's one model, checked.
    pub relative_to: Option<protocols::Reference>,
    /// The data is a folder of images without class folders, read without
    /// labels (a protocol whose figures need none): only label-free figures.
    pub unlabelled: bool,
    pub rotate: RotateOptions,
    pub batch: BatchSize,
    pub limit: Option<usize>,
    /// `--sample N`, drawn with `--seed`.
    pub sample: Option<SampleSpec>,
    pub top_k: usize,
    pub bootstrap: usize,
    pub seed: u64,
    pub device: Device,
    pub rotate_on: RotateOn,
    /// libtorch's intra-op threads (all cores unless `--threads`).
    pub threads: usize,
    pub inference: Inference,
    pub spec: SpecFlags,
    pub allow_training_mode: bool,
    pub labels: LabelFlags,
    /// `--shard i/n`: (index, count).
    pub shard: Option<(usize, usize)>,
    pub resume: bool,
    /// The prediction cache's folder; `None` with `--no-cache`.
    pub cache_dir: Option<PathBuf>,
    pub no_predictions: bool,
    pub no_report: bool,
    pub quiet: bool,
    /// `--gate-config`'s `[gate]` table, read and checked.
    pub gate: Option<Checks>,
    pub save_baseline: Option<String>,
    pub save_baseline_on_failure: bool,
    /// `--report-url`: linked from the gate's output.
    pub report_url: Option<String>,
    /// Where baselines are compared with and saved: `--baseline-dir`, else the
    /// `[gate]` table's `baseline_dir`, else the default.
    pub baseline_dir: PathBuf,
}

/// How the data's labels are read.
pub struct LabelFlags {
    pub skip_bad_images: bool,
    pub coarse_labels: bool,
    pub class_folders: Option<ClassFolders>,
    /// `--class-folder-map FILE`: the file and its `folder,class` lines.
    pub folder_map: Option<(PathBuf, Vec<(String, String)>)>,
    pub drop_unscored: bool,
}

impl SweepArgs {
    /// Check every flag and convert it, before any work starts.
    pub fn check(self) -> Result<SweepConfig> {
        let angles = rotbench::angles::parse(&self.angles).map_err(|e| anyhow!("--angles: {e}"))?;
        let translate = self
            .translate
            .as_deref()
            .map(parse_translate)
            .transpose()
            .map_err(|e| anyhow!("{e}"))?;
        let mut spec = self.spec.check()?;
        let (protocol, relative_to) = self.protocol(&mut spec)?;
        // MNIST IDX and CIFAR labels are class indices: a model without class
        // names gets 0..C-1.
        let unlabelled = self.unlabelled(protocol.as_ref().map(|(p, _)| *p))?;
        spec.index_labels = rotbench::dataset::idx::looks_like_idx(&self.data)
            || rotbench::dataset::cifar::find(&self.data).is_some()
            || unlabelled;
        let device = parse_device(&self.device)?;
        let rotate = self.rotation.options();
        let pil = rotate.interpolation == Interpolation::PilBilinear;
        if pil && !matches!(rotate.fill, Fill::Constant(_)) {
            bail!("--interpolation pil-bilinear takes a constant --fill (Pillow's fillcolor), not `{}`", rotate.fill);
        }
        let rotate_on = match self.rotate_on {
            RotateOnFlag::Device if pil => bail!(
                "--rotate-on device: Pillow's arithmetic (--interpolation pil-bilinear) runs on the host; drop --rotate-on device"
            ),
            RotateOnFlag::Host => RotateOn::Host,
            RotateOnFlag::Device => RotateOn::Device,
            RotateOnFlag::Auto if matches!(device, Device::Cuda(_)) && !pil => RotateOn::Device,
            RotateOnFlag::Auto => RotateOn::Host,
        };
        let shard = match &self.shard {
            None => None,
            Some(v) => {
                let (index, count) = parse_shard(v, &|k| std::env::var(k).ok())?;
                if self.save_baseline.is_some() || self.gate_config.is_some() {
                    bail!("--shard: a shard holds part of the samples; save baselines and gate after `rotbench merge`");
                }
                Some((index, count))
            }
        };
        if let Some(name) = &self.save_baseline {
            gate::check_baseline_name(name)?;
        }
        let gate = match &self.gate_config {
            None => None,
            Some(p) => {
                let checks = gate::read_config(p, "--gate-config")?;
                checks
                    .validate_merged()
                    .map_err(|e| anyhow!("--gate-config {}: {e:#}", p.display()))?;
                Some(checks)
            }
        };
        // The flag wins over the table, for the comparison and the save alike.
        let baseline_dir = Checks {
            baseline_dir: self
                .baseline_dir
                .clone()
                .or_else(|| gate.as_ref().and_then(|c| c.baseline_dir.clone())),
            ..Checks::default()
        }
        .baseline_folder();
        let folder_map = match &self.class_folder_map {
            None => None,
            Some(p) => Some((p.clone(), read_folder_map_file(p)?)),
        };
        let models = model_names(&self.models)?;
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(SweepConfig {
            models,
            data: self.data,
            out: self.out,
            angles,
            translate,
            worst_of: self.worst_of,
            grid_early_stop: self.grid_early_stop,
            difficulty: self.difficulty,
            protocol,
            relative_to,
            unlabelled,
            rotate,
            batch: self.batch_size,
            limit: self.limit,
            sample: self.sample.map(|n| SampleSpec { n, seed: self.seed }),
            top_k: self.top_k,
            bootstrap: self.bootstrap,
            seed: self.seed,
            device,
            rotate_on,
            threads,
            inference: if self.exact {
                Inference::Exact
            } else {
                Inference::Optimized
            },
            spec,
            allow_training_mode: self.allow_training_mode,
            labels: LabelFlags {
                skip_bad_images: self.skip_bad_images,
                coarse_labels: self.coarse_labels,
                class_folders: self.class_folders,
                folder_map,
                drop_unscored: self.drop_unscored,
            },
            shard,
            resume: self.resume,
            cache_dir: (!self.no_cache)
                .then(|| self.cache_dir.clone().unwrap_or_else(default_cache_dir)),
            no_predictions: self.no_predictions,
            no_report: self.no_report,
            quiet: self.quiet,
            gate,
            save_baseline: self.save_baseline,
            save_baseline_on_failure: self.save_baseline_on_failure,
            report_url: self.report_url.clone(),
            baseline_dir,
        })
    }
}

impl SweepArgs {
    /// Whether `--data` is read without labels: a folder of images without class
    /// folders, under a protocol whose figures need none. What needs labels is
    /// refused beside it, before any work.
    fn unlabelled(&self, protocol: Option<&Protocol>) -> Result<bool> {
        let flat = rotbench::dataset::is_image_folder(&self.data)
            && rotbench::dataset::folder::is_flat(&self.data);
        if !flat || protocol.is_none_or(|p| p.needs_labels()) {
            return Ok(false);
        }
        let data = self.data.display();
        let refused = [
            ("--gate-config", self.gate_config.is_some()),
            ("--save-baseline", self.save_baseline.is_some()),
            ("--shard", self.shard.is_some()),
            ("--worst-of", self.worst_of.is_some()),
            ("--grid-early-stop", self.grid_early_stop),
            ("--class-folders", self.class_folders.is_some()),
            ("--class-folder-map", self.class_folder_map.is_some()),
            ("--drop-unscored", self.drop_unscored),
        ];
        if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
            bail!(
                "{flag}: --data {data} is a folder of images without class folders, read without labels, and {flag} needs labels; put the images in one subfolder per class, or drop {flag}"
            );
        }
        Ok(true)
    }
}

/// The models' names: the one given (`NAME=PATH`), else the file stem, else the
/// file name when two stems collide (`fmnist.pt`, `fmnist.pt2`, `fmnist.onnx`).
/// Two models with the same name are refused.
fn model_names(args: &[ModelArg]) -> Result<Vec<(String, PathBuf)>> {
    let part = |p: &PathBuf, f: fn(&std::path::Path) -> Option<&std::ffi::OsStr>| {
        f(p).map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned())
    };
    let stem = |p: &PathBuf| part(p, std::path::Path::file_stem);
    let mut out: Vec<(String, PathBuf)> = Vec::with_capacity(args.len());
    for a in args {
        let name = match &a.name {
            Some(n) => n.clone(),
            None if args
                .iter()
                .filter(|b| b.name.is_none() && stem(&b.path) == stem(&a.path))
                .count()
                > 1 =>
            {
                part(&a.path, std::path::Path::file_name)
            }
            None => stem(&a.path),
        };
        if let Some((_, prev)) = out.iter().find(|(n, _)| *n == name) {
            bail!(
                "--model {}: another model is also named `{name}` ({}); name them yourself with --model NAME=PATH",
                a.path.display(),
                prev.display()
            );
        }
        out.push((name, a.path.clone()));
    }
    Ok(out)
}

impl SweepArgs {
    /// `--protocol` and `--relative-to`, checked: the protocol with what the run
    /// records of it (its model-input settings become `spec`'s lowest layer), and
    /// the reference run's one model, read now rather than after the sweep.
    #[allow(clippy::type_complexity)]
    fn protocol(
        &self,
        spec: &mut SpecFlags,
    ) -> Result<(
        Option<(&'static Protocol, ProtocolUse)>,
        Option<protocols::Reference>,
    )> {
        let protocol = match (&self.protocol, self.protocol_use.clone()) {
            (None, _) => None,
            (Some(name), used) => {
                let p = protocols::find(name).ok_or_else(|| {
                    anyhow!(
                        "--protocol {name}: no such protocol; use one of {}",
                        protocols::names()
                    )
                })?;
                let mut used = used.unwrap_or_else(|| p.record(vec![]));
                used.relative_to = self.relative_to.as_ref().map(|d| d.display().to_string());
                if self.relative_to.is_some() && p.figures != protocols::Figures::Stability {
                    bail!("--relative-to: the {} protocol has no relative figures (imagenet-p-rotate does)", p.name);
                }
                spec.protocol = Some((p.name.to_string(), p.spec_layer()));
                Some((p, used))
            }
        };
        // The reference is read and checked now, not after the sweep.
        let relative_to = match (&self.relative_to, &protocol) {
            (Some(dir), Some((p, _))) => {
                let file = if dir.is_dir() {
                    dir.join("summary.json")
                } else {
                    dir.clone()
                };
                let v: serde_json::Value =
                    crate::commands::report::read_json(&file, "rotbench summary.json")
                        .map_err(|e| anyhow!("--relative-to: {e:#}"))?;
                Some(
                    protocols::reference_model(dir, v, p, self.difficulty)
                        .map_err(|e| anyhow!(e))?,
                )
            }
            _ => None,
        };
        Ok((protocol, relative_to))
    }
}
