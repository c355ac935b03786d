//! Published rotation protocols behind one flag (`--protocol NAME`): each one's
//! settings with the source of every number, the figures it reports, and what a
//! run records of it (the protocol, the flags that changed it). The settings are
//! facts read from the authors' code; the code here is rotbench's own.
//!
//! A protocol sets two kinds of settings. Sweep settings (angles, interpolation,
//! difficulty, class map...) become flags; a flag the user gives beside
//! `--protocol` wins, with a `note:` ([`ProtocolUse::overrides`]). Model-input
//! settings (input size, mean and std, resize, grey conversion) are the lowest
//! spec layer ([`Protocol::spec_layer`]): a model that declares its own
//! normalisation or input size keeps it (it is part of the model), and the
//! difference is recorded in the spec's sources.

pub mod human16;

use crate::spec::{ChannelOrder, CropOrder, Grayscale, Resize, SpecFile};
pub use crate::summary::{Figure, ModelFigures, Override, ProtocolFigures, ProtocolUse};
use crate::summary::{Settings, Summary};
use crate::unlabelled::UnlabelledSummary;

/// One setting: the flag, its value (empty for a switch) and where the number
/// comes from.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub flag: &'static str,
    pub value: &'static str,
    pub source: &'static str,
}

const fn set(flag: &'static str, value: &'static str, source: &'static str) -> Setting {
    Setting {
        flag,
        value,
        source,
    }
}

/// Which figures a protocol reports ([`figures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figures {
    /// Flip probability and top-5 distance at the difficulty (ImageNet-P).
    Stability,
    /// Accuracy per condition and the mean over the conditions other than 0°.
    Conditions,
    /// Natural, random, worst-of-k and grid accuracy (Engstrom et al.).
    Spatial,
}

/// A published protocol.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    pub name: &'static str,
    pub title: &'static str,
    /// The authors' code the settings were read from.
    pub source: &'static str,
    /// Sweep settings, given as flags.
    pub sweep: &'static [Setting],
    /// Model-input settings (the spec's lowest layer); flags name their spec keys.
    pub input: &'static [Setting],
    pub figures: Figures,
    /// How rotbench's numbers differ from the published data or code.
    pub differences: &'static [&'static str],
}

impl Protocol {
    /// Whether every figure of the protocol compares a model's predictions with
    /// each other, so that a folder of images without labels can be swept.
    pub fn needs_labels(&self) -> bool {
        self.figures != Figures::Stability
    }
}

const IMAGENET_MEAN: &str = "0.485,0.456,0.406";
const IMAGENET_STD: &str = "0.229,0.224,0.225";

