//! `rotbench sweep`, one step after another: check the flags ([`config`]), load
//! the models, open the data, plan the run (its settings, what the prediction
//! cache already knows, the checkpoint to continue), run the engine, and finish:
//! a shard result ([`shard`]), or the results with the gate and the baseline
//! ([`gate`]).

mod config;
mod gate;
mod shard;

use super::write::{write_results, write_unlabelled, Outputs};
use crate::cli::SweepArgs;
use crate::run::cache::Cache;
use crate::run::cache_plan::CachePlan;
use crate::run::checkpoint::Checkpoint;
use crate::run::interrupt;
use anyhow::{anyhow, bail, Result};
pub use config::SweepConfig;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rotbench::classifier::Classifier;
use rotbench::dataset::{self, LabelSpace, OpenOptions, ShardSpec, Source, Target};
use rotbench::device::device_name;
use rotbench::engine::{self, SweepSettings, WorkOrder};
use rotbench::model::Model;
use rotbench::poses::{self, Draws, Ranges, Slot};
use rotbench::results::{BatchSize, Evaluations, PosePlan, RunKey, SampleData};
use rotbench::spec::CropOrder;
use rotbench::summary::{self, BatchSetting, Settings};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Samples whose raw pixels a run keeps for the report.
const KEEP_EXAMPLES: usize = 256;

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    let cfg = args.check()?;
    if let Some((_, used)) = &cfg.protocol {
        for o in &used.overrides {
            eprintln!("note: {}", o.note(&used.name));
        }
    }
    interrupt::install();
    // Before libtorch allocates anything: reuse freed activation blocks (src/malloc.rs).
    let malloc = rotbench::malloc::tune_for_inference();
    rotbench::output::prepare_dir(&cfg.out, "--out")?;
    // Roll back a swap that a killed run left half-done, and drop its leftovers.
    rotbench::output::recover(&cfg.out).map_err(|e| anyhow!("--out {e:#}"))?;
    tch::set_num_threads(cfg.threads as i32);
    let t0 = Instant::now();
    let models = load_models(&cfg)?;
    // ONNX Runtime runs ONNX models on its own threads, and TorchScript on the
    // CPU splits small images' batches over --threads slice threads of one
    // libtorch thread each (engine::slice_threads). When every model is such,
    // this thread's libtorch only scales and normalises the batches, and idle
    // OpenMP workers spinning beside the others' made the sweep 3-4x slower on
    // 2 cores (docs/performance.md, issue 36): one thread for it.
    let split = engine::slice_threads(cfg.threads, &models, engine::shared_target(&models)?) > 0;
    let libtorch_threads = match models
        .iter()
        .all(|m| m.runs_outside_libtorch() || (split && m.splits_batches()))
    {
        true => 1,
        false => cfg.threads,
    };
    tch::set_num_threads(libtorch_threads as i32);
    let mut data = open_data(&cfg, &models)?;
    let mut plan = plan_run(&cfg, &models, &data)?;
    let raw = run_engine(&cfg, &models, &mut data, &mut plan)?;
    let wall = t0.elapsed().as_secs_f64();
    finish(&cfg, &models, &data, plan, raw, wall, malloc)
}

/// Load every `--model`, saying what each load decided or warns of.
fn load_models(cfg: &SweepConfig) -> Result<Vec<Model>> {
    let mut models: Vec<Model> = Vec::with_capacity(cfg.models.len());
    for (name, p) in &cfg.models {
        let mut m = Model::load(
            p,
            &cfg.spec,
            cfg.device,
            cfg.inference,
            cfg.allow_training_mode,
        )?;
        m.name = name.clone();
        for w in &m.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(n) = m.output_note() {
            eprintln!("note: {n}");
        }
        if let Some(src) = m
            .provenance
            .get("classes")
            .filter(|s| s.starts_with("default: 0.."))
        {
            eprintln!("note: {}: classes {src}", m.name);
        }
        for (key, src) in &m.provenance {
            if src.contains("the model's own, not protocol") {
                eprintln!(
                    "note: {}: {key} from {src}; pass --{key} to use the protocol's",
                    m.name
                );
            }
        }
        models.push(m);
    }
    Ok(models)
}

/// The data as the run streams it: the source, this shard's part of it, and the
/// batch size the run cuts it into.
struct Data {
    source: Box<dyn Source>,
    shard: Option<ShardSpec>,
    batch: BatchSize,
}

