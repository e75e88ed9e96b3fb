//! A bounded time series for the charts: a ring buffer that keeps the newest values.
//!
//! Pushing past the capacity overwrites the oldest value in place, so a series never grows
//! and never shifts its storage. A frame takes only the newest values its chart can show
//! ([`Series::tail`]), not the whole buffer.

/// The newest `capacity` values pushed, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<T> {
    /// Storage; once full, `values[start]` is the oldest value and the order wraps around.
    values: Vec<T>,
    start: usize,
    capacity: usize,
}

impl<T: Copy> Series<T> {
    /// An empty series that keeps at most `capacity` values (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Series {
            values: Vec::with_capacity(capacity),
            start: 0,
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends `value` as the newest; when full, the oldest value goes.
    pub fn push(&mut self, value: T) {
        if self.values.len() < self.capacity {
            self.values.push(value);
        } else {
            self.values[self.start] = value;
            self.start = (self.start + 1) % self.capacity;
        }
    }

    /// Appends every value in order, as [`Series::push`] would.
    pub fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        for v in values {
            self.push(v);
        }
    }

    /// The newest value.
    pub fn last(&self) -> Option<T> {
        let (older, newer) = self.as_slices();
        newer.last().or(older.last()).copied()
    }

    /// The values, oldest first, as two slices (the second is empty until the buffer wraps).
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let (newer, older) = self.values.split_at(self.start);
        (older, newer)
    }

    /// Every value, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + '_ {
        let (older, newer) = self.as_slices();
        older.iter().chain(newer).copied()
    }

    /// The newest `n` values (all of them if fewer), oldest first: what a chart `n` points
    /// wide shows.
    pub fn tail(&self, n: usize) -> Vec<T> {
        let (older, newer) = self.as_slices();
        let n = n.min(self.len());
        let from_newer = n.min(newer.len());
        let from_older = n - from_newer;
        let mut out = Vec::with_capacity(n);
        out.extend_from_slice(&older[older.len() - from_older..]);
        out.extend_from_slice(&newer[newer.len() - from_newer..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &Series<u32>) -> Vec<u32> {
        s.iter().collect()
    }

    #[test]
    fn keeps_at_most_its_capacity_dropping_the_oldest_first() {
        let mut s = Series::with_capacity(3);
        assert!(s.is_empty());
        assert_eq!(s.last(), None);
        s.extend([1, 2]);
        assert_eq!((all(&s), s.len()), (vec![1, 2], 2));
        s.push(3);
        assert_eq!(all(&s), [1, 2, 3]);
        s.push(4);
        assert_eq!(all(&s), [2, 3, 4], "1, the oldest, went first");
        s.push(5);
        assert_eq!(all(&s), [3, 4, 5]);
        assert_eq!((s.len(), s.capacity(), s.last()), (3, 3, Some(5)));
    }

    #[test]
    fn wraps_around_many_times_in_order() {
        let mut s = Series::with_capacity(4);
        for i in 0..1_003u32 {
            s.push(i);
            let expected: Vec<u32> = (i.saturating_sub(3)..=i).collect();
            assert_eq!(all(&s), expected, "after pushing {i}");
            assert_eq!(s.last(), Some(i));
        }
        let (older, newer) = s.as_slices();
        assert_eq!((older, newer), (&[999][..], &[1000, 1001, 1002][..]));
        assert_eq!(s.iter().rev().collect::<Vec<_>>(), [1002, 1001, 1000, 999]);
    }

    #[test]
    fn a_batch_larger_than_the_capacity_keeps_its_newest_values() {
        let mut s = Series::with_capacity(3);
        s.push(0);
        s.extend(1..=10);
        assert_eq!(all(&s), [8, 9, 10]);
    }

    #[test]
    fn tail_is_the_newest_values_across_the_wrap() {
        let mut s = Series::with_capacity(5);
        s.extend(1..=3);
        assert_eq!(s.tail(2), [2, 3], "not yet wrapped");
        assert_eq!(s.tail(10), [1, 2, 3], "fewer than asked: all");
        s.extend(4..=7); // storage now [6, 7, 3, 4, 5]
        assert_eq!(all(&s), [3, 4, 5, 6, 7]);
        assert_eq!(s.tail(1), [7]);
        assert_eq!(s.tail(2), [6, 7], "within the newer slice");
        assert_eq!(s.tail(4), [4, 5, 6, 7], "across the wrap");
        assert_eq!(s.tail(5), [3, 4, 5, 6, 7]);
        assert_eq!(s.tail(0), Vec::<u32>::new());
    }

    #[test]
    fn capacity_zero_keeps_one_value() {
        let mut s = Series::with_capacity(0);
        s.extend([1, 2]);
        assert_eq!((all(&s), s.capacity()), (vec![2], 1));
    }
}
