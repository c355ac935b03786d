//! `rotbench sweep`: check flags, load models and data, run the engine, export, write, print.

use crate::cli::{positive, SweepArgs};
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rotbench::dataset::{self, OpenOptions, Target};
use rotbench::model::{device_name, parse_device, Inference, Model};
use rotbench::report::{self, csv as csvx, json::SummaryJson, Export, Results};
use rotbench::summary::{self, ModelMeta, Settings};
use rotbench::{angles, output, sweep, LIBTORCH_VERSION};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    // Check every flag before any work starts.
    let user_angles = angles::parse(&args.angles).map_err(|e| anyhow!("--angles: {e}"))?;
    let batch_size = positive("--batch-size", &args.batch_size)?;
    let limit = args.limit.as_deref().map(|v| positive("--limit", v)).transpose()?;
    let threads = args.threads.as_deref().map(|v| positive("--threads", v)).transpose()?;
    let rotate = args.rotation.check()?;
    let spec_flags = args.spec.check()?;
    let device = parse_device(&args.device)?;
    let inference = if args.exact { Inference::Exact } else { Inference::Optimized };
    output::prepare_dir(&args.out, "--out")?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(threads as i32);

    let t0 = Instant::now();
    let mut models = Vec::with_capacity(args.models.len());
    for p in &args.models {
        let m = Model::load(p, &spec_flags, device, inference)?;
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
    let spec = models[0].spec.clone();
    let target = Target { channels: spec.channels(), height: spec.height(), width: spec.width() };
    let mut source = dataset::open(
        &args.data,
        target,
        &spec.classes,
        &OpenOptions { limit, skip_bad_images: args.skip_bad_images },
    )?;
    let n = source.info().len;
    let (all_angles, _, _) = sweep::plan_angles(&user_angles);
    let total = (n * all_angles.len() * models.len()) as u64;
    let bar = if !args.quiet && std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images x angles x models  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let settings = sweep::SweepSettings { angles: user_angles.clone(), rotate, batch_size, keep_examples: 256 };
    let _guard = tch::no_grad_guard();
    let result = sweep::run(&models, source.as_mut(), &settings, &|done| bar.set_position(done))?;
    bar.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();

    let metas: Vec<ModelMeta<'_>> = models
        .iter()
        .map(|m| ModelMeta { name: &m.name, path: m.path.display().to_string(), sha256: &m.sha256, spec: &m.spec, provenance: &m.provenance })
        .collect();
    let summary = summary::build(
        &result,
        &metas,
        source.info(),
        Settings {
            angles: user_angles,
            reference_angle: 0.0,
            reference_added: result.reference_added,
            interpolation: rotate.interpolation.to_string(),
            fill: rotate.fill.to_string(),
            mask_circle: rotate.mask_circle,
            batch_size,
            limit,
            device: device_name(device),
            inference: inference.name().into(),
        },
        LIBTORCH_VERSION,
    );
    let results = Results { summary: &summary, sweep: Some(&result) };
    let mut exporters: Vec<Box<dyn Export>> = vec![
        Box::new(SummaryJson),
        Box::new(csvx::PerAngle),
        Box::new(csvx::PerClass),
        Box::new(csvx::ConfusionLong),
        Box::new(rotbench::report::examples::Examples),
    ];
    if !args.no_predictions {
        exporters.push(Box::new(csvx::Predictions));
    }
    let mut files = Vec::new();
    for e in &exporters {
        files.push((e.file_name().to_string(), e.render(&results)?));
    }
    if !args.no_report {
        let examples = rotbench::report::examples::build(&results);
        files.extend(rotbench::report::visual::render(&summary, examples.as_ref())?);
    }
    let evaluated = result.labels.len() * result.angles.len() * models.len();
    let timing = serde_json::json!({
        "wall_seconds": wall,
        "finished_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "evaluations": evaluated,
        "evaluations_per_second": evaluated as f64 / wall.max(1e-9),
        "threads": threads,
    });
    files.push(("timing.json".into(), serde_json::to_vec_pretty(&timing)?));
    output::write_all(&args.out, &files)?;
    for m in &summary.models {
        if m.nonfinite_logits > 0 {
            eprintln!(
                "warning: {}: {} predictions had NaN or inf logits; they count as wrong (nonfinite in per_angle.csv, nonfinite_logits in summary.json)",
                m.name, m.nonfinite_logits
            );
        }
    }
    if !summary.dataset.skipped.is_empty() {
        eprintln!("warning: skipped {} unreadable images (listed under dataset.skipped in summary.json)", summary.dataset.skipped.len());
    }
    if !args.quiet {
        print!("{}", report::table::render(&summary));
        println!("wrote {} ({:.1} s)", args.out.display(), wall);
    }
    // Baselines and the optional gate (src/commands/gate.rs).
    if let Some(code) = super::gate::after_sweep(&args, &summary, &result)? {
        return Ok(code);
    }
    Ok(ExitCode::SUCCESS)
}