/// Open `--data` for the models' input and classes.
fn open_data(cfg: &SweepConfig, models: &[Model]) -> Result<Data> {
    let target: Target = engine::shared_target(models)?;
    // Shards must cut the data the same way wherever they run, so `auto` means a
    // fixed size here: auto's untimed size for this input (the 64 MiB rule), known
    // only now that the spec is.
    let shard = cfg.shard.map(|(index, count)| ShardSpec {
        index,
        count,
        batch_size: match cfg.batch {
            BatchSize::Fixed(b) => b,
            BatchSize::Auto => rotbench::results::auto_fallback(target.pixels(), 1),
        },
    });
    let batch = shard.map_or(cfg.batch, |s| BatchSize::Fixed(s.batch_size));
    let spec = &models[0].spec;
    let open = OpenOptions {
        limit: cfg.limit,
        sample: cfg.sample,
        shard,
        skip_bad_images: cfg.labels.skip_bad_images,
        resize: spec.preprocess.resize,
        crop_first: spec.preprocess.order == CropOrder::CropThenRotate,
        coarse_labels: cfg.labels.coarse_labels,
        class_folders: cfg.labels.class_folders,
        folder_map: cfg.labels.folder_map.clone(),
        grayscale: spec.preprocess.grayscale,
        desaturate: spec.preprocess.desaturate,
        unlabelled: cfg.unlabelled,
    };
    let space = LabelSpace::of_spec(spec, cfg.labels.drop_unscored);
    let source = dataset::open(&cfg.data, target, &space, &open)?;
    let info = source.info();
    for w in &info.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(d) = &info.dropped {
        let by_class: Vec<String> = d
            .by_class
            .iter()
            .map(|(c, n)| format!("{n} of class {c}"))
            .collect();
        eprintln!(
            "note: {} samples left out ({}): {}",
            d.samples,
            by_class.join(", "),
            d.reason
        );
    }
    if let (Some(s), 0) = (shard, info.len) {
        bail!("--shard {}/{}: this shard has no samples (the data has fewer batches than shards); use fewer shards or a smaller --batch-size", s.index, s.count);
    }
    Ok(Data {
        source,
        shard,
        batch,
    })
}

/// What the run computes, and with what: the settings summary.json records, the
/// pairs the cache answers, and the checkpoint it continues.
struct Planned {
    settings: Settings,
    /// The data's columns: the poses, then any --worst-of draws.
    slots: Vec<Slot>,
    cache_plan: CachePlan,
    checkpoint: Checkpoint,
    resumed: Option<SampleData>,
    /// Samples an interrupted run finished, and evaluations per sample.
    done_before: usize,
    per_sample: u64,
}

/// Plan the run: its settings, its keys, the cache and the checkpoint.
fn plan_run(cfg: &SweepConfig, models: &[Model], data: &Data) -> Result<Planned> {
    let info = data.source.info();
    let input = &models[0].spec;
    let translate = match &cfg.translate {
        None => None,
        Some(t) => Some(
            t.shifts(input.width(), input.height())
                .map_err(|e| anyhow!(e))?,
        ),
    };
    // The backends of the run's models, e.g. `torchscript` or `onnxruntime 1.31.1+torchscript`.
    let mut names: Vec<String> = models.iter().map(Model::backend).collect();
    names.sort();
    names.dedup();
    let backends = names.join("+");
    let mut settings = Settings {
        angles: cfg.angles.clone(),
        translate,
        worst_of: None,
        grid_early_stop: cfg.grid_early_stop,
        reference_angle: 0.0,
        reference_added: false,
        interpolation: cfg.rotate.interpolation,
        fill: cfg.rotate.fill,
        mask_circle: cfg.rotate.mask_circle,
        batch_size: match data.batch {
            BatchSize::Fixed(b) => BatchSetting::Fixed(b),
            BatchSize::Auto => BatchSetting::Named("auto".into()),
        },
        limit: cfg.limit,
        device: device_name(cfg.device),
        inference: cfg.inference,
        rotate_on: cfg.rotate_on,
        backend: backends.clone(),
        top_k: cfg.top_k,
        bootstrap: cfg.bootstrap,
        seed: cfg.seed,
        sample: cfg.sample.map(|s| s.n),
        difficulty: cfg.difficulty,
        protocol: cfg.protocol.as_ref().map(|(_, u)| u.clone()),
    };
    settings.worst_of = cfg.worst_of.map(|k| Draws {
        k,
        seed: cfg.seed,
        ranges: match &settings.translate {
            Some(t) => Ranges::of(&settings.angles, &t.dx, &t.dy),
            None => Ranges::of(&settings.angles, &[0.0], &[0.0]),
        },
    });
    let angles = PosePlan::new(&settings.poses());
    settings.reference_added = angles.reference_added;
    let slots = poses::slots(&angles.poses, settings.worst_of);
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
        skip_bad_images: cfg.labels.skip_bad_images,
        coarse_labels: cfg.labels.coarse_labels,
        rotate_on: cfg.rotate_on,
        top_k: cfg.top_k,
        sample: cfg.sample,
    };
    // An early-stopped column is not the whole column: it is neither read nor stored.
    let cache = match cfg.grid_early_stop {
        true => None,
        false => cfg.cache_dir.clone().map(|dir| Cache { dir }),
    };
    let mut cache_plan = CachePlan::new(models, &angles, &slots, &run_key, cache, info.len);
    let mut key = cache_plan.checkpoint_key(models, &run_key, &slots, &data.batch.to_string());
    if cfg.grid_early_stop {
        key["grid_early_stop"] = true.into();
    }
    let (checkpoint, resumed, note) = Checkpoint::open(
        &cfg.out,
        &key,
        &mut cache_plan,
        cfg.resume,
        models.len(),
        slots.len(),
    )?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let done_before = resumed.as_ref().map_or(0, |d| d.len());
    let per_sample = cache_plan.compute.iter().flatten().filter(|&&c| c).count() as u64;
    Ok(Planned {
        settings,
        slots,
        cache_plan,
        checkpoint,
        resumed,
        done_before,
        per_sample,
    })
}

