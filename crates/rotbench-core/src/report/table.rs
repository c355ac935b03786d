//! The readable table printed to stdout after a sweep.

use crate::format::format_angle;
use crate::poses::Pose;
use crate::summary::Summary;
use std::fmt::Write;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    for m in &s.models {
        let _ = writeln!(
            out,
            "model {}  ({} samples, {})",
            m.id.name, s.dataset.n, s.dataset.path
        );
        let _ = writeln!(
            out,
            "  {:>8}  {:>8}  {:>17}  {:>8}  {:>11}  {:>8}  {:>6}  {:>6}",
            "angle", "accuracy", "95% CI", "macro-F1", "consistency", "drop", "ECE", "flip"
        );
        for a in &m.angles {
            let mark = if a.reference && !a.in_sweep {
                " (reference)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:>8}  {:>8.4}  [{:.4}, {:.4}]  {:>8.4}  {:>11.4}  {:>+8.4}  {:>6.4}  {:>6}{}",
                pose_text(a.pose()),
                a.accuracy,
                a.accuracy_ci_low,
                a.accuracy_ci_high,
                a.f1_macro,
                a.consistency,
                a.accuracy_drop,
                a.ece,
                a.flip_next.map_or("-".to_string(), |f| format!("{f:.4}")),
                mark
            );
        }
        let w = &m.sweep;
        let _ = writeln!(
            out,
            "  mean accuracy {:.4}, worst {:.4} at {}°, worst-of-sweep {:.4}, relative robustness {:.4}",
            w.mean_accuracy,
            w.worst_accuracy,
            format_angle(w.worst_angle),
            w.worst_of_sweep_accuracy,
            w.relative_robustness
        );
        let _ = writeln!(
            out,
            "  flip probability {}, worst ECE {:.4} at {}°  (ECE: calibration error; flip: predictions that change at the next angle)",
            w.flip_probability
                .map_or("n/a (one angle)".to_string(), |f| format!("{f:.4}")),
            w.worst_ece,
            format_angle(w.worst_ece_angle)
        );
        if let Some(e) = &w.early_stop {
            let _ = writeln!(
                out,
                "  grid early stop: grid accuracy {:.4} over {} points from {} of {} evaluations; the other points' figures are left out",
                w.grid_accuracy, e.points, e.evaluations, e.evaluations_without_stop
            );
        }
        if w.worst_shift.is_some() || w.worst_of_k.is_some() {
            let mut line = format!(
                "  spatial (Engstrom et al.): natural {:.4}, grid {:.4} [{:.4}, {:.4}]",
                w.accuracy_at_reference,
                w.grid_accuracy,
                w.grid_accuracy_ci[0],
                w.grid_accuracy_ci[1]
            );
            if let Some(k) = &w.worst_of_k {
                let _ = write!(
                    line,
                    ", random {:.4}, worst-of-{} {:.4} [{:.4}, {:.4}]",
                    k.random_accuracy, k.k, k.accuracy, k.accuracy_ci[0], k.accuracy_ci[1]
                );
            }
            let _ = writeln!(out, "{line}");
        }
        for w in &m.id.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        if m.nonfinite_logits > 0 {
            let _ = writeln!(
                out,
                "  warning: {} predictions had NaN or inf logits and count as wrong",
                m.nonfinite_logits
            );
        }
    }
    for c in &s.comparisons {
        let _ = writeln!(out, "compare {} vs {}:", c.a, c.b);
        for p in &c.angles {
            let _ = writeln!(
                out,
                "  {:>8}  diff {:>+8.4}  McNemar p {}",
                pose_text(Pose {
                    angle: p.angle,
                    dx: p.dx,
                    dy: p.dy
                }),
                p.accuracy_diff,
                crate::format::format_p(p.mcnemar_p)
            );
        }
    }
    out
}

/// An angle, and its translation when it has one: `30`, `30 (+1.5,-3)`.
fn pose_text(p: Pose) -> String {
    if p.is_rotation() {
        format_angle(p.angle)
    } else {
        format!("{} ({:+},{:+})", format_angle(p.angle), p.dx, p.dy)
    }
}
