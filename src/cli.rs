//! Command-line interface: clap parses raw arguments, then each command's
//! `check()` turns them into a validated config with errors that name the flag.

use anyhow::{anyhow, bail, Result};
use clap::{Args, Parser, Subcommand};
use rotbench::dataset::ClassFolders;
use rotbench::protocols::human16;
use rotbench::results::BatchSize;
use rotbench::rotate::{Fill, Interpolation, RotateOptions};
use rotbench::spec::{
    read_classes_file, read_map_file, read_subset_file, ChannelOrder, CropOrder, Grayscale,
    GroupRule, OutputKind, SpecFlags,
};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rotbench",
    version,
    about = "Rotation-robustness evaluation for image classifiers (TorchScript, torch.export .pt2, ONNX)",
    long_about = "Sweeps a labelled test set across rotation angles and reports accuracy, \
precision/recall/F1, confusion matrices and invariance measures at every angle.\n\n\
Angles are degrees, counter-clockwise positive (as torchvision and PIL), about the image centre.\n\
Exit codes: 0 success, 1 a failed gate, 2 an error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sweep models over a dataset at many rotation angles and write the results.
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Sweep(SweepArgs),
    /// Rotate one image exactly as the sweep reads and rotates it, and write it (format from the output name).
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Rotate(RotateArgs),
    /// Print the spec a model will be run with, where each field came from, and its output width.
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Inspect(InspectArgs),
    /// Re-render the plots and index.html of an existing output folder (no model runs).
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Report(ReportArgs),
    /// Check results against thresholds and a saved baseline: exit 0 pass, 1 fail, 2 error.
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Gate(GateArgs),
    /// Merge the results of `sweep --shard i/n` runs into exactly what one run writes.
    // Numbers may be negative (`--fill -0.1`, `--angles -30:30:5`).
    #[command(allow_negative_numbers = true)]
    Merge(MergeArgs),
    /// Sweep the three bundled MNIST models over the bundled MNIST test set and write the report.
    #[command(allow_negative_numbers = true)]
    Demo(DemoArgs),
    /// Check the install: rotbench's build, the libtorch in use, CPU and CUDA, and one
    /// forward pass of a bundled model on each device. Exit 0 when all is well, 2 when not.
    Doctor(DoctorArgs),
    /// List the published protocols `sweep --protocol NAME` runs: what each sets,
    /// where every number comes from, and how rotbench's figures differ from the
    /// published data.
    Protocols(ProtocolsArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions(CompletionsArgs),
    /// Print the CLI reference generated from these definitions (`make docs-cli`).
    #[command(hide = true)]
    Reference(ReferenceArgs),
}