/// Run the engine over the pairs the cache does not answer, checkpointing each
/// batch, then fill in the cached pairs and store the computed ones.
fn run_engine(
    cfg: &SweepConfig,
    models: &[Model],
    data: &mut Data,
    plan: &mut Planned,
) -> Result<Evaluations> {
    let per_sample = plan.per_sample;
    let offset = plan.done_before as u64 * per_sample;
    let total = data.source.info().len as u64 * per_sample;
    let bar = progress_bar(!cfg.quiet && plan.cache_plan.any_compute(), total, offset);
    let settings = SweepSettings {
        poses: plan.settings.poses(),
        draws: plan.settings.worst_of,
        early_stop: plan.settings.grid_early_stop,
        rotate: cfg.rotate,
        rotate_on: cfg.rotate_on,
        batch: data.batch,
        keep_examples: KEEP_EXAMPLES,
        top_k: cfg.top_k,
        threads: cfg.threads,
    };
    let work = WorkOrder {
        compute: Some(plan.cache_plan.compute.clone()),
        resume: plan.resumed.take(),
    };
    let _guard = tch::no_grad_guard();
    let checkpoint = &mut plan.checkpoint;
    let total = data.source.info().len;
    let mut done = plan.done_before;
    interrupt::engine_started();
    let run = engine::run(
        models,
        data.source.as_mut(),
        &settings,
        &work,
        &|n| bar.set_position(offset + n),
        &mut |chunk| {
            checkpoint.append(chunk)?;
            done += chunk.len();
            if interrupt::stop_requested() {
                return Err(interrupt::Interrupted {
                    done,
                    total,
                    out: cfg.out.clone(),
                }
                .into());
            }
            Ok(())
        },
    );
    interrupt::engine_ended();
    bar.finish_and_clear();
    let mut raw = match run {
        Ok(r) => r,
        Err(e) => {
            checkpoint.abandon(plan.done_before > 0);
            return Err(e);
        }
    };
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    for w in plan.cache_plan.fill(&mut raw.data, &names, &plan.slots)? {
        eprintln!("warning: {w}");
    }
    Ok(raw)
}

