//! The commands: glue between the checked CLI config, the library, the output
//! writer and the terminal. The only place that prints.

use crate::cli::{positive, InspectArgs, RotateArgs, SweepArgs};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rotbench::dataset::{self, OpenOptions, Target};
use rotbench::model::{device_name, parse_device, Model};
use rotbench::report::{self, csv as csvx, json::SummaryJson, Export, Results};
use rotbench::rotate::{to_u8, Geometry, Plan};
use rotbench::summary::{self, ModelMeta, Settings};
use rotbench::{angles, output, sweep, LIBTORCH_VERSION};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tch::Tensor;

pub fn sweep(args: SweepArgs) -> Result<ExitCode> {
    // Check every flag before any work starts.
    let user_angles = angles::parse(&args.angles).map_err(|e| anyhow!("--angles: {e}"))?;
    let batch_size = positive("--batch-size", &args.batch_size)?;
    let limit = args.limit.as_deref().map(|v| positive("--limit", v)).transpose()?;
    let threads = args.threads.as_deref().map(|v| positive("--threads", v)).transpose()?;
    let rotate = args.rotation.check()?;
    let spec_flags = args.spec.check()?;
    let device = parse_device(&args.device)?;
    output::prepare_dir(&args.out, "--out")?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(threads as i32);

    let t0 = Instant::now();
    let mut models = Vec::with_capacity(args.models.len());
    for p in &args.models {
        let m = Model::load(p, &spec_flags, device)?;
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
    let settings = sweep::SweepSettings { angles: user_angles.clone(), rotate, batch_size };
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
            inference: "plain".into(),
        },
        LIBTORCH_VERSION,
    );
    let results = Results { summary: &summary, sweep: Some(&result) };
    let mut exporters: Vec<Box<dyn Export>> =
        vec![Box::new(SummaryJson), Box::new(csvx::PerAngle), Box::new(csvx::PerClass), Box::new(csvx::ConfusionLong)];
    if !args.no_predictions {
        exporters.push(Box::new(csvx::Predictions));
    }
    let mut files = Vec::new();
    for e in &exporters {
        files.push((e.file_name().to_string(), e.render(&results)?));
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
    Ok(ExitCode::SUCCESS)
}

pub fn rotate(args: RotateArgs) -> Result<ExitCode> {
    let angle = angles::parse(&args.angle).map_err(|e| anyhow!("--angle: {e}"))?;
    if angle.len() != 1 {
        bail!("--angle {}: give one angle", args.angle);
    }
    let opts = args.rotation.check()?;
    let img = image::open(&args.input)
        .map_err(|e| anyhow!("{}: cannot read the image ({e}); give a PNG or JPEG file", args.input.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = matches!(img.color(), image::ColorType::L8 | image::ColorType::L16 | image::ColorType::La8 | image::ColorType::La16);
    let (channels, planes) = if gray {
        (1, img.into_luma8().into_raw())
    } else {
        let rgb = img.into_rgb8().into_raw();
        let mut planes = vec![0u8; 3 * w * h];
        for p in 0..w * h {
            for c in 0..3 {
                planes[c * w * h + p] = rgb[p * 3 + c];
            }
        }
        (3, planes)
    };
    let plan = Plan::new(Geometry::same(h, w), angle[0], &opts);
    let mut out = vec![0f32; planes.len()];
    plan.apply(&planes, channels, &mut out);
    let bytes = to_u8(&out);
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    let interleaved: Vec<u8> = if channels == 1 {
        bytes
    } else {
        (0..w * h).flat_map(|p| (0..3).map(move |c| (c, p))).map(|(c, p)| bytes[c * w * h + p]).collect()
    };
    use image::ImageEncoder;
    encoder
        .write_image(
            &interleaved,
            w as u32,
            h as u32,
            if channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 },
        )
        .context("encoding the PNG")?;
    output::write_atomic(&args.output, &png)
        .map_err(|e| anyhow!("{}: cannot write the output ({e:#}); choose a writable path", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let flags = args.spec.check()?;
    let device = parse_device(&args.device)?;
    let model = Model::load(&args.model, &flags, device)?;
    let s = &model.spec;
    let src = |k: &str| model.provenance.get(k).cloned().unwrap_or_default();
    println!("model    {}", model.path.display());
    println!("sha256   {}", model.sha256);
    println!("input    {}x{}x{} (CxHxW, float32 NCHW)   from {}", s.input[0], s.input[1], s.input[2], src("input-size"));
    println!("mean     {:?}   from {}", s.mean, src("mean"));
    println!("std      {:?}   from {}", s.std, src("std"));
    println!("classes  {} {:?}   from {}", s.n_classes(), s.classes, src("classes"));
    println!("pixels   scaled to [0,1], then (x - mean) / std");
    let _g = tch::no_grad_guard();
    let x = Tensor::zeros([1, s.input[0] as i64, s.input[1] as i64, s.input[2] as i64], (tch::Kind::Float, tch::Device::Cpu));
    let logits = model.forward_raw(&x)?;
    println!("output   {} logits per image (dry run on one blank input)", logits.size()[0]);
    Ok(ExitCode::SUCCESS)
}
