//! Node counts over time as step functions: their integral (node-hours) and their sliding
//! maximum over a window (a node kept that long after it empties).

use hubpack_core::model::Millis;
use std::collections::BinaryHeap;

/// A count that holds from each breakpoint until the next one (or the end); 0 before the
/// first. Breakpoints are ascending and distinct.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub points: Vec<(Millis, u64)>,
}

impl Step {
    /// From `(time, value)` pairs in ascending time: a later pair at the same time wins,
    /// and repeated values are merged.
    pub fn from_sorted(pairs: impl IntoIterator<Item = (Millis, u64)>) -> Step {
        let mut points: Vec<(Millis, u64)> = Vec::new();
        for (t, v) in pairs {
            if let Some(last) = points.last_mut()
                && last.0 == t
            {
                last.1 = v;
            } else {
                points.push((t, v));
            }
            // Drop a point that only repeats its predecessor's value.
            let n = points.len();
            if n >= 2 && points[n - 2].1 == points[n - 1].1 {
                points.pop();
            }
        }
        Step { points }
    }

    /// The value at `t`.
    pub fn at(&self, t: Millis) -> u64 {
        match self.points.partition_point(|&(s, _)| s <= t) {
            0 => 0,
            i => self.points[i - 1].1,
        }
    }

    /// The largest value taken in `[0, end)`.
    pub fn peak(&self, end: Millis) -> u64 {
        let before = self.at(0);
        self.points
            .iter()
            .filter(|&&(t, _)| (0..end).contains(&t))
            .map(|&(_, v)| v)
            .fold(before, u64::max)
    }

    /// ∫ value dt over `[0, end)`, in hours.
    pub fn hours(&self, end: Millis) -> f64 {
        let mut total: i128 = 0;
        let mut from = 0;
        let mut value = self.at(0);
        for &(t, v) in &self.points {
            if t <= 0 {
                continue;
            }
            if t >= end {
                break;
            }
            total += i128::from(value) * i128::from(t - from);
            (from, value) = (t, v);
        }
        total += i128::from(value) * i128::from((end - from).max(0));
        total as f64 / 3.6e6
    }

    /// `max(self(s) : t − window ≤ s ≤ t)`: each unit of the count kept for `window` after
    /// it ends, a gap shorter than that bridged. `None` keeps it for ever.
    pub fn sliding_max(&self, window: Option<Millis>) -> Step {
        // Each piece [start, next) enters the window at its start and leaves at next + window.
        let pieces: Vec<(Millis, Millis, u64)> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, &(t, v))| {
                let next = self.points.get(i + 1).map_or(Millis::MAX, |p| p.0);
                let leave = match window {
                    Some(w) if next != Millis::MAX => next.saturating_add(w),
                    _ => Millis::MAX,
                };
                (t, leave, v)
            })
            .collect();
        let mut times: Vec<Millis> = pieces
            .iter()
            .flat_map(|&(s, l, _)| [s, l])
            .filter(|&t| t != Millis::MAX)
            .collect();
        times.sort_unstable();
        times.dedup();
        // (value, leave) in a max-heap; expired entries are dropped when they reach the top.
        let mut heap: BinaryHeap<(u64, Millis)> = BinaryHeap::new();
        let mut next_piece = 0;
        let mut out = Vec::with_capacity(times.len());
        for t in times {
            while next_piece < pieces.len() && pieces[next_piece].0 <= t {
                let (_, leave, v) = pieces[next_piece];
                heap.push((v, leave));
                next_piece += 1;
            }
            while heap.peek().is_some_and(|&(_, leave)| leave <= t) {
                heap.pop();
            }
            out.push((t, heap.peek().map_or(0, |&(v, _)| v)));
        }
        Step::from_sorted(out)
    }

    /// The pointwise sum of several step functions.
    pub fn sum(steps: &[Step]) -> Step {
        let mut times: Vec<Millis> = steps
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        times.sort_unstable();
        times.dedup();
        Step::from_sorted(
            times
                .into_iter()
                .map(|t| (t, steps.iter().map(|s| s.at(t)).sum())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn step(p: &[(Millis, u64)]) -> Step {
        Step::from_sorted(p.iter().copied())
    }

    #[test]
    fn hours_integrate_to_the_end_only() {
        let s = step(&[(0, 2), (H, 1), (3 * H, 0)]);
        assert_eq!(s.hours(4 * H), 4.0);
        assert_eq!(s.hours(2 * H), 3.0);
        assert_eq!(s.peak(4 * H), 2);
        assert_eq!(s.at(H), 1);
        assert_eq!(s.at(-1), 0);
    }

    #[test]
    fn repeats_merge_and_later_pairs_at_one_time_win() {
        let s = step(&[(0, 1), (5, 1), (7, 3), (7, 2)]);
        assert_eq!(s.points, vec![(0, 1), (7, 2)]);
    }

    #[test]
    fn sliding_max_keeps_each_unit_for_the_window_and_bridges_short_gaps() {
        // 2 nodes for an hour, 0 for 5 min, 1 for an hour, then none.
        let m = 60_000;
        let s = step(&[(0, 2), (H, 0), (H + 5 * m, 1), (2 * H + 5 * m, 0)]);
        let kept = s.sliding_max(Some(10 * m));
        // The second node lingers 10 min after the first hour; the first bridges the gap
        // and lingers 10 min after the end.
        assert_eq!(
            kept.points,
            vec![(0, 2), (H + 10 * m, 1), (2 * H + 15 * m, 0)]
        );
        // 2 nodes for 70 min, then 1 for 65 min.
        assert!((kept.hours(4 * H) - 205.0 / 60.0).abs() < 1e-9);
        // Kept for ever: the peak to the end.
        assert_eq!(s.sliding_max(None).points, vec![(0, 2)]);
        // No window: unchanged.
        assert_eq!(s.sliding_max(Some(0)), s);
    }

    #[test]
    fn sums_add_pointwise() {
        let a = step(&[(0, 1), (10, 0)]);
        let b = step(&[(5, 2), (20, 0)]);
        assert_eq!(
            Step::sum(&[a, b]).points,
            vec![(0, 1), (5, 3), (10, 2), (20, 0)]
        );
    }
}
