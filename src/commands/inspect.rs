//! `rotbench inspect`: the spec a model runs with, where each field came from, its
//! output (type, the part that holds the logits, width), whether it runs in training
//! mode, and with `--data` how an image folder's class folders map to its classes.

use crate::cli::InspectArgs;
use anyhow::{bail, Result};
use rotbench::backend::module_name;
use rotbench::dataset::{self, folder};
use rotbench::device::parse_device;
use rotbench::model::Model;
use rotbench::spec::{read_folder_map_file, Inference, OutputKind, Resize, Returns};
use std::process::ExitCode;
use tch::Tensor;

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let mut flags = args.spec.check()?;
    let mut protocol = None;
    if let Some(name) = &args.protocol {
        let p = rotbench::protocols::find(name).ok_or_else(|| {
            anyhow::anyhow!(
                "--protocol {name}: no such protocol; use one of {}",
                rotbench::protocols::names()
            )
        })?;
        flags.protocol = Some((p.name.to_string(), p.spec_layer()));
        protocol = Some(p);
        outln!("protocol {} ({}): fields from `protocol {}` below are its; `rotbench protocols {}` lists its sweep settings", p.name, p.source, p.name, p.name);
    }
    let device = parse_device(&args.device)?;
    let inference = if args.exact {
        Inference::Exact
    } else {
        Inference::Optimized
    };
    // Loaded even in training mode: inspect shows that instead of refusing.
    let model = Model::load(&args.model, &flags, device, inference, true)?;
    let s = &model.spec;
    // A folder of images without class folders, under a protocol whose figures
    // need no labels: a sweep reads it without labels (no class map to show).
    let unlabelled = args.data.as_ref().filter(|d| {
        protocol.is_some_and(|p| !p.needs_labels())
            && dataset::is_image_folder(d)
            && folder::is_flat(d)
    });
    let data = match &args.data {
        None => None,
        Some(_) if unlabelled.is_some() => None,
        Some(dir) if !dir.exists() => bail!("--data {}: no such folder; give an image folder with one subfolder per class", dir.display()),
        Some(dir) if !dataset::is_image_folder(dir) => bail!(
            "--data {}: not an image folder; inspect shows how the class folders of an image folder map to the model's classes (MNIST IDX, CIFAR and CSV labels are class indices already)",
            dir.display()
        ),
        Some(dir) => {
            let map = args
                .class_folder_map
                .as_ref()
                .map(|p| Ok::<_, anyhow::Error>((p.clone(), read_folder_map_file(p)?)))
                .transpose()?;
            let space = dataset::LabelSpace::of_spec(s, args.drop_unscored);
            Some((dir, folder::class_map(dir, &space, args.class_folders, map.as_ref())?))
        }
    };
    print_model_and_classes(&model);
    print_preprocessing(&model)?;
    print_returns_and_training(&model);
    print_output(&model)?;
    if let Some((dir, classes)) = data {
        print_folders(&model, dir, &classes);
    }
    if let (Some(dir), Some(p)) = (unlabelled, protocol) {
        let images = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| folder::is_image_file(&e.path()))
                    .count()
            })
            .unwrap_or(0);
        outln!(
            "data     {}   {images} images, no class folders: a sweep under --protocol {} reads them without labels (dataset.labelled false) and computes only the figures that need none",
            dir.display(),
            p.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a spec field of `model` came from.
fn source(model: &Model, key: &str) -> String {
    model.provenance.get(key).cloned().unwrap_or_default()
}

/// The model's file, backend, input, mean, std and classes.
fn print_model_and_classes(model: &Model) {
    let s = &model.spec;
    let src = |k: &str| source(model, k);
    outln!("model    {}", model.path.display());
    outln!("sha256   {}", model.sha256);
    outln!("backend  {}", model.backend_details());
    outln!(
        "input    {}x{}x{} (CxHxW, float32 NCHW)   from {}",
        s.input[0],
        s.input[1],
        s.input[2],
        src("input-size")
    );
    outln!("mean     {:?}   from {}", s.mean, src("mean"));
    outln!("std      {:?}   from {}", s.std, src("std"));
    match (&s.model_classes, &s.class_subset, &s.class_map) {
        (Some(model), Some(_), _) => {
            outln!(
                "classes  {} of the model's {}, scored: {:?}   subset from {}; the model's classes from {}",
                s.n_classes(),
                model.len(),
                s.classes,
                src("class-subset"),
                src("classes")
            );
        }
        (Some(model), None, Some(groups)) => {
            let mapped: usize = groups.iter().map(|g| g.len()).sum();
            outln!(
                "classes  {} coarse classes {:?} from {} of the model's {} ({} unmapped, dropped)   map from {}; the model's classes from {}",
                s.n_classes(),
                s.classes,
                mapped,
                model.len(),
                model.len() - mapped,
                src("class-map"),
                src("classes")
            );
        }
        _ => {
            outln!(
                "classes  {} {:?}   from {}",
                s.n_classes(),
                s.classes,
                src("classes")
            );
        }
    }
}

/// How an image becomes the model's input.
fn print_preprocessing(model: &Model) -> Result<()> {
    let src = |k: &str| source(model, k);
    let pre = &model.spec.preprocess;
    let resize = match pre.resize {
        None => "none (straight to the input size when an image differs)".to_string(),
        Some(Resize::Shorter(n)) => {
            format!("shorter side to {n}, then centre crop")
        }
        Some(Resize::Exact([h, w])) => {
            format!("to {h}x{w} (HxW), then centre crop")
        }
    };
    outln!("resize   {resize}   from {}", src("resize"));
    outln!(
        "order    {}   from {}",
        serde_json::to_value(pre.order)?.as_str().unwrap_or(""),
        src("order")
    );
    outln!(
        "channels {}   from {}",
        serde_json::to_value(pre.channel_order)?
            .as_str()
            .unwrap_or(""),
        src("channel-order")
    );
    outln!(
        "pixels   on the [0,{}] scale, then (x - mean) / std   from {}",
        pre.value_range,
        src("value-range")
    );
    let grey = match (pre.desaturate, pre.grayscale) {
        (true, g) => format!("every image made grey ({}), in each channel", g.name()),
        (false, g) => format!(
            "{} (when a colour image meets a one-channel model)",
            g.name()
        ),
    };
    let from = match src("grayscale") {
        s if s.is_empty() => "default".to_string(),
        s => s,
    };
    outln!("grey     {grey}   from {from}");
    if let Some(rule) = model
        .spec
        .class_map
        .as_ref()
        .map(|_| model.spec.class_map_rule)
    {
        outln!(
            "coarse   each coarse class takes the {} of its model classes' probabilities",
            rule.name()
        );
    }
    Ok(())
}

/// What forward returns, which part holds the logits, and training mode.
fn print_returns_and_training(model: &Model) {
    let (s, src) = (&model.spec, |k: &str| source(model, k));
    let returns = match &model.returns {
        Returns::Tensor => "a tensor".to_string(),
        Returns::Tuple(t) => format!("a tuple ({})", t.join(", ")),
        Returns::Dict(t) | Returns::List(t) | Returns::Other(t) => t.clone(),
    };
    let logits = match (s.output_index, &s.output_key) {
        (Some(i), _) => format!("; logits from element {i}   from {}", src("output-index")),
        (_, Some(k)) => format!("; logits under `{k}`   from {}", src("output-key")),
        _ => String::new(),
    };
    outln!("returns  {returns}{logits}");
    if model.training.is_on() {
        let ops: Vec<String> = model
            .training
            .ops
            .iter()
            .map(|(m, op)| format!("{} ({op})", module_name(m)))
            .collect();
        outln!(
            "training yes: {}: {}; sweep refuses it unless --allow-training-mode (re-export with .eval())",
            ops.join(", "),
            model.training.effects()
        );
    } else if !model.training.flags.is_empty() {
        outln!(
            "training no: {} modules were saved with their training flag on, but no op is fixed in training mode (scripted code reads the flag, and rotbench sets eval mode)",
            model.training.flags.len()
        );
    } else {
        outln!("training no (saved in eval mode)");
    }
}

/// One dry run on a blank image: the output's width, and what it holds.
fn print_output(model: &Model) -> Result<()> {
    let s = &model.spec;
    let _g = tch::no_grad_guard();
    let x = Tensor::zeros(
        [1, s.input[0] as i64, s.input[1] as i64, s.input[2] as i64],
        (tch::Kind::Float, tch::Device::Cpu),
    );
    let logits = model.forward_raw(&x)?;
    let how = model.provenance.get("output").cloned().unwrap_or_default();
    outln!(
        "output   {} {} per image (dry run on one blank input)   {}",
        logits.size()[0],
        match model.spec.output {
            OutputKind::Logits => "logits",
            OutputKind::Probabilities =>
                "probabilities (a softmax ends the model; scored without a second one)",
            OutputKind::LogProbabilities => "log-probabilities (a log-softmax ends the model)",
        },
        if how.starts_with("decided") {
            how
        } else {
            format!("from {how}")
        }
    );
    Ok(())
}

/// How an image folder's class folders map to the model's classes.
fn print_folders(model: &Model, dir: &std::path::Path, classes: &folder::FolderClasses) {
    let s = &model.spec;
    let (map, order) = (&classes.map, &classes.order);
    outln!(
        "data     {}   {} class folders: {order}",
        dir.display(),
        map.len()
    );
    for w in &classes.warnings {
        outln!("warning  {w}");
    }
    let w = map
        .iter()
        .map(|c| c.folder.chars().count())
        .max()
        .unwrap_or(0)
        .max("folder".len());
    outln!("  {:<w$}  index  class", "folder");
    for c in map {
        let name = s.classes.get(c.index as usize).map_or("", String::as_str);
        outln!("  {:<w$}  {:>5}  {name}", c.folder, c.index);
    }
    for (dir, m) in &classes.unscored {
        let folder = dir.file_name().unwrap_or_default().to_string_lossy();
        outln!(
            "  {folder:<w$}      -  (model class {}, not scored: dropped)",
            s.model_classes
                .as_ref()
                .and_then(|c| c.get(*m))
                .map_or("?", String::as_str)
        );
    }
}
