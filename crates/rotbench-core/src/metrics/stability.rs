//! Stability between neighbouring angles, after ImageNet-P (Hendrycks &
//! Dietterich 2019): how often the top-1 prediction flips from one angle to the
//! next (`flip_prob` at difficulty 1), and how far the top-k ranking moves
//! (`ranking_dist`, mode top-k). The sweep's angles are a sequence in the order
//! the user gave them; it closes into a circle when it covers the full turn in
//! equal steps. `tests/reference_stability.rs` checks both against a
//! transcription of ImageNet-P's functions to 1e-12.

use super::calibration::NO_CLASS;

/// Whether `angles` (in sweep order) go round the full turn in equal steps, so
/// that the last angle's neighbour is the first: `0:360:5` does, `0:180:5` and
/// `0,90,270` do not.
pub fn is_circular(angles: &[f64]) -> bool {
    if angles.len() < 2 {
        return false;
    }
    let d = angles[1] - angles[0];
    d != 0.0
        && angles.windows(2).all(|w| ((w[1] - w[0]) - d).abs() <= 1e-9)
        && (angles.len() as f64 * d.abs() - 360.0).abs() <= 1e-9
}

/// For each position of `angles` (sweep order), the position it is compared with:
/// `step` places on (ImageNet-P's difficulty; 1 is the next angle), wrapping round
/// when the sweep is circular, none past the end of an open sweep (ImageNet-P's
/// `vid[i::d]` pairs: each frame with the frame `d` before it, not circular).
pub fn next_positions(angles: &[f64], step: usize) -> Vec<Option<usize>> {
    let n = angles.len();
    let circular = is_circular(angles);
    (0..n)
        .map(|i| {
            if i + step < n {
                Some(i + step)
            } else if circular && step < n {
                Some((i + step) % n)
            } else {
                None
            }
        })
        .collect()
}

/// ImageNet-P's top-k distance from one ranking to the next for one sample:
/// `sum_{p<k} |p - q_p|`, where `q_p` is the position in `b` of the class at
/// position `p` of `a`, or `k` when it is not in `b`'s top k. (ImageNet-P writes
/// this with cumulative sums over full rankings; capped at `k` it is the same.)
/// An invalid prediction's list ([`NO_CLASS`]) shares no class with the other:
/// the distance between two invalid lists is 0.
pub fn ranking_distance(a: &[u32], b: &[u32]) -> u64 {
    let k = a.len();
    if a.first() == Some(&NO_CLASS) && b.first() == Some(&NO_CLASS) {
        return 0;
    }
    a.iter()
        .enumerate()
        .map(|(p, c)| {
            let q = if *c == NO_CLASS {
                k
            } else {
                b.iter().position(|x| x == c).unwrap_or(k)
            };
            p.abs_diff(q) as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_turns_in_equal_steps_are_circular() {
        let turn: Vec<f64> = (0..72).map(|i| i as f64 * 5.0).collect();
        assert!(is_circular(&turn));
        assert!(is_circular(&[-180.0, -90.0, 0.0, 90.0]));
        assert!(is_circular(&[0.0, -120.0, -240.0]));
        assert!(!is_circular(&turn[..36]));
        assert!(!is_circular(&[0.0, 90.0, 270.0]));
        assert!(!is_circular(&[0.0]));
        assert_eq!(next_positions(&[0.0, 180.0], 1), [Some(1), Some(0)]);
        assert_eq!(next_positions(&[0.0, 90.0], 1), [Some(1), None]);
        // Difficulty 2: two places on; open sweeps stop, circular ones wrap.
        let open = [15.0, 14.0, 13.0, 12.0];
        assert_eq!(next_positions(&open, 2), [Some(2), Some(3), None, None]);
        let ring = [0.0, 90.0, 180.0, 270.0];
        assert_eq!(
            next_positions(&ring, 3),
            [Some(3), Some(0), Some(1), Some(2)]
        );
        assert_eq!(next_positions(&[0.0, 180.0], 2), [None, None]);
    }

    #[test]
    fn ranking_distance_by_hand() {
        assert_eq!(ranking_distance(&[1, 2, 3], &[1, 2, 3]), 0);
        // Swapping the first two: |0-1| + |1-0| = 2.
        assert_eq!(ranking_distance(&[1, 2, 3], &[2, 1, 3]), 2);
        // Class 3 leaves the top 3: position 2 -> 3 (k).
        assert_eq!(ranking_distance(&[1, 2, 3], &[1, 2, 4]), 1);
        // Nothing shared: 3 + 2 + 1.
        assert_eq!(ranking_distance(&[1, 2, 3], &[4, 5, 6]), 6);
        let none = [NO_CLASS; 3];
        assert_eq!(ranking_distance(&none, &none), 0);
        assert_eq!(ranking_distance(&none, &[1, 2, 3]), 6);
        assert_eq!(ranking_distance(&[1, 2, 3], &none), 6);
    }
}
