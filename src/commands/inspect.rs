//! `rotbench inspect`: the spec a model runs with, where each field came from, its output width.

use crate::cli::InspectArgs;
use anyhow::Result;
use rotbench::model::{parse_device, Inference, Model};
use std::process::ExitCode;
use tch::Tensor;

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let flags = args.spec.check()?;
    let device = parse_device(&args.device)?;
    let inference = if args.exact {
        Inference::Exact
    } else {
        Inference::Optimized
    };
    let model = Model::load(&args.model, &flags, device, inference)?;
    let s = &model.spec;
    let src = |k: &str| model.provenance.get(k).cloned().unwrap_or_default();
    println!("model    {}", model.path.display());
    println!("sha256   {}", model.sha256);
    println!(
        "input    {}x{}x{} (CxHxW, float32 NCHW)   from {}",
        s.input[0],
        s.input[1],
        s.input[2],
        src("input-size")
    );
    println!("mean     {:?}   from {}", s.mean, src("mean"));
    println!("std      {:?}   from {}", s.std, src("std"));
    println!(
        "classes  {} {:?}   from {}",
        s.n_classes(),
        s.classes,
        src("classes")
    );
    let pre = &s.preprocess;
    let resize = match pre.resize {
        None => "none (straight to the input size when an image differs)".to_string(),
        Some(rotbench::model::Resize::Shorter(n)) => {
            format!("shorter side to {n}, then centre crop")
        }
        Some(rotbench::model::Resize::Exact([h, w])) => {
            format!("to {h}x{w} (HxW), then centre crop")
        }
    };
    println!("resize   {resize}   from {}", src("resize"));
    println!(
        "order    {}   from {}",
        serde_json::to_value(pre.order)?.as_str().unwrap_or(""),
        src("order")
    );
    println!(
        "channels {}   from {}",
        serde_json::to_value(pre.channel_order)?
            .as_str()
            .unwrap_or(""),
        src("channel-order")
    );
    println!(
        "pixels   on the [0,{}] scale, then (x - mean) / std   from {}",
        pre.value_range,
        src("value-range")
    );
    let _g = tch::no_grad_guard();
    let x = Tensor::zeros(
        [1, s.input[0] as i64, s.input[1] as i64, s.input[2] as i64],
        (tch::Kind::Float, tch::Device::Cpu),
    );
    let logits = model.forward_raw(&x)?;
    println!(
        "output   {} logits per image (dry run on one blank input)",
        logits.size()[0]
    );
    Ok(ExitCode::SUCCESS)
}
