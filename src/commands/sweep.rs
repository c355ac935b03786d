//! `rotbench sweep`: check flags, load models and data, fill what the cache
//! already knows, run the engine (checkpointing each batch), then write results,
//! a shard result, a baseline or a gate verdict.

use super::write::{write_results, Outputs};
use crate::cli::{parse_shard, RotateOnFlag, SweepArgs};
use crate::run::cache::{default_cache_dir, Cache};
use crate::run::checkpoint::Checkpoint;
use crate::run::cache_plan::CachePlan;
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rotbench::dataset::{self, OpenOptions, ShardSpec, Target};
use rotbench::device::{device_name, parse_device};
use rotbench::model::Model;
use rotbench::spec::{read_folder_map_file, CropOrder, Inference};
use rotbench::results::RunKey;
use rotbench::shard::{ShardManifest, SHARD_FORMAT};
use rotbench::summary::{self, BatchSetting, DatasetSummary, Settings};
use rotbench::engine::{self, SweepSettings, WorkOrder};
use rotbench::results::{BatchSize, RotateOn};
use rotbench::{angles, output, store};
use serde_json::json;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Samples whose raw pixels a run keeps for the report.
const KEEP_EXAMPLES: usize = 256;

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    // Check every flag before any work starts.
    let user_angles = angles::parse(&args.angles).map_err(|e| anyhow!("--angles: {e}"))?;
    let (batch, limit, threads) = (args.batch_size, args.limit, args.threads);
    let rotate = args.rotation.options();
    let spec_flags = args.spec.check()?;
    let device = parse_device(&args.device)?;
    let rotate_on = match args.rotate_on {
        RotateOnFlag::Host => RotateOn::Host,
        RotateOnFlag::Device => RotateOn::Device,
        RotateOnFlag::Auto if matches!(device, tch::Device::Cuda(_)) => RotateOn::Device,
        RotateOnFlag::Auto => RotateOn::Host,
    };
    let inference = if args.exact {
        Inference::Exact
    } else {
        Inference::Optimized
    };
    // Before libtorch allocates anything: reuse freed activation blocks (src/malloc.rs).
    let malloc = rotbench::malloc::tune_for_inference();
    let shard_of = match &args.shard {
        None => None,
        Some(v) => {
            let (index, count) = parse_shard(v, &|k| std::env::var(k).ok())?;
            if args.save_baseline.is_some() || args.gate_config.is_some() {
                bail!("--shard: a shard holds part of the samples; save baselines and gate after `rotbench merge`");
            }
            Some((index, count))
        }
    };
    super::gate::check_sweep_flags(&args)?;
    output::prepare_dir(&args.out, "--out")?;
    // Roll back a swap that a killed run left half-done, and drop its leftovers.
    output::recover(&args.out).map_err(|e| anyhow!("--out {e:#}"))?;
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(threads as i32);

    let t0 = Instant::now();
    let mut models = Vec::with_capacity(args.models.len());
    for p in &args.models {
        let m = Model::load(p, &spec_flags, device, inference, args.allow_training_mode)?;
        for w in &m.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(n) = m.output_note() {
            eprintln!("note: {n}");
        }
        if let Some(prev) = models.iter().find(|x: &&Model| x.name == m.name) {
            bail!(
                "--model {}: another model is also named `{}` ({}); models are named by file stem, so rename one file",
                p.display(),
                m.name,
                prev.path.display()
            );
        }
        models.push(m);
    }
    let target: Target = engine::shared_target(&models)?;
    // Shards must cut the data the same way wherever they run, so `auto` means a
    // fixed size here: auto's untimed size for this input (the 64 MiB rule), known
    // only now that the spec is.
    let shard = shard_of.map(|(index, count)| ShardSpec {
        index,
        count,
        batch_size: match batch {
            BatchSize::Fixed(b) => b,
            BatchSize::Auto => rotbench::results::auto_fallback(target.pixels()),
        },
    });
    let batch = match shard {
        Some(s) => BatchSize::Fixed(s.batch_size),
        None => batch,
    };
    let classes = models[0].spec.classes.clone();
    let pre = models[0].spec.preprocess.clone();
    let open = OpenOptions {
        limit,
        sample: args
            .sample
            .map(|n| dataset::SampleSpec { n, seed: args.seed }),
        shard,
        skip_bad_images: args.skip_bad_images,
        resize: pre.resize,
        crop_first: pre.order == CropOrder::CropThenRotate,
        coarse_labels: args.coarse_labels,
        class_folders: args.class_folders,
        folder_map: args
            .class_folder_map
            .as_ref()
            .map(|p| Ok::<_, anyhow::Error>((p.clone(), read_folder_map_file(p)?)))
            .transpose()?,
    };
    let space = dataset::LabelSpace::of_spec(&models[0].spec, args.drop_unscored);
    let mut source = dataset::open(&args.data, target, &space, &open)?;
    for w in &source.info().warnings {
        eprintln!("warning: {w}");
    }
    if let Some(d) = &source.info().dropped {
        eprintln!(
            "note: {} samples left out ({}): {}",
            d.samples,
            d.by_class
                .iter()
                .map(|(c, n)| format!("{n} of class {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            d.reason
        );
    }
    let info = source.info().clone();
    if info.len == 0 {
        bail!("--shard {}: this shard has no samples (the data has fewer batches than shards); use fewer shards or a smaller --batch-size", args.shard.as_deref().unwrap_or(""));
    }
    let plan = rotbench::results::AnglePlan::new(&user_angles);
    let (all_angles, reference_added) = (plan.angles.clone(), plan.reference_added);
    // The backends of the run's models, e.g. `torchscript` or `onnxruntime 1.31.1+torchscript`.
    let mut names: Vec<String> = models.iter().map(Model::backend).collect();
    names.sort();
    names.dedup();
    let backends = names.join("+");
    let settings = Settings {
        angles: user_angles.clone(),
        reference_angle: 0.0,
        reference_added,
        interpolation: rotate.interpolation,
        fill: rotate.fill,
        mask_circle: rotate.mask_circle,
        batch_size: match batch {
            BatchSize::Fixed(b) => BatchSetting::Fixed(b),
            BatchSize::Auto => BatchSetting::Named("auto".into()),
        },
        limit,
        device: device_name(device),
        inference,
        rotate_on,
        backend: backends.clone(),
        top_k: args.top_k,
        bootstrap: args.bootstrap,
        seed: args.seed,
        sample: args.sample,
    };

    // What the predictions depend on besides the model and the angle.
    let run_key = RunKey {
        device: settings.device.clone(),
        backend: backends,
        libtorch_version: rotbench::libtorch::version().into(),
        rotbench_version: env!("CARGO_PKG_VERSION").into(),
        dataset_sha256: info.sha256.clone(),
        start: info.start,
        len: info.len,
        interpolation: settings.interpolation,
        fill: settings.fill,
        mask_circle: settings.mask_circle,
        skip_bad_images: args.skip_bad_images,
        coarse_labels: args.coarse_labels,
        rotate_on,
        top_k: args.top_k,
        sample: open.sample,
    };
    let cache = (!args.no_cache).then(|| Cache {
        dir: args.cache_dir.clone().unwrap_or_else(default_cache_dir),
    });
    let mut work_plan = CachePlan::new(&models, &plan, &run_key, cache, info.len);
    let checkpoint_key = work_plan.checkpoint_key(&models, &run_key, &plan, &batch.to_string());
    let (mut checkpoint, resumed, note) = Checkpoint::open(
        &args.out,
        &checkpoint_key,
        &mut work_plan,
        args.resume,
        models.len(),
        all_angles.len(),
    )?;
    let compute = work_plan.compute.clone();
    let any_compute = work_plan.any_compute();
    let cached_pairs = work_plan.cached_pairs();
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let done_before = resumed.as_ref().map_or(0, |d| d.len());

    let per_sample = (compute.iter().flatten().filter(|&&c| c).count()) as u64;
    let total = info.len as u64 * per_sample;
    let bar = progress_bar(
        !args.quiet && any_compute,
        total,
        done_before as u64 * per_sample,
    );
    let sweep_settings = SweepSettings {
        angles: user_angles.clone(),
        rotate,
        rotate_on,
        batch,
        keep_examples: KEEP_EXAMPLES,
        top_k: args.top_k,
    };
    let work = WorkOrder {
        compute: Some(compute),
        resume: resumed,
    };
    let _guard = tch::no_grad_guard();
    let offset = done_before as u64 * per_sample;
    let run = engine::run(
        &models,
        source.as_mut(),
        &sweep_settings,
        &work,
        &|done| bar.set_position(offset + done),
        &mut |chunk| checkpoint.append(chunk),
    );
    let mut raw = match run {
        Ok(r) => r,
        Err(e) => {
            bar.finish_and_clear();
            checkpoint.abandon(done_before > 0);
            return Err(e);
        }
    };
    bar.finish_and_clear();
    let (batch_used, batch_timings) = (raw.batch_size, std::mem::take(&mut raw.batch_timings));

    // Fill the cached (model, angle) pairs, then store the computed ones.
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    for w in work_plan.fill(&mut raw.data, &names, &all_angles)? {
        eprintln!("warning: {w}");
    }
    let wall = t0.elapsed().as_secs_f64();

    if let Some(spec) = shard {
        let selected = source.info().selected;
        let ids = models.iter().map(Model::id).collect();
        write_shard(
            &args,
            spec,
            source.info(),
            selected,
            settings,
            ids,
            raw,
            wall,
        )?;
        checkpoint.finish()?;
        return Ok(ExitCode::SUCCESS);
    }

    let result = raw.tally(classes.len(), &source.info().sources)?;
    let ids: Vec<_> = models.iter().map(Model::id).collect();
    let summary = summary::build(
        &result,
        &ids,
        source.info(),
        settings,
        rotbench::libtorch::version(),
    );
    // Warnings the results raise (one class predicted for everything), beyond
    // those the models raised when they loaded (printed then).
    for (m, ms) in models.iter().zip(&summary.models) {
        for w in ms.id.warnings.iter().skip(m.warnings.len()) {
            eprintln!("warning: {w}");
        }
    }
    // The work this process did: the samples left after a resume, decoded ones only.
    let evaluated = (result.indices.len() - done_before) as u64 * per_sample;
    let timing = json!({
        "wall_seconds": wall,
        "finished_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "evaluations": evaluated,
        "evaluations_per_second": evaluated as f64 / wall.max(1e-9),
        "cached_pairs": cached_pairs,
        "resumed_samples": done_before,
        "threads": threads,
        "batch_size": batch_used,
        "batch_timings": batch_timings,
        "malloc": match malloc {
            rotbench::malloc::Malloc::Tuned => "thresholds 1 GiB (ROTBENCH_MALLOC=default: glibc's)",
            rotbench::malloc::Malloc::Default => "default",
        },
    });
    let outs = Outputs {
        out: &args.out,
        no_predictions: args.no_predictions,
        no_report: args.no_report,
        quiet: args.quiet,
    };
    // The gate runs before anything is written, so its files join the one result set.
    let mut gate = super::gate::sweep_gate(&args, &summary, &result)?;
    let extra = gate
        .as_mut()
        .map(|g| std::mem::take(&mut g.files))
        .unwrap_or_default();
    let summary = write_results(&outs, &summary, &result, timing, extra)?;
    checkpoint.finish()?;
    if !args.quiet {
        let reused = cached_pairs;
        let note = if reused > 0 {
            format!("; {reused} model x angle results from the cache")
        } else {
            String::new()
        };
        outln!("wrote {} ({:.1} s{note})", args.out.display(), wall);
    }
    // The gate's verdict, then the baseline (src/commands/gate.rs).
    if let Some(code) = super::gate::after_sweep(&args, &summary, &result, gate)? {
        return Ok(code);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--shard i/n`: write the shard's data and manifest (`shard.bin`, `shard.json`)
/// for `rotbench merge`, instead of results.
#[allow(clippy::too_many_arguments)]
fn write_shard(
    args: &SweepArgs,
    spec: ShardSpec,
    info: &dataset::DatasetInfo,
    selected: usize,
    settings: Settings,
    models: Vec<rotbench::results::ModelId>,
    mut raw: rotbench::results::Evaluations,
    wall: f64,
) -> Result<()> {
    let manifest = ShardManifest {
        rotbench_shard: SHARD_FORMAT,
        rotbench_version: env!("CARGO_PKG_VERSION").into(),
        shard: spec,
        start: info.start,
        end: info.start + info.len,
        selected,
        settings,
        models,
        dataset: DatasetSummary::from(info),
        sources: info.sources.clone(),
        examples: std::mem::take(&mut raw.examples),
        keep_examples: KEEP_EXAMPLES,
    };
    let bytes = store::encode(&raw.data, serde_json::to_value(&manifest)?);
    output::replace_set(
        &args.out,
        output::RESULT_FILES,
        &[
            ("shard.bin".into(), bytes),
            ("shard.json".into(), serde_json::to_vec_pretty(&manifest)?),
        ],
    )?;
    if !args.quiet {
        outln!(
            "wrote shard {}/{} (samples {}..{}) to {} ({:.1} s); merge all shards with `rotbench merge DIR... --out DIR`",
            spec.index,
            spec.count,
            info.start,
            info.start + info.len,
            args.out.display(),
            wall
        );
    }
    Ok(())
}

/// The progress bar on a terminal's stderr (hidden otherwise, or when `show` is false).
fn progress_bar(show: bool, total: u64, done: u64) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} evaluations  {per_sec}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_position(done);
    b
}