/// Every protocol `--protocol` takes.
pub const ALL: &[Protocol] = &[
    Protocol {
        name: "imagenet-p-rotate",
        title: "ImageNet-P rotate: flip probability and top-5 distance over 31 frames",
        source: "hendrycks/robustness (ImageNet-P/create_p/make_imagenet_p.py, ImageNet-P/test.py)",
        sweep: &[
            set("--angles", "15:-16:-1", "frames i = 0..30 rotate by affine angle i - 15 (clockwise), that is 15 down to -15 counter-clockwise, in that order (make_imagenet_p.py)"),
            set("--interpolation", "pil-bilinear", "affine(..., resample=PIL.Image.BILINEAR) on the PIL image, torchvision 0.2-0.5 (make_imagenet_p.py)"),
            set("--fill", "0", "Pillow's transform fills with black (make_imagenet_p.py)"),
            set("--difficulty", "1", "test.py --difficulty (1, 2 or 3; 1 is what most users take, hendrycks/robustness#23)"),
            set("--top-k", "5", "ranking_dist mode top5 (test.py)"),
        ],
        input: &[
            set("--input-size", "3x224x224", "CenterCrop(224) (make_imagenet_p.py)"),
            set("--resize", "256", "trn.Resize(256) on the PIL image (make_imagenet_p.py)"),
            set("--order", "rotate-then-crop", "the rotation, then CenterCrop(224) (make_imagenet_p.py)"),
            set("--mean", IMAGENET_MEAN, "trn.Normalize(mean, std) (test.py)"),
            set("--std", IMAGENET_STD, "trn.Normalize(mean, std) (test.py)"),
            set("--value-range", "1", "trn.ToTensor() (test.py)"),
            set("--channel-order", "rgb", ".convert('RGB'); the loader turns cv2's BGR into RGB (video_loader.py)"),
        ],
        figures: Figures::Stability,
        differences: &[
            "The released ImageNet-P frames are H.264 videos (libx264, -crf 20), so they are lossy; rotbench computes each frame exactly from the image, so its figures differ from those on the videos.",
            "Frames are compared within each image's sequence, not circularly; the flip probability and top-5 distance are averaged per image, then over images, as test.py does.",
            "The paper's relative figures divide by AlexNet's; give a reference run with --relative-to DIR.",
        ],
    },
    Protocol {
        name: "model-vs-human-rotation",
        title: "model-vs-human rotation: 16-class accuracy at 0, 90, 180 and 270 degrees",
        source: "bethgelab/model-vs-human (modelvshuman/helper/human_categories.py, modelvshuman/datasets/decision_mappings.py, modelvshuman/datasets/dataloaders.py, modelvshuman/plotting/plot.py); stimuli by rgeirhos/generalisation-humans-DNNs (code/image_manipulation.py)",
        sweep: &[
            set("--angles", "0,90,180,270", "data_conditions [\"0\", \"90\", \"180\", \"270\"] (model-vs-human modelvshuman/datasets/experiments.py); exact quarter turns, counter-clockwise (rotate90: transpose then flip rows, image_manipulation.py)"),
            set("--class-map", human16::MAP_NAME, "the 16 categories' ImageNet indices (model-vs-human modelvshuman/helper/human_categories.py)"),
            set("--class-map-rule", "mean", "ImageNetProbabilitiesTo16ClassesMapping, aggregation np.mean (model-vs-human modelvshuman/datasets/decision_mappings.py)"),
        ],
        input: &[
            set("--input-size", "3x224x224", "224-pixel stimuli, no resize (model-vs-human modelvshuman/datasets/base.py: resize only when image_size != 224)"),
            set("--desaturate", "", "rgb2gray, stacked to three channels (image_manipulation.py rotate90/180/270)"),
            set("--grayscale", "rec709", "scikit-image rgb2gray weights 0.2125, 0.7154, 0.0721; save_img truncates x 255 to uint8 (image_manipulation.py)"),
            set("--mean", IMAGENET_MEAN, "transforms.Normalize (model-vs-human modelvshuman/datasets/dataloaders.py)"),
            set("--std", IMAGENET_STD, "transforms.Normalize (model-vs-human modelvshuman/datasets/dataloaders.py)"),
            set("--value-range", "1", "transforms.ToTensor() (model-vs-human modelvshuman/datasets/dataloaders.py)"),
            set("--channel-order", "rgb", "PIL images (model-vs-human modelvshuman/datasets/dataloaders.py)"),
        ],
        figures: Figures::Conditions,
        differences: &[
            "model-vs-human scores released stimuli (grey PNGs, already rotated); rotbench makes them from colour images with the same grey formula and 8-bit truncation, so from the released stimuli's source images it gives the same pixels.",
            "The data folder holds one subfolder per category, named as the 16 categories (airplane ... truck).",
            "OOD accuracy here is the mean accuracy over 90, 180 and 270 degrees for this one dataset (plot.py's EXCLUDE_CONDITIONS leaves out \"0\").",
        ],
    },
    Protocol {
        name: "spatial-cifar",
        title: "Engstrom et al. spatial robustness, CIFAR-10: a 31 x 5 x 5 grid and worst-of-10",
        source: "MadryLab/adversarial_spatial (config.json, spatial_attack.py, resnet.py)",
        sweep: &[
            set("--angles", "-30:31:2", "rotation limit 30 degrees, 31 grid points (config.json spatial_limits [3, 3, 30], granularity [5, 5, 31])"),
            set("--translate", "-3:4:1.5px", "translation limit 3 px on both axes, 5 grid points each (config.json)"),
            set("--worst-of", "10", "random attack with 10 tries (config.json random_tries)"),
            set("--grid-early-stop", "", "the grid attack stops at a sample's first mistake (spatial_attack.py)"),
            set("--interpolation", "bilinear", "tf.contrib.image.rotate and transform, bilinear (resnet.py)"),
            set("--fill", "0", "zero padding of 16 px before the transform (resnet.py)"),
            set("--seed", "0", "rotbench's draws; the published code draws with numpy's global state"),
        ],
        input: &[],
        figures: Figures::Spatial,
        differences: &[
            "The published code rotates, then translates with a second bilinear sampling; rotbench samples the pose once, so fractional shifts are not blurred twice (docs/spatial.md measures the difference).",
            "The CIFAR-10 models of the paper standardise each image inside the model; rotbench uses the model's own spec for the input.",
        ],
    },
    Protocol {
        name: "spatial-imagenet",
        title: "Engstrom et al. spatial robustness, ImageNet: ±30° and ±24 px, worst-of-10",
        source: "MadryLab/adversarial_spatial and spatial-pytorch (attack_steps.py, spatial.py)",
        sweep: &[
            set("--angles", "-30:31:2", "rotation limit 30 degrees, 31 grid points (spatial-pytorch)"),
            set("--translate", "-24:25:12px", "translation limit 3/28 of the width, 24 px of 224, 5 grid points each (spatial-pytorch)"),
            set("--worst-of", "10", "random attack with 10 tries"),
            set("--grid-early-stop", "", "the grid attack stops at a sample's first mistake"),
            set("--interpolation", "bilinear", "grid_sample, bilinear (spatial-pytorch)"),
            set("--fill", "0", "grid_sample pads with zeros (spatial-pytorch)"),
            set("--seed", "0", "rotbench's draws"),
        ],
        input: &[
            set("--input-size", "3x224x224", "Resize(256), CenterCrop(224), then the transform (spatial-pytorch)"),
            set("--resize", "256", "Resize(256)"),
            set("--order", "crop-then-rotate", "the transform acts on the 224 crop"),
            set("--mean", IMAGENET_MEAN, "ImageNet normalisation"),
            set("--std", IMAGENET_STD, "ImageNet normalisation"),
            set("--value-range", "1", "ToTensor()"),
            set("--channel-order", "rgb", "PIL images"),
        ],
        figures: Figures::Spatial,
        differences: &[
            "rotbench samples the pose once (grid_sample also does); the random draws are rotbench's, with --seed.",
        ],
    },
];

