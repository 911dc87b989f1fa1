//! The event agenda: a min-heap keyed by (time, sequence), so events at the same instant run
//! in the order they were scheduled and every run with the same seed is identical.

use hubpack_core::model::Millis;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Entry<E> {
    at: Millis,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub struct Agenda<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    seq: u64,
    now: Millis,
    processed: u64,
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
            seq: 0,
            now: 0,
            processed: 0,
        }
    }
}

impl<E> Agenda<E> {
    /// Schedules `event` at `at`; a time in the past runs at the current time instead.
    pub fn at(&mut self, at: Millis, event: E) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at: at.max(self.now),
            seq: self.seq,
            event,
        }));
    }

    /// The next event and its time, advancing the clock.
    pub fn pop(&mut self) -> Option<(Millis, E)> {
        let Reverse(e) = self.heap.pop()?;
        self.now = e.at;
        self.processed += 1;
        Some((e.at, e.event))
    }

    /// When the next event is due.
    pub fn peek_time(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn processed(&self) -> u64 {
        self.processed
    }
}

/// Seconds (as scenario files write them) to milliseconds.
pub fn secs(s: f64) -> Millis {
    (s * 1000.0).round() as Millis
}

pub const MINUTE: Millis = 60_000;
pub const HOUR: Millis = 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut a = Agenda::default();
        a.at(10, "b");
        a.at(5, "a");
        a.at(10, "c");
        assert_eq!(a.pop(), Some((5, "a")));
        assert_eq!(a.pop(), Some((10, "b")));
        a.at(0, "late");
        // Scheduled in the past: runs now, after what was already due now.
        assert_eq!(a.pop(), Some((10, "c")));
        assert_eq!(a.pop(), Some((10, "late")));
        assert_eq!(a.pop(), None);
    }
}
