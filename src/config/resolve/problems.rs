//! The problem collector every section check writes into.
//!
//! Validation never stops at the first problem: each check adds `subject: message` lines
//! here and `resolve` fails once with all of them. The limit checks share one wording,
//! `key = value: must be EXPECTED` (`must be 1..=10000`, `must be -1 or 60..=604800`,
//! `must be >= 1`), produced by `bound` alone so that every section words them alike.

use std::fmt::Display;

/// Problems found so far, each `subject: message`.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) list: Vec<String>,
}

impl Problems {
    pub(super) fn add(&mut self, subject: &str, message: impl Display) {
        self.list.push(format!("{subject}: {message}"));
    }

    /// `key = value: must be EXPECTED` unless `ok`; returns `ok`.
    fn bound(
        &mut self,
        ok: bool,
        subject: &str,
        key: &str,
        value: impl Display,
        expected: impl Display,
    ) -> bool {
        if !ok {
            self.add(subject, format!("{key} = {value}: must be {expected}"));
        }
        ok
    }

    /// `key = value: must be lo..=hi` unless the value is in range.
    pub(super) fn range<T: PartialOrd + Display>(
        &mut self,
        subject: &str,
        key: &str,
        value: T,
        lo: T,
        hi: T,
    ) -> bool {
        let ok = value >= lo && value <= hi;
        self.bound(ok, subject, key, &value, format_args!("{lo}..={hi}"))
    }

    /// `seconds` as milliseconds when it is in `lo..=hi`, else 0 and a `range` problem.
    pub(super) fn seconds_as_ms(
        &mut self,
        subject: &str,
        key: &str,
        seconds: u64,
        lo: u64,
        hi: u64,
    ) -> u64 {
        if self.range(subject, key, seconds, lo, hi) {
            seconds * 1000
        } else {
            0
        }
    }

    /// `key = value: must be -1 or lo..=hi` unless the value is -1 (AWS's "unlimited") or
    /// in range.
    pub(super) fn range_or_minus_one(
        &mut self,
        subject: &str,
        key: &str,
        value: i64,
        lo: i64,
        hi: i64,
    ) -> bool {
        let ok = value == -1 || (lo..=hi).contains(&value);
        self.bound(ok, subject, key, value, format_args!("-1 or {lo}..={hi}"))
    }

    /// `key = value: must be >= min` unless it is.
    pub(super) fn at_least<T: PartialOrd + Display>(
        &mut self,
        subject: &str,
        key: &str,
        value: T,
        min: T,
    ) -> bool {
        let ok = value >= min;
        self.bound(ok, subject, key, &value, format_args!(">= {min}"))
    }

    /// `key = value: must be >= min` (or `> min` when `strict`); also refuses NaN and infinity.
    pub(super) fn float_min(
        &mut self,
        subject: &str,
        key: &str,
        value: f64,
        min: f64,
        strict: bool,
    ) -> bool {
        let (ok, op) = if strict {
            (value > min, ">")
        } else {
            (value >= min, ">=")
        };
        self.bound(ok, subject, key, value, format_args!("{op} {min}"))
            && self.bound(value.is_finite(), subject, key, value, "finite")
    }

    /// `KIND "NAME": name is used by more than one [[SECTION]] entry`, once for every name
    /// that occurs more than once, in first-seen order.
    pub(super) fn duplicate_names<'a>(
        &mut self,
        kind: &str,
        section: &str,
        names: impl Iterator<Item = &'a str>,
    ) {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for name in names {
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counts.push((name, 1)),
            }
        }
        for (name, _) in counts.into_iter().filter(|(_, c)| *c > 1) {
            self.add(
                &format!("{kind} {name:?}"),
                format!("name is used by more than one [[{section}]] entry"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_checks_share_one_wording() {
        let mut p = Problems::default();
        assert!(p.range("s", "k", 5, 1, 10));
        assert!(!p.range("s", "k", 0, 1, 10));
        assert!(p.range_or_minus_one("s", "k", -1, 60, 600));
        assert!(!p.range_or_minus_one("s", "k", 30, 60, 600));
        assert!(!p.at_least("s", "k", 0u64, 1));
        assert!(!p.float_min("s", "k", 0.0, 0.0, true));
        assert!(!p.float_min("s", "k", f64::INFINITY, 0.0, false));
        assert!(!p.range("s", "k", f64::NAN, 0.0, 1.0));
        assert_eq!(
            p.list,
            vec![
                "s: k = 0: must be 1..=10",
                "s: k = 30: must be -1 or 60..=600",
                "s: k = 0: must be >= 1",
                "s: k = 0: must be > 0",
                "s: k = inf: must be finite",
                "s: k = NaN: must be 0..=1",
            ]
        );
    }

    #[test]
    fn duplicate_names_are_listed_once_in_first_seen_order() {
        let mut p = Problems::default();
        p.duplicate_names(
            "stream",
            "streams",
            ["b", "a", "b", "a", "b", "c"].into_iter(),
        );
        assert_eq!(
            p.list,
            vec![
                "stream \"b\": name is used by more than one [[streams]] entry",
                "stream \"a\": name is used by more than one [[streams]] entry",
            ]
        );
    }
}