/// The protocol called `name`.
pub fn find(name: &str) -> Option<&'static Protocol> {
    ALL.iter().find(|p| p.name == name)
}

/// The names `--protocol` takes, for messages.
pub fn names() -> String {
    ALL.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

impl Protocol {
    /// The model-input settings as the spec's lowest layer.
    pub fn spec_layer(&self) -> SpecFile {
        let mut s = SpecFile::default();
        let floats = |v: &str| {
            v.split(',')
                .map(|x| x.parse().unwrap_or(f32::NAN))
                .collect()
        };
        for set in self.input {
            let v = set.value;
            match set.flag {
                "--input-size" => {
                    s.input = Some(v.split('x').filter_map(|d| d.parse().ok()).collect())
                }
                "--resize" => s.resize = v.parse::<Resize>().ok(),
                "--order" => s.order = v.parse::<CropOrder>().ok(),
                "--mean" => s.mean = Some(floats(v)),
                "--std" => s.std = Some(floats(v)),
                "--value-range" => s.value_range = v.parse().ok(),
                "--channel-order" => s.channel_order = v.parse::<ChannelOrder>().ok(),
                "--grayscale" => s.grayscale = v.parse::<Grayscale>().ok(),
                "--desaturate" => s.desaturate = Some(true),
                _ => {}
            }
        }
        s
    }

    /// What a run records of this protocol, with the flags that changed it.
    pub fn record(&self, overrides: Vec<Override>) -> ProtocolUse {
        ProtocolUse {
            name: self.name.to_string(),
            source: self.source.to_string(),
            overrides,
            relative_to: None,
        }
    }

    /// The protocol's sweep flags as command-line tokens, leaving out those whose
    /// flag is in `given`.
    pub fn tokens(&self, given: &[String]) -> Vec<String> {
        let mut out = vec![];
        for s in self.sweep {
            if given.iter().any(|g| g == s.flag) {
                continue;
            }
            if s.value.is_empty() {
                out.push(s.flag.to_string());
            } else {
                out.push(format!("{}={}", s.flag, s.value));
            }
        }
        out
    }
}

impl Override {
    /// The `note:` line for it.
    pub fn note(&self, protocol: &str) -> String {
        let p = if self.protocol.is_empty() {
            "on".to_string()
        } else {
            self.protocol.clone()
        };
        let g = if self.given.is_empty() {
            "on".to_string()
        } else {
            self.given.clone()
        };
        format!(
            "--protocol {protocol} sets {} {p}; {} {g} given beside it is used instead, so the figures are no longer the published protocol's",
            self.flag, self.flag
        )
    }
}

/// What `--relative-to DIR` divides by: the reference run's one model and its
/// two label-free figures (from a labelled run or one without labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub model: String,
    pub flip_probability: Option<f64>,
    pub top5_distance: Option<f64>,
}

