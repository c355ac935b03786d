//! Which class a dataset's label names: one rule for every source.
//!
//! - A label that is a name (a CSV manifest's `label`, a class folder's name) names
//!   a class when it equals one: one of the scored classes (the model's, or those
//!   of its `--class-subset` or `--class-map`), else one of the model's own classes.
//! - A label that is an index (IDX and CIFAR records, a manifest's `label_index`,
//!   folders named `0`, `1`, ...) indexes the model's own classes, never a subset's.
//! - A model class that is not scored (outside the subset, in no group of the map)
//!   stops the run naming the label and its row, or, with `--drop-unscored`, the
//!   sample is dropped and counted ([`Dropped`], in summary.json).
//!
//! Sorted class folders (`--class-folders sorted`) are the one exception, asked for
//! by name: folder `i` in sorted order is scored class `i`, as torchvision's
//! `ImageFolder` numbers them (the ImageNet-R evaluation's layout).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The label of a dropped sample in a source's label list (never streamed).
pub const DROPPED: u32 = u32::MAX;

/// What a label resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A scored class (its index among the scored classes).
    Class(u32),
    /// A model class that is not scored (its index among the model's classes).
    Unscored(usize),
}

/// The classes a run scores and how the model's classes map onto them.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSpace {
    /// The scored classes: the model's, or its subset's or coarse map's.
    pub classes: Vec<String>,
    /// The model's own output classes (the same as `classes` without a subset or map).
    pub model_classes: Vec<String>,
    /// For each model class, the scored class it counts as.
    scored: Vec<Option<u32>>,
    /// `--class-subset` or `--class-map`, when one narrows the classes.
    pub narrowed_by: Option<&'static str>,
    /// Drop samples of unscored classes (counted) instead of refusing them.
    pub drop_unscored: bool,
}

/// Samples left out because their class is not scored (`--drop-unscored`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub samples: usize,
    /// Per model class (by name), how many of its samples were dropped.
    pub by_class: BTreeMap<String, usize>,
    /// Why: the rule that dropped them.
    pub reason: String,
}

impl LabelSpace {
    /// The model's classes, all scored.
    pub fn plain(classes: &[String]) -> LabelSpace {
        LabelSpace {
            classes: classes.to_vec(),
            model_classes: classes.to_vec(),
            scored: (0..classes.len() as u32).map(Some).collect(),
            narrowed_by: None,
            drop_unscored: false,
        }
    }

    /// Scored `classes` made of `model_classes`: a subset (for each scored class, its
    /// model class) or a coarse map (for each scored class, its model classes).
    pub fn narrowed(
        classes: &[String],
        model_classes: &[String],
        subset: Option<&[usize]>,
        map: Option<&[Vec<usize>]>,
        drop_unscored: bool,
    ) -> LabelSpace {
        let mut scored = vec![None; model_classes.len()];
        let mut narrowed_by = None;
        if let Some(s) = subset {
            narrowed_by = Some("--class-subset");
            for (i, &m) in s.iter().enumerate() {
                scored[m] = Some(i as u32);
            }
        } else if let Some(groups) = map {
            narrowed_by = Some("--class-map");
            for (i, g) in groups.iter().enumerate() {
                for &m in g {
                    scored[m] = Some(i as u32);
                }
            }
        } else {
            scored = (0..model_classes.len() as u32).map(Some).collect();
        }
        LabelSpace {
            classes: classes.to_vec(),
            model_classes: model_classes.to_vec(),
            scored,
            narrowed_by,
            drop_unscored,
        }
    }

    /// The label space of a model's spec: its scored classes, narrowed by its
    /// subset or coarse map.
    pub fn of_spec(spec: &crate::spec::ModelSpec, drop_unscored: bool) -> LabelSpace {
        match &spec.model_classes {
            None => LabelSpace {
                drop_unscored,
                ..LabelSpace::plain(&spec.classes)
            },
            Some(model) => LabelSpace::narrowed(
                &spec.classes,
                model,
                spec.class_subset.as_deref(),
                spec.class_map.as_deref(),
                drop_unscored,
            ),
        }
    }

    /// A label that indexes the model's classes; `None` when it is beyond them.
    pub fn by_index(&self, i: usize) -> Option<Resolved> {
        let s = self.scored.get(i)?;
        Some(s.map_or(Resolved::Unscored(i), Resolved::Class))
    }

    /// A label that is a name: a scored class's, else a model class's.
    pub fn by_name(&self, name: &str) -> Option<Resolved> {
        if let Some(i) = self.classes.iter().position(|c| c == name) {
            return Some(Resolved::Class(i as u32));
        }
        let m = self.model_classes.iter().position(|c| c == name)?;
        self.by_index(m)
    }

    /// "the model's 10 classes (0, 1, 2, ...)" or "the --class-subset classes (5, 6)".
    pub fn describe(&self) -> String {
        let names = some_names(&self.classes);
        match self.narrowed_by {
            None => format!("the model's {} classes ({names})", self.classes.len()),
            Some("--class-map") => format!("the --class-map coarse classes ({names})"),
            Some(flag) => format!("the {flag} classes ({names})"),
        }
    }