/// Write what the run produced: a shard's data, or the results, the gate's
/// verdict and the baseline.
fn finish(
    cfg: &SweepConfig,
    models: &[Model],
    data: &Data,
    plan: Planned,
    mut raw: Evaluations,
    wall: f64,
    malloc: rotbench::malloc::Malloc,
) -> Result<ExitCode> {
    let info = data.source.info();
    let ids: Vec<_> = models.iter().map(Model::id).collect();
    if let Some(spec) = data.shard {
        shard::write_shard(cfg, spec, info, plan.settings, ids, raw, wall)?;
        plan.checkpoint.finish()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (batch_used, batch_timings) = (raw.batch_size, std::mem::take(&mut raw.batch_timings));
    let n_classes = models[0].spec.classes.len();
    let result = raw.tally(n_classes, &info.sources)?;
    let timing = |cached_pairs: usize| {
        // The work this process did: the samples left after a resume, decoded ones only.
        let evaluated = (result.indices.len() - plan.done_before) as u64 * plan.per_sample;
        json!({
            "wall_seconds": wall,
            "finished_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "evaluations": evaluated,
            "evaluations_per_second": evaluated as f64 / wall.max(1e-9),
            "cached_pairs": cached_pairs,
            "resumed_samples": plan.done_before,
            "threads": cfg.threads,
            "libtorch_threads": tch::get_num_threads(),
            "slice_threads": engine::shared_target(models)
                .map_or(0, |t| engine::slice_threads(cfg.threads, models, t)),
            "openmp_wait": crate::openmp_wait::setting(),
            "batch_size": batch_used,
            "batch_timings": batch_timings,
            "malloc": malloc_setting(malloc),
        })
    };
    let cached_pairs = plan.cache_plan.cached_pairs();
    let outs = Outputs {
        out: &cfg.out,
        no_predictions: cfg.no_predictions,
        no_report: cfg.no_report,
        quiet: cfg.quiet,
    };
    if cfg.unlabelled {
        let mut s = rotbench::unlabelled::build(
            &result,
            &ids,
            info,
            plan.settings,
            rotbench::libtorch::version(),
        );
        s.protocol = cfg
            .protocol
            .as_ref()
            .map(|(p, _)| rotbench::protocols::ProtocolFigures {
                name: p.name.to_string(),
                relative_to_model: cfg.relative_to.as_ref().map(|r| r.model.clone()),
                models: rotbench::protocols::unlabelled_figures(&s, cfg.relative_to.as_ref()),
            });
        let s = write_unlabelled(&outs, &s, &result, timing(cached_pairs))?;
        plan.checkpoint.finish()?;
        if !cfg.quiet {
            outln!("wrote {} ({:.1} s)", cfg.out.display(), wall);
            if let Some(f) = &s.protocol {
                print_protocol(f);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut summary = summary::build(
        &result,
        &ids,
        info,
        plan.settings,
        rotbench::libtorch::version(),
    );
    if let Some((p, _)) = &cfg.protocol {
        summary.protocol = Some(rotbench::protocols::ProtocolFigures {
            name: p.name.to_string(),
            relative_to_model: cfg.relative_to.as_ref().map(|r| r.model.clone()),
            models: rotbench::protocols::figures(p, &summary, cfg.relative_to.as_ref()),
        });
    }
    // Warnings the results raise (one class predicted for everything), beyond
    // those the models raised when they loaded (printed then).
    for (m, ms) in models.iter().zip(&summary.models) {
        for w in ms.id.warnings.iter().skip(m.warnings.len()) {
            eprintln!("warning: {w}");
        }
    }
    // The gate runs before anything is written, so its files join the one result set.
    let mut gate = gate::sweep_gate(cfg, &summary, &result)?;
    let extra = gate
        .as_mut()
        .map(|g| std::mem::take(&mut g.files))
        .unwrap_or_default();
    let summary = write_results(&outs, &summary, &result, timing(cached_pairs), extra)?;
    plan.checkpoint.finish()?;
    if !cfg.quiet {
        let note = match cached_pairs {
            0 => String::new(),
            n => format!("; {n} model x angle results from the cache"),
        };
        outln!("wrote {} ({:.1} s{note})", cfg.out.display(), wall);
        if let Some(f) = &summary.protocol {
            print_protocol(f);
        }
    }
    // The gate's verdict, then the baseline.
    Ok(gate::after_sweep(cfg, &summary, &result, gate)?.unwrap_or(ExitCode::SUCCESS))
}

/// How the allocator was set, for timing.json.
fn malloc_setting(m: rotbench::malloc::Malloc) -> Value {
    Value::from(match m {
        rotbench::malloc::Malloc::Tuned => "thresholds 1 GiB (ROTBENCH_MALLOC=default: glibc's)",
        rotbench::malloc::Malloc::Default => "default",
    })
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

/// The protocol's figures per model, after the sweep's own table.
fn print_protocol(f: &rotbench::protocols::ProtocolFigures) {
    outln!("--protocol {}:", f.name);
    for m in &f.models {
        let cells: Vec<String> = m
            .figures
            .iter()
            .map(|x| format!("{} {}", x.name, rotbench::format::num(x.value)))
            .collect();
        outln!("  {}: {}", m.model, cells.join(", "));
    }
    if let Some(r) = &f.relative_to_model {
        outln!("  (relative figures divide by {r}'s)");
    }
}