/// The reference of `--relative-to DIR`, from that run's summary.json (`v`): it
/// must hold one model, swept under the same protocol at the same difficulty.
pub fn reference_model(
    dir: &std::path::Path,
    v: serde_json::Value,
    p: &Protocol,
    difficulty: usize,
) -> Result<Reference, String> {
    let d = dir.display();
    let bad = |e: serde_json::Error| {
        format!("--relative-to {d}: not a summary.json this rotbench reads ({e}); rerun the reference sweep with this version")
    };
    let (settings, models): (Settings, Vec<Reference>) =
        if v.pointer("/dataset/labelled") == Some(&serde_json::Value::Bool(false)) {
            let s: UnlabelledSummary = serde_json::from_value(v).map_err(bad)?;
            let models = s.models.iter().map(|m| Reference {
                model: m.id.name.clone(),
                flip_probability: m.flip_probability,
                top5_distance: m.mean_top_k_distance,
            });
            (s.settings.clone(), models.collect())
        } else {
            let s: Summary = serde_json::from_value(v).map_err(bad)?;
            let models = s.models.iter().map(|m| Reference {
                model: m.id.name.clone(),
                flip_probability: m.sweep.flip_probability,
                top5_distance: m.sweep.mean_top_k_distance,
            });
            (s.settings.clone(), models.collect())
        };
    let theirs = settings.protocol.as_ref().map(|u| u.name.as_str());
    if theirs != Some(p.name) {
        return Err(format!(
            "--relative-to {d}: that run was {}, not --protocol {}; relative figures divide like by like (rerun the reference with --protocol {})",
            theirs.map_or("not a protocol run".to_string(), |n| format!("--protocol {n}")),
            p.name,
            p.name
        ));
    }
    if settings.difficulty != difficulty {
        return Err(format!(
            "--relative-to {d}: that run used --difficulty {}, this one {difficulty}; use the same difficulty",
            settings.difficulty
        ));
    }
    match <[Reference; 1]>::try_from(models) {
        Ok([m]) => Ok(m),
        Err(ms) => Err(format!(
            "--relative-to {d}: that run holds {} models ({}); the reference must be one model (sweep it alone)",
            ms.len(),
            ms.iter().map(|m| m.model.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// ImageNet-P's figures of one model, and relative ones against the reference.
fn stability(fp: Option<f64>, t5: Option<f64>, reference: Option<&Reference>) -> Vec<Figure> {
    let mut f = vec![("flip_probability", fp), ("top5_distance", t5)];
    if let Some(r) = reference {
        f.push(("relative_flip_probability", ratio(fp, r.flip_probability)));
        f.push(("relative_top5_distance", ratio(t5, r.top5_distance)));
    }
    f.into_iter()
        .filter_map(|(name, v)| {
            v.map(|value| Figure {
                name: name.to_string(),
                value,
            })
        })
        .collect()
}

/// The figures of each model of a sweep without labels (a protocol whose
/// figures need none, [`Protocol::needs_labels`]).
pub fn unlabelled_figures(
    s: &UnlabelledSummary,
    reference: Option<&Reference>,
) -> Vec<ModelFigures> {
    s.models
        .iter()
        .map(|m| ModelFigures {
            model: m.id.name.clone(),
            figures: stability(m.flip_probability, m.mean_top_k_distance, reference),
        })
        .collect()
}

/// The figures of each model under its protocol, and relative ones against a
/// reference run's single model (`--relative-to`).
pub fn figures(p: &Protocol, s: &Summary, reference: Option<&Reference>) -> Vec<ModelFigures> {
    s.models
        .iter()
        .map(|m| {
            let mut f: Vec<(String, Option<f64>)> = vec![];
            match p.figures {
                Figures::Stability => {
                    return ModelFigures {
                        model: m.id.name.clone(),
                        figures: stability(
                            m.sweep.flip_probability,
                            m.sweep.mean_top_k_distance,
                            reference,
                        ),
                    };
                }
                Figures::Conditions => {
                    let mut ood = vec![];
                    for a in m.angles.iter().filter(|a| a.in_sweep) {
                        let name = format!("accuracy_{}", crate::format::format_angle(a.angle));
                        f.push((name, Some(a.accuracy)));
                        if a.angle != 0.0 {
                            ood.push(a.accuracy);
                        }
                    }
                    let n = ood.len() as f64;
                    let mean = (n > 0.0).then(|| ood.iter().sum::<f64>() / n);
                    f.push(("ood_accuracy".into(), mean));
                }
                Figures::Spatial => {
                    f.push((
                        "natural_accuracy".into(),
                        Some(m.sweep.accuracy_at_reference),
                    ));
                    if let Some(w) = &m.sweep.worst_of_k {
                        f.push(("random_accuracy".into(), Some(w.random_accuracy)));
                        f.push(("worst_of_k_accuracy".into(), Some(w.accuracy)));
                    }
                    f.push(("grid_accuracy".into(), Some(m.sweep.grid_accuracy)));
                }
            }
            ModelFigures {
                model: m.id.name.clone(),
                figures: f
                    .into_iter()
                    .filter_map(|(name, v)| v.map(|value| Figure { name, value }))
                    .collect(),
            }
        })
        .collect()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocols_values_parse_and_name_a_source() {
        for p in ALL {
            let layer = p.spec_layer();
            for s in p.sweep.iter().chain(p.input) {
                assert!(!s.source.is_empty(), "{} {}", p.name, s.flag);
            }
            if let Some(m) = &layer.mean {
                assert!(m.iter().all(|v| v.is_finite()));
            }
            assert_eq!(
                layer.input.is_some(),
                p.input.iter().any(|s| s.flag == "--input-size")
            );
            assert_eq!(
                layer.resize.is_some(),
                p.input.iter().any(|s| s.flag == "--resize")
            );
            assert_eq!(
                layer.order.is_some(),
                p.input.iter().any(|s| s.flag == "--order")
            );
        }
        assert!(find("imagenet-p-rotate").is_some() && find("nope").is_none());
    }

    #[test]
    fn a_given_flag_is_left_out_of_the_protocols_tokens() {
        let p = find("model-vs-human-rotation").unwrap();
        let t = p.tokens(&["--angles".to_string()]);
        assert!(!t.iter().any(|x| x.starts_with("--angles")));
        assert!(t.contains(&"--class-map-rule=mean".to_string()));
    }
}

/// A protocol described for `rotbench protocols` and docs/protocols.md: what it
/// sets, where each number comes from, and how rotbench's numbers differ.
pub fn describe(p: &Protocol, markdown: bool) -> String {
    let mut s = String::new();
    let row = |s: &mut String, flag: &str, value: &str, source: &str| {
        let v = if value.is_empty() { "(on)" } else { value };
        if markdown {
            s.push_str(&format!("| `{flag}` | `{v}` | {source} |\n"));
        } else {
            s.push_str(&format!("    {flag:<18} {v:<22} {source}\n"));
        }
    };
    if markdown {
        s.push_str(&format!(
            "## `{}`\n\n{}.\n\nSource: {}.\n\n",
            p.name, p.title, p.source
        ));
        s.push_str("| setting | value | from |\n|---|---|---|\n");
    } else {
        s.push_str(&format!(
            "{}\n  {}\n  source: {}\n  sets:\n",
            p.name, p.title, p.source
        ));
    }
    for set in p.sweep {
        row(&mut s, set.flag, set.value, set.source);
    }
    for set in p.input {
        let src = format!(
            "{} (model input: a model that declares its own keeps it)",
            set.source
        );
        row(&mut s, set.flag, set.value, &src);
    }
    if markdown {
        s.push_str(&format!(
            "\nReports: {}.\n\nData: {}.\n\n",
            figure_names(p),
            data_kinds(p)
        ));
        s.push_str("Differences from the published data:\n\n");
        for d in p.differences {
            s.push_str(&format!("- {d}\n"));
        }
        s.push('\n');
    } else {
        s.push_str(&format!(
            "  reports: {}\n  data: {}\n  differences:\n",
            figure_names(p),
            data_kinds(p)
        ));
        for d in p.differences {
            s.push_str(&format!("    - {d}\n"));
        }
    }
    s
}

/// The data a protocol reads, for its description.
fn data_kinds(p: &Protocol) -> &'static str {
    if p.needs_labels() {
        "labelled: one subfolder per class, or an IDX, CIFAR or CSV dataset"
    } else {
        "labelled (the sweep's accuracy figures come beside the protocol's), or a folder of images without class folders, read without labels (then only the figures that need none: consistency, flip probability, top-5 distance)"
    }
}

/// The names of the figures a protocol reports, for its description.
fn figure_names(p: &Protocol) -> &'static str {
    match p.figures {
        Figures::Stability => "flip_probability and top5_distance at the difficulty (and relative_flip_probability, relative_top5_distance with --relative-to)",
        Figures::Conditions => "accuracy at each condition (accuracy_0, accuracy_90, ...) and ood_accuracy, their mean without 0 degrees",
        Figures::Spatial => "natural_accuracy, random_accuracy, worst_of_k_accuracy and grid_accuracy",
    }
}