#[derive(Args, Debug)]
pub struct ProtocolsArgs {
    /// One protocol (default: all).
    pub name: Option<String>,
    /// Markdown tables (docs/protocols.md is this output).
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell, e.g. `rotbench completions bash > ~/.local/share/bash-completion/completions/rotbench`.
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ReferenceArgs {
    #[arg(value_enum)]
    pub format: ReferenceFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReferenceFormat {
    /// docs/cli.md.
    Markdown,
    /// docs/rotbench.1 (roff).
    Man,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder (index.html, CSVs, JSON, plots).
    #[arg(long, default_value = "rotbench-demo", value_name = "DIR")]
    pub out: PathBuf,
    /// Angles: as `sweep --angles`.
    #[arg(long, default_value = "0:360:5", value_name = "SPEC")]
    pub angles: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// More `sweep` flags, after `--` (e.g. `-- --limit 1000 --quiet`).
    #[arg(last = true, value_name = "SWEEP FLAGS")]
    pub sweep: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Devices to check besides the CPU: all (every GPU libtorch sees), cpu (none),
    /// cuda or cuda:N (that GPU; then a missing GPU is a failure).
    #[arg(long, default_value = "all", value_name = "DEVICE")]
    pub device: String,
}

#[derive(Args, Debug, Clone)]
pub struct SpecArgs {
    /// Model input as CxHxW (e.g. 1x28x28); overrides the sidecar.
    #[arg(long, value_name = "CxHxW")]
    pub input_size: Option<String>,
    /// Mean on the [0,1] pixel scale: one value, or one per channel (comma-separated).
    #[arg(long, value_name = "V[,V,V]", allow_hyphen_values = true)]
    pub mean: Option<String>,
    /// Std on the [0,1] pixel scale: one value, or one per channel.
    #[arg(long, value_name = "V[,V,V]")]
    pub std: Option<String>,
    /// Class names, one per line, in the model's output order (overrides the spec's
    /// `classes`). Labels that are names (a manifest's `label`, a class folder's
    /// name) name these classes; labels that are numbers index them.
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// Resize before the centre crop: N (shorter side, aspect kept) or HxW (exact).
    /// Default: resize straight to the input size when an image differs from it.
    #[arg(long, value_name = "N|HxW")]
    pub resize: Option<String>,
    /// rotate-then-crop (default: rotate the resized image, then centre-crop, so the
    /// corners come from image content) or crop-then-rotate (rotate the model's input).
    #[arg(long, value_name = "ORDER")]
    pub order: Option<CropOrder>,
    /// Channel order the model expects: rgb (default) or bgr.
    #[arg(long, value_name = "rgb|bgr")]
    pub channel_order: Option<ChannelOrder>,
    /// Pixel scale before mean/std: 1 ([0,1], default) or 255 ([0,255]).
    #[arg(long, value_name = "1|255", value_parser = value_range)]
    pub value_range: Option<f32>,
    /// For a model whose forward returns a tuple (or list): the element that holds
    /// the logits (default 0).
    #[arg(long, value_name = "N", conflicts_with = "output_key")]
    pub output_index: Option<usize>,
    /// For a model whose forward returns a dict: the key of the logits.
    #[arg(long, value_name = "NAME")]
    pub output_key: Option<String>,
    /// What the model outputs: logits, probabilities (it ends in a softmax) or
    /// log-probabilities (a log-softmax). Default: decided from the outputs on a
    /// probe batch (rows that are non-negative and sum to 1 are probabilities),
    /// checked again on the first batch, and recorded in summary.json; a declared
    /// kind the outputs contradict is an error.
    #[arg(long, value_name = "KIND")]
    pub output_kind: Option<OutputKind>,
    /// Score only some of the model's classes: a file with one model class (name or
    /// index) per line, in the dataset's class order. The logits are restricted to
    /// them before the softmax and the argmax (ImageNet-R/A style).
    #[arg(long, value_name = "FILE", conflicts_with = "class_map")]
    pub class_subset: Option<PathBuf>,
    /// Score coarse classes: a file of `model class,coarse class` lines. A coarse
    /// class's probability is the sum of its model classes' probabilities,
    /// renormalised over the mapped classes; unmapped model classes are dropped.
    #[arg(long, value_name = "FILE")]
    pub class_map: Option<PathBuf>,
    /// How a coarse class of --class-map gets its probability from its model
    /// classes': sum (default), mean (model-vs-human's 16-class decision) or max.
    #[arg(long, value_name = "RULE", requires = "class_map")]
    pub class_map_rule: Option<GroupRule>,
    /// How colour becomes grey, for a one-channel model and with --desaturate: pil
    /// (PIL's convert("L"), the default) or rec709 (scikit-image's rgb2gray weights,
    /// truncated to 8 bits, as model-vs-human's stimuli were made).
    #[arg(long, value_name = "MODE")]
    pub grayscale: Option<Grayscale>,
    /// Make every image grey (the --grayscale formula) and give the model that grey
    /// in each of its channels, as model-vs-human's rotation stimuli are.
    #[arg(long)]
    pub desaturate: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RotationArgs {
    /// Interpolation: nearest, bilinear, bicubic, or pil-bilinear (Pillow 8-bit, as ImageNet-P made its frames).
    #[arg(long, value_enum, default_value_t = Interpolation::Bilinear, value_name = "MODE")]
    pub interpolation: Interpolation,
    /// Fill for pixels rotated in from outside: a constant on the [0,1] scale (0 = black), `edge` or `reflect`.
    #[arg(long, default_value = "0", value_name = "V|edge|reflect", value_parser = clap::value_parser!(Fill))]
    pub fill: Fill,
    /// Blank everything outside the inscribed circle at every angle (0 included).
    #[arg(long)]
    pub mask_circle: bool,
}

/// `--rotate-on`: where images are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RotateOnFlag {
    /// On the models' device for CUDA, on the host otherwise.
    Auto,
    /// On the CPU, overlapped with inference.
    #[value(alias = "cpu")]
    Host,
    /// With libtorch ops on the models' device, from one upload per batch.
    Device,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Model file: TorchScript (.pt), torch.export AOTInductor package (.pt2) or ONNX
    /// (.onnx), recognised by content; its spec from flags, a sidecar MODEL.json or
    /// the spec embedded in the file. Repeat for several models. A model is named by
    /// its file stem, or by its file name when stems collide (`m.pt`, `m.onnx`);
    /// `NAME=PATH` names it yourself.
    #[arg(long = "model", value_name = "[NAME=]PATH", required = true, value_parser = model_arg)]
    pub models: Vec<ModelArg>,
    /// Dataset: an MNIST IDX folder or images file (raw or .gz); a CIFAR-10/100
    /// binary batch (.bin) or its folder; a CSV manifest (a `path` column, paths
    /// relative to the CSV, and a `label` column of class names or a `label_index`
    /// column of indices into the model's classes); or an image folder (one subfolder
    /// per class, read as torchvision's ImageFolder reads it: its extensions and its
    /// sample order; folders named after classes, or by class index; otherwise see
    /// --class-folder-map; hidden folders and __MACOSX are left out and listed).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Image folders: `names` labels each class folder with the class of that name
    /// (all must be classes); `indices` reads numeric folder names as indices into
    /// the model's classes; `sorted` numbers the folders 0, 1, ... in sorted order, as
    /// torchvision's ImageFolder does (warned and recorded when the names are not
    /// the classes). Default: by name when every folder names a class, as indices
    /// when every folder name is a number, else an error naming the others.
    #[arg(long, value_name = "names|indices|sorted")]
    pub class_folders: Option<ClassFolders>,
    /// Image folders: which class each folder holds, a file of `folder,class` lines
    /// (the class by name, or by index into the model's classes). For folder names
    /// that cannot be class names (a class name holding `/`) or that differ.
    #[arg(long, value_name = "FILE", conflicts_with = "class_folders")]
    pub class_folder_map: Option<PathBuf>,
    /// Leave out samples whose class is not scored (outside --class-subset, or in no
    /// group of --class-map), counted in summary.json, instead of stopping at the first.
    #[arg(long)]
    pub drop_unscored: bool,
    /// A published protocol's settings in one flag: imagenet-p-rotate,
    /// model-vs-human-rotation, spatial-cifar or spatial-imagenet (`rotbench
    /// protocols` lists what each sets, with sources). A flag given beside it
    /// overrides that setting, with a note; a model's own normalisation and input
    /// size are kept.
    #[arg(long, value_name = "NAME")]
    pub protocol: Option<String>,
    /// Angles in degrees, counter-clockwise: a list `0,90,180` or a range `start:stop:step` (stop excluded).
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    pub angles: String,
    /// Flips and ranking distances compare each angle with the angle D places on in
    /// the sweep (ImageNet-P's difficulty: 1, the next angle, is the default).
    #[arg(long, default_value_t = 1, value_name = "D", value_parser = positive)]
    pub difficulty: usize,
    /// With --protocol imagenet-p-rotate: a reference run's output folder (one model,
    /// the same protocol); the flip probability and top-5 distance are also given
    /// divided by its (the paper divides by AlexNet's).
    #[arg(long, value_name = "DIR", requires = "protocol")]
    pub relative_to: Option<PathBuf>,
    /// What --protocol set and what flags beside it changed (filled after parsing).
    #[arg(skip)]
    pub protocol_use: Option<rotbench::protocols::ProtocolUse>,
    /// Translations after the rotation, on both axes as a grid (dx x dy), with a
    /// required unit: `px` (pixels of the model's input) or `%` (of its width and
    /// height), as a list `-3,0,3px` or a range `-3:4.5:1.5px` (stop excluded).
    /// Positive dx moves the content right, positive dy down; rotation and
    /// translation are sampled once (torchvision's `F.affine(angle=-θ, translate=[dx, dy])`).
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    pub translate: Option<String>,
    /// Worst-of-K (Engstrom et al. 2019): K random poses per sample, uniform over the
    /// ranges --angles and --translate span (continuous), drawn with --seed; a sample
    /// counts only when every draw is right. Reports worst-of-K accuracy, the first
    /// draw's ("random") accuracy, and each sample's draws in predictions.csv with
    /// its worst marked.
    #[arg(long, value_name = "K", value_parser = positive)]
    pub worst_of: Option<usize>,
    /// Grid accuracy only, as the published grid attack runs: skip a sample's
    /// remaining grid points once it is wrong at one. Saves evaluations; the other
    /// points' figures are then incomplete, so they are left out (summary.json says
    /// so), and the prediction cache is not used.
    #[arg(long)]
    pub grid_early_stop: bool,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Images per forward pass, or `auto`: time 64, 128, 256 and 512 on the first
    /// batches (their results are kept; stop at the first slower one) and use the fastest.
    /// `auto` skips sizes whose float input exceeds 64 MiB (224x224 RGB: 64 only).
    /// TorchScript on the CPU runs images up to 64x64 RGB in slices of 64 rows whatever
    /// the batch: there `auto` times nothing and takes the largest size (512, doubled
    /// from 5 threads and again from 9).
    #[arg(long, default_value = "auto", value_name = "N|auto", value_parser = clap::value_parser!(BatchSize))]
    pub batch_size: BatchSize,
    /// Use only the first N samples.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub limit: Option<usize>,
    /// Use a class-stratified random sample of N samples, drawn with --seed: each
    /// class gets its proportional share (largest remainders), the same samples for
    /// the same seed and data. The fair alternative to --limit for quick runs.
    #[arg(long, value_name = "N", value_parser = positive, conflicts_with = "limit")]
    pub sample: Option<usize>,
    /// K of top-K accuracy and of the top-K ranking distance between neighbouring
    /// angles (both omitted for a model with K classes or fewer).
    #[arg(long, default_value_t = 5, value_name = "K", value_parser = positive)]
    pub top_k: usize,
    /// Bootstrap replicates behind the 95% intervals of macro-F1, consistency, ECE,
    /// the flip rate and the model-vs-model differences (0: no intervals).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap: usize,
    /// Seed of the bootstrap's resampling, of --sample's draw and of --worst-of's
    /// poses (counter-based: the same seed gives the same draw whatever the threads,
    /// batches, shards or resumes).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// Where images are rotated: host (CPU, overlapped with inference), device (libtorch
    /// ops on the model's device from one upload per batch) or auto (device for CUDA).
    #[arg(long, value_enum, default_value_t = RotateOnFlag::Auto, value_name = "WHERE")]
    pub rotate_on: RotateOnFlag,
    /// CPU threads for the forward passes (default: all cores). TorchScript on the CPU
    /// runs small images' batches as 64-row slices on N threads; ONNX Runtime, .pt2
    /// packages and larger images use N intra-op threads.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub rotation: RotationArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Skip images that fail to decode (and count them) instead of stopping.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// CIFAR-100: evaluate against the coarse (20 superclass) labels instead of the fine ones.
    #[arg(long)]
    pub coarse_labels: bool,
    /// Do not write predictions.csv (it has one row per model x angle x sample).
    #[arg(long)]
    pub no_predictions: bool,
    /// Run each model exactly as loaded, without torch.jit.freeze + optimize_for_inference.
    #[arg(long)]
    pub exact: bool,
    /// Run a model traced in training mode (without .eval(): Dropout active, BatchNorm
    /// on batch statistics) as saved, instead of refusing it. Its results change
    /// from run to run; summary.json carries a warning and the cache is not used.
    #[arg(long)]
    pub allow_training_mode: bool,
    /// Continue an interrupted run in the same --out folder (same arguments) without
    /// recomputing finished batches.
    #[arg(long)]
    pub resume: bool,
    /// Evaluate a deterministic part of the samples and write a shard result for
    /// `rotbench merge`: `i/n` (0-based) or `auto` (from JOB_COMPLETION_INDEX/JOB_COMPLETIONS;
    /// a Slurm array task's position (ID - MIN) / STEP of SLURM_ARRAY_TASK_COUNT, so any evenly
    /// spaced --array works; or ROTBENCH_SHARD_INDEX/ROTBENCH_SHARD_COUNT).
    #[arg(long, value_name = "i/n|auto")]
    pub shard: Option<String>,
    /// Ignore and do not update the prediction cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Prediction cache folder (default: $XDG_CACHE_HOME/rotbench/predictions or ~/.cache/rotbench/predictions).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Do not write the plots and index.html.
    #[arg(long)]
    pub no_report: bool,
    /// Store these results (predictions included) as a named baseline for `gate --baseline`.
    /// With --gate-config, the baseline is saved only when the gate passed.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Save the --save-baseline even when the --gate-config gate failed (the failing
    /// run then becomes the baseline that later runs compare with).
    #[arg(long, requires = "save_baseline")]
    pub save_baseline_on_failure: bool,
    /// The HTML report's URL or path (a CI artifact, a Pages site), linked from the
    /// gate's output and Markdown.
    #[arg(long, value_name = "URL", requires = "gate_config")]
    pub report_url: Option<String>,
    /// Where baselines live (overrides `baseline_dir` in the --gate-config table)
    /// [default: .rotbench/baselines].
    #[arg(long, value_name = "DIR")]
    pub baseline_dir: Option<PathBuf>,
    /// Gate the results right after the sweep with the [gate] table of this TOML file (exit 1 on failure).
    #[arg(long, value_name = "FILE")]
    pub gate_config: Option<PathBuf>,
    /// No progress bar and no table on stdout.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard output folders written by `sweep --shard i/n`, all n of them.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Output folder for the merged results.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Do not write predictions.csv.
    #[arg(long)]
    pub no_predictions: bool,
    /// Do not write the plots and index.html.
    #[arg(long)]
    pub no_report: bool,
    /// No table on stdout.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// An output folder written by `rotbench sweep` (holds summary.json).
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone, Default)]
pub struct GateArgs {
    /// summary.json written by `rotbench sweep` (or its folder).
    #[arg(long, value_name = "FILE")]
    pub results: PathBuf,
    /// Checks from the [gate] table of a TOML file; flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Minimum accuracy at every checked angle (holds at equality).
    #[arg(long, value_name = "A")]
    pub min_accuracy: Option<f64>,
    /// Minimum mean accuracy over the checked angles.
    #[arg(long, value_name = "A")]
    pub min_mean_accuracy: Option<f64>,
    /// Maximum accuracy drop acc(0) - acc(angle) at every checked angle.
    #[arg(long, value_name = "D")]
    pub max_drop: Option<f64>,
    /// Minimum consistency (same prediction as at 0 degrees) at every checked angle.
    #[arg(long, value_name = "C")]
    pub min_consistency: Option<f64>,
    /// Minimum worst-of-sweep accuracy: the share of samples correct at every swept
    /// angle, or with --translate at every point of the grid (grid accuracy; the
    /// same check as --min-grid-accuracy).
    #[arg(long, value_name = "W", visible_alias = "min-grid-accuracy")]
    pub min_worst_of_sweep: Option<f64>,
    /// Minimum worst-of-K accuracy (a sweep with --worst-of K): the share of samples
    /// right at every one of their K random poses.
    #[arg(long, value_name = "W")]
    pub min_worst_of_k_accuracy: Option<f64>,
    /// Maximum expected calibration error (15 bins, L1) at every checked angle.
    #[arg(long, value_name = "E")]
    pub max_ece: Option<f64>,
    /// Maximum flip probability: the mean share of samples whose prediction changes
    /// between neighbouring angles (over the whole sweep).
    #[arg(long, value_name = "F")]
    pub max_flip_probability: Option<f64>,
    /// Minimum top-K accuracy at every checked angle (K as swept with --top-k).
    #[arg(long, value_name = "A")]
    pub min_top_k_accuracy: Option<f64>,
    /// Limit the checked angles (same syntax as sweep --angles).
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    pub angles: Option<String>,
    /// Limit the checked models (repeatable).
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Baseline name (under --baseline-dir) or path to compare with.
    #[arg(long, value_name = "NAME|PATH")]
    pub baseline: Option<String>,
    /// Where named baselines live (overrides the --config table's `baseline_dir`)
    /// [default: .rotbench/baselines].
    #[arg(long, value_name = "DIR")]
    pub baseline_dir: Option<PathBuf>,
    /// Largest tolerated accuracy fall against the baseline at any angle.
    #[arg(long, value_name = "R")]
    pub max_regression: Option<f64>,
    /// Significance level for the exact McNemar test against the baseline
    /// (overrides the --config table's `significance`) [default: 0.05].
    #[arg(long, value_name = "ALPHA")]
    pub significance: Option<f64>,
    /// A model missing from the baseline passes the regression check (with a note)
    /// instead of failing it. Without it, a model or angle with nothing to compare fails.
    #[arg(long)]
    pub allow_new_models: bool,
    /// A baseline model missing from the results, or a baseline angle missing from
    /// a model's results, passes the regression check with a note instead of
    /// failing it (it left on purpose). Without it, anything of the baseline that
    /// was never compared fails.
    #[arg(long)]
    pub allow_missing: bool,
    /// With --baseline: a threshold check fails only at angles where the baseline
    /// passes it; failures the baseline has too are marked "already failing" and
    /// noted (judge a pull request on what it changes).
    #[arg(long, requires = "baseline")]
    pub only_new_failures: bool,
    /// Write JUnit XML (one testcase per model x check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown table (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// The HTML report's URL or path (a CI artifact, a Pages site), linked from the
    /// gate's output and Markdown.
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// Angle in degrees, counter-clockwise positive.
    #[arg(long, allow_hyphen_values = true)]
    pub angle: String,
    #[command(flatten)]
    pub rotation: RotationArgs,
    /// Input image: any format the sweep reads (PNG, JPEG, BMP, WebP, TIFF,
    /// PPM/PGM, GIF), recognised by its content, not its name.
    pub input: PathBuf,
    /// Output image, in the format its extension names (.png, .jpg, .bmp, .tif,
    /// .webp, .ppm, .pgm). Same size as the input; 8-bit grey when the input holds
    /// one grey channel (L, LA, 16-bit grey), else 8-bit RGB, as the sweep reads it
    /// (PIL's convert("RGB"): alpha dropped, palettes expanded, 16-bit colour to
    /// its high byte, 16-bit grey clipped at 255).
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Model file: TorchScript (.pt), AOTInductor package (.pt2) or ONNX (.onnx).
    pub model: PathBuf,
    /// Also show how this image folder's class folders map to the model's classes.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// With --data: as `sweep --class-folders`.
    #[arg(long, value_name = "names|indices|sorted", requires = "data")]
    pub class_folders: Option<ClassFolders>,
    /// With --data: as `sweep --class-folder-map`.
    #[arg(
        long,
        value_name = "FILE",
        requires = "data",
        conflicts_with = "class_folders"
    )]
    pub class_folder_map: Option<PathBuf>,
    /// With --data: as `sweep --drop-unscored`.
    #[arg(long, requires = "data")]
    pub drop_unscored: bool,
    /// Load the model as is, without freeze + optimize_for_inference.
    #[arg(long)]
    pub exact: bool,
    /// Show the spec as `sweep --protocol NAME` runs the model: the protocol's
    /// input settings beneath the model's own.
    #[arg(long, value_name = "NAME")]
    pub protocol: Option<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `--model [NAME=]PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArg {
    pub name: Option<String>,
    pub path: PathBuf,
}

/// `NAME=PATH` when the text before the first `=` is a name (no path separator)
/// and the whole value is not itself a file; otherwise a path.
fn model_arg(v: &str) -> std::result::Result<ModelArg, String> {
    let plain = ModelArg {
        name: None,
        path: PathBuf::from(v),
    };
    match v.split_once('=') {
        Some((name, path)) if !name.contains('/') && !PathBuf::from(v).exists() => {
            if name.trim().is_empty() || path.is_empty() {
                return Err("give NAME=PATH with both parts, or a path".into());
            }
            Ok(ModelArg {
                name: Some(name.trim().to_string()),
                path: PathBuf::from(path),
            })
        }
        _ => Ok(plain),
    }
}

/// A positive whole number (clap names the flag and the value in its error).
fn positive(v: &str) -> std::result::Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number; give a positive integer".into()),
    }
}

/// `--value-range`: 1 (pixels in [0,1]) or 255 (pixels in [0,255]).
fn value_range(v: &str) -> std::result::Result<f32, String> {
    match v.trim() {
        "1" | "1.0" => Ok(1.0),
        "255" | "255.0" => Ok(255.0),
        _ => Err("use 1 (pixels in [0,1]) or 255 (pixels in [0,255])".into()),
    }
}

fn floats(flag: &str, v: &str) -> Result<Vec<f32>> {
    v.split(',')
        .map(|s| {
            let x: f32 = s.trim().parse().map_err(|_| anyhow!("{flag} {v}: `{s}` is not a number; give one value or one per channel, comma-separated"))?;
            if !x.is_finite() {
                bail!("{flag} {v}: values must be finite");
            }
            Ok(x)
        })
        .collect()
}

impl SpecArgs {
    pub fn check(&self) -> Result<SpecFlags> {
        let input = match &self.input_size {
            None => None,
            Some(s) => {
                let parts: Vec<&str> = s.split(['x', 'X', ',']).collect();
                let dims: Option<Vec<usize>> =
                    parts.iter().map(|p| p.trim().parse().ok()).collect();
                match dims {
                    Some(d) if d.len() == 3 => Some([d[0], d[1], d[2]]),
                    _ => bail!("--input-size {s}: expected CxHxW, e.g. 1x28x28 or 3x224x224"),
                }
            }
        };
        Ok(SpecFlags {
            input,
            mean: self
                .mean
                .as_deref()
                .map(|v| floats("--mean", v))
                .transpose()?,
            std: self
                .std
                .as_deref()
                .map(|v| floats("--std", v))
                .transpose()?,
            classes: match &self.classes {
                None => None,
                Some(p) => Some((p.clone(), read_classes_file(p)?)),
            },
            resize: self
                .resize
                .as_deref()
                .map(|v| v.parse().map_err(|e: String| anyhow!("--resize {v}: {e}")))
                .transpose()?,
            order: self.order,
            channel_order: self.channel_order,
            value_range: self.value_range,
            output_index: self.output_index,
            output_key: self.output_key.clone(),
            output: self.output_kind,
            class_subset: match &self.class_subset {
                None => None,
                Some(p) => Some((p.clone(), read_subset_file(p)?)),
            },
            class_map: match &self.class_map {
                None => None,
                // `model-vs-human-16` (when no file has that name): the bundled map.
                Some(p) if p.as_os_str() == human16::MAP_NAME && !p.exists() => {
                    Some((p.clone(), human16::lines()))
                }
                Some(p) => Some((p.clone(), read_map_file(p)?)),
            },
            class_map_rule: self.class_map_rule,
            protocol: None,
            index_labels: false,
            grayscale: self.grayscale,
            desaturate: self.desaturate.then_some(true),
        })
    }
}

impl RotationArgs {
    /// The rotation these flags ask for (clap has parsed and checked each).
    pub fn options(&self) -> RotateOptions {
        RotateOptions {
            interpolation: self.interpolation,
            fill: self.fill,
            mask_circle: self.mask_circle,
        }
    }
}

/// Parse `--shard i/n` or `auto` (reading the job engines' variables from `env`).
///
/// A Slurm array task's shard is its position in the array, `(ID - MIN) / STEP`
/// of `COUNT` (`SLURM_ARRAY_TASK_*`; MIN 0 and STEP 1 when unset), so
/// `--array=0-3`, `1-4` and `0-6:2` all give shards 0..4 of 4.
pub fn parse_shard(v: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(usize, usize)> {
    let whole = |text: &str, what: &str, from: &str| -> Result<usize> {
        text.trim().parse().map_err(|_| {
            anyhow!("--shard {v}: {what} `{text}` (from {from}) is not a whole number")
        })
    };
    let (i, n, from) = if v == "auto" {
        if let (Some(id), Some(count)) = (env("JOB_COMPLETION_INDEX"), env("JOB_COMPLETIONS")) {
            let from = "JOB_COMPLETION_INDEX/JOB_COMPLETIONS";
            (
                whole(&id, "index", from)?,
                whole(&count, "count", from)?,
                from,
            )
        } else if let (Some(id), Some(count)) =
            (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
        {
            let from = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT";
            let var = |name: &str, unset: usize| match env(name) {
                Some(t) => whole(&t, "value", name),
                None => Ok(unset),
            };
            let id = whole(&id, "index", "SLURM_ARRAY_TASK_ID")?;
            let count = whole(&count, "count", "SLURM_ARRAY_TASK_COUNT")?;
            let min = var("SLURM_ARRAY_TASK_MIN", 0)?;
            let step = var("SLURM_ARRAY_TASK_STEP", 1)?;
            if step == 0 || id < min || (id - min) % step != 0 {
                bail!("--shard auto: Slurm task {id} is not SLURM_ARRAY_TASK_MIN ({min}) plus a whole multiple of SLURM_ARRAY_TASK_STEP ({step}); give the job an evenly spaced array such as --array=0-3, --array=1-4 or --array=0-6:2, or pass --shard i/n");
            }
            let index = (id - min) / step;
            if index >= count {
                bail!("--shard auto: Slurm task {id} is shard {index} ((ID - MIN) / STEP) but SLURM_ARRAY_TASK_COUNT is {count}; give the job an evenly spaced array such as --array=0-3, --array=1-4 or --array=0-6:2 (a list like 1,3,8 is not), or pass --shard i/n");
            }
            (index, count, from)
        } else if let (Some(id), Some(count)) =
            (env("ROTBENCH_SHARD_INDEX"), env("ROTBENCH_SHARD_COUNT"))
        {
            let from = "ROTBENCH_SHARD_INDEX/ROTBENCH_SHARD_COUNT";
            (
                whole(&id, "index", from)?,
                whole(&count, "count", from)?,
                from,
            )
        } else {
            bail!("--shard auto: none of JOB_COMPLETION_INDEX/JOB_COMPLETIONS, SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or ROTBENCH_SHARD_INDEX/ROTBENCH_SHARD_COUNT is set; set one pair or pass --shard i/n");
        }
    } else {
        let Some((i, n)) = v.split_once('/') else {
            bail!("--shard {v}: expected i/n with 0 <= i < n, e.g. 0/4, or auto");
        };
        let from = "--shard";
        (whole(i, "index", from)?, whole(n, "count", from)?, from)
    };
    if n == 0 || i >= n {
        bail!("--shard {v}: need 0 <= index < count, got index {i} and count {n} (from {from}); indices are 0-based");
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_from_flags_and_job_engines() {
        let none = |_: &str| None;
        assert_eq!(parse_shard("1/3", &none).unwrap(), (1, 3));
        assert!(parse_shard("3/3", &none)
            .unwrap_err()
            .to_string()
            .contains("0-based"));
        assert!(parse_shard("x", &none).is_err());
        assert!(parse_shard("auto", &none)
            .unwrap_err()
            .to_string()
            .contains("JOB_COMPLETION_INDEX"));
        let k8s = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            "JOB_COMPLETIONS" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(parse_shard("auto", &k8s).unwrap(), (2, 4));
        let slurm = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("0".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("5".to_string()),
            _ => None,
        };
        assert_eq!(parse_shard("auto", &slurm).unwrap(), (0, 5));
    }

    /// The environment of task `id` of a Slurm array.
    fn slurm(id: usize, min: usize, step: usize, count: usize) -> impl Fn(&str) -> Option<String> {
        move |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some(id.to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some(min.to_string()),
            "SLURM_ARRAY_TASK_MAX" => Some((min + step * (count - 1)).to_string()),
            "SLURM_ARRAY_TASK_STEP" => Some(step.to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some(count.to_string()),
            _ => None,
        }
    }

    #[test]
    fn slurm_arrays_0_3_1_4_and_0_6_step_2_give_shards_0_to_3_of_4() {
        // Issue #16 item 8: `--array=1-4` lost shard 0 and failed task 4.
        for (min, step) in [(0, 1), (1, 1), (0, 2)] {
            let got: Vec<(usize, usize)> = (0..4)
                .map(|k| parse_shard("auto", &slurm(min + k * step, min, step, 4)).unwrap())
                .collect();
            assert_eq!(
                got,
                vec![(0, 4), (1, 4), (2, 4), (3, 4)],
                "min {min} step {step}"
            );
        }
        // Without MIN and STEP, the task id is the index.
        let bare = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("3".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(parse_shard("auto", &bare).unwrap(), (3, 4));
    }

    #[test]
    fn slurm_tasks_off_the_array_step_or_past_its_count_are_refused() {
        let err = |env: &dyn Fn(&str) -> Option<String>| {
            parse_shard("auto", env).unwrap_err().to_string()
        };
        let off = err(&slurm(3, 0, 2, 4));
        assert!(
            off.contains("SLURM_ARRAY_TASK_STEP (2)") && off.contains("--array=0-6:2"),
            "{off}"
        );
        assert!(err(&slurm(0, 1, 1, 4)).contains("SLURM_ARRAY_TASK_MIN (1)"));
        // `--array=1,3,8`: COUNT 3, and task 8 is past it.
        let list = err(&slurm(8, 1, 1, 3));
        assert!(
            list.contains("shard 7") && list.contains("COUNT is 3"),
            "{list}"
        );
        let bad = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("2".to_string()),
            "SLURM_ARRAY_TASK_STEP" => Some("two".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some("4".to_string()),
            _ => None,
        };
        assert!(err(&bad).contains("`two` (from SLURM_ARRAY_TASK_STEP)"));
    }
}

/// `sweep --protocol NAME`: add the protocol's sweep flags that the user did not
/// give to `argv`, and record which of its settings (sweep or model input) the
/// user's flags change. Done on the raw arguments, before clap, because the
/// protocol supplies required flags (`--angles`). Other commands pass through.
pub fn expand_protocol(
    argv: Vec<std::ffi::OsString>,
) -> Result<(
    Vec<std::ffi::OsString>,
    Option<rotbench::protocols::ProtocolUse>,
)> {
    use rotbench::protocols::{self, Override};
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if words.get(1).map(String::as_str) != Some("sweep") {
        return Ok((argv, None));
    }
    // Each `--flag` given, with its value (`--flag=v` or the next word).
    let mut given: Vec<(String, String)> = vec![];
    for (i, w) in words.iter().enumerate().skip(2) {
        if let Some(rest) = w.strip_prefix("--") {
            let (flag, value) = match rest.split_once('=') {
                Some((f, v)) => (format!("--{f}"), v.to_string()),
                None => {
                    let next = words.get(i + 1).filter(|n| !n.starts_with("--"));
                    (format!("--{rest}"), next.cloned().unwrap_or_default())
                }
            };
            given.push((flag, value));
        }
    }
    let Some((_, name)) = given.iter().find(|(f, _)| f == "--protocol") else {
        return Ok((argv, None));
    };
    let p = protocols::find(name).ok_or_else(|| {
        anyhow!(
            "--protocol {name}: no such protocol; use one of {} (`rotbench protocols` lists what each sets)",
            protocols::names()
        )
    })?;
    let flags: Vec<String> = given.iter().map(|(f, _)| f.clone()).collect();
    let overrides = p
        .sweep
        .iter()
        .chain(p.input)
        .filter_map(|s| {
            let (_, v) = given.iter().find(|(f, _)| f == s.flag)?;
            // A switch's "value" is whatever word follows it: not a value.
            let v = if s.value.is_empty() {
                String::new()
            } else {
                v.clone()
            };
            (v != s.value).then(|| Override {
                flag: s.flag.to_string(),
                protocol: s.value.to_string(),
                given: v,
            })
        })
        .collect();
    let mut out = argv;
    out.extend(p.tokens(&flags).into_iter().map(Into::into));
    Ok((out, Some(p.record(overrides))))
}
