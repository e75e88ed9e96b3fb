//! Kinesis sequence numbers: decimal strings of up to 128 bits, unique per shard and increasing
//! within it, but not consecutive. Compared as numbers (by length, then digit by digit), never
//! parsed into a machine integer.

use std::cmp::Ordering;
use std::fmt;

/// One sequence number, as Kinesis gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeqNo(String);

impl SeqNo {
    /// `None` when `s` is not a non-empty string of ASCII digits.
    pub fn parse(s: &str) -> Option<SeqNo> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = s.trim_start_matches('0');
        Some(SeqNo(
            if trimmed.is_empty() { "0" } else { trimmed }.to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SeqNo {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for SeqNo {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_as_numbers_beyond_128_bits() {
        let a = SeqNo::parse("49590338271490256608559692538361571095921575989136588898").unwrap();
        let b = SeqNo::parse("49590338271490256608559692540925702759324208523137515618").unwrap();
        assert!(a < b);
        assert!(SeqNo::parse("9").unwrap() < SeqNo::parse("10").unwrap());
        assert_eq!(SeqNo::parse("007"), SeqNo::parse("7"));
        assert_eq!(SeqNo::parse("0").unwrap().as_str(), "0");
        assert!(SeqNo::parse("").is_none());
        assert!(SeqNo::parse("12a").is_none());
        assert!(SeqNo::parse("-1").is_none());
    }
}