    /// Why a model class is not scored, for messages.
    fn unscored_why(&self, m: usize) -> String {
        let name = self.model_classes.get(m).map_or("?", String::as_str);
        match self.narrowed_by {
            Some("--class-map") => format!("model class `{name}` is in no group of --class-map"),
            Some(flag) => format!("model class `{name}` is outside {flag}"),
            None => format!("model class `{name}` is not scored"),
        }
    }

    /// Every sample's scored class, or [`DROPPED`] for an unscored one with
    /// `--drop-unscored`. Without it the first unscored sample is an error naming
    /// its label and its row (`row(i)`: "line 12 of m.csv", "sample 17 of ...").
    pub fn settle(
        &self,
        resolved: &[Resolved],
        label_text: &dyn Fn(usize) -> String,
        row: &dyn Fn(usize) -> String,
    ) -> Result<(Vec<u32>, Option<Dropped>)> {
        let mut dropped = Dropped::default();
        let mut labels = Vec::with_capacity(resolved.len());
        for (i, r) in resolved.iter().enumerate() {
            match *r {
                Resolved::Class(c) => labels.push(c),
                Resolved::Unscored(m) if self.drop_unscored => {
                    labels.push(DROPPED);
                    dropped.samples += 1;
                    *dropped
                        .by_class
                        .entry(self.model_classes[m].clone())
                        .or_default() += 1;
                }
                Resolved::Unscored(m) => bail!(
                    "{}: label {} names a class that is not scored ({}; rotbench scores {}); \
                     to leave such samples out, pass --drop-unscored (they are counted in summary.json), \
                     or score that class too",
                    row(i),
                    label_text(i),
                    self.unscored_why(m),
                    self.describe()
                ),
            }
        }
        if dropped.samples == 0 {
            return Ok((labels, None));
        }
        if dropped.samples == labels.len() {
            bail!(
                "--drop-unscored: every one of the {} samples is of a class that is not scored ({}); \
                 check the data against {}",
                labels.len(),
                dropped.by_class.keys().cloned().collect::<Vec<_>>().join(", "),
                self.describe()
            );
        }
        dropped.reason = format!(
            "--drop-unscored: their class is not among {}",
            self.describe()
        );
        Ok((labels, Some(dropped)))
    }
}

/// Up to six names, comma-separated, then `...`.
pub fn some_names(names: &[String]) -> String {
    let mut s = names.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 6 {
        s.push_str(", ...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_win_over_indices_and_indices_are_into_the_models_classes() {
        let digits: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        // Issue #31, case 3: a subset of 5..9 of a model whose classes are digits.
        let sub = LabelSpace::narrowed(
            &v(&["5", "6", "7", "8", "9"]),
            &digits,
            Some(&[5, 6, 7, 8, 9]),
            None,
            false,
        );
        assert_eq!(sub.by_name("7"), Some(Resolved::Class(2)));
        assert_eq!(
            sub.by_name("3"),
            Some(Resolved::Unscored(3)),
            "digit 3, not subset class 3"
        );
        assert_eq!(sub.by_index(3), Some(Resolved::Unscored(3)));
        assert_eq!(sub.by_index(9), Some(Resolved::Class(4)));
        assert_eq!(sub.by_index(10), None);
        assert_eq!(sub.by_name("seven"), None);
        let err = sub
            .settle(
                &[Resolved::Class(0), Resolved::Unscored(3)],
                &|_| "`3`".into(),
                &|i| format!("line {}", i + 2),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("line 3: label `3`")
                && err.contains("outside --class-subset")
                && err.contains("--drop-unscored"),
            "{err}"
        );
        let dropping = LabelSpace {
            drop_unscored: true,
            ..sub
        };
        let (labels, dropped) = dropping
            .settle(
                &[
                    Resolved::Class(0),
                    Resolved::Unscored(3),
                    Resolved::Unscored(3),
                ],
                &|_| String::new(),
                &|_| String::new(),
            )
            .unwrap();
        assert_eq!(labels, [0, DROPPED, DROPPED]);
        let d = dropped.unwrap();
        assert_eq!((d.samples, d.by_class["3"]), (2, 2));
    }

    #[test]
    fn a_coarse_map_scores_its_groups_and_names_either_level() {
        let fine = v(&["cat", "dog", "car"]);
        let map = LabelSpace::narrowed(&v(&["animal"]), &fine, None, Some(&[vec![0, 1]]), false);
        assert_eq!(map.by_name("animal"), Some(Resolved::Class(0)));
        assert_eq!(map.by_name("dog"), Some(Resolved::Class(0)));
        assert_eq!(map.by_index(2), Some(Resolved::Unscored(2)));
        assert!(map
            .describe()
            .contains("--class-map coarse classes (animal)"));
    }
}

/// For tests: `n` classes named `0`, `1`, ..., all scored.
#[cfg(test)]
pub(crate) fn numbered(n: usize) -> LabelSpace {
    LabelSpace::plain(&(0..n).map(|i| i.to_string()).collect::<Vec<_>>())
}
