//! FilterCriteria (spec 2.5): which records of a shard reach the function.
//!
//! Patterns are parsed once, when the config is resolved ([`FilterCriteria::parse`]); an
//! invalid one is a config error with AWS's "Invalid filter pattern definition.". The shard
//! reader then asks [`FilterCriteria::keeps`] for every record read: a record is kept when
//! there are no filters or any filter matches. Split in three: `pattern` (the syntax),
//! `record_view` (the JSON a filter sees, navigated in place) and `matcher` (the rules).

mod matcher;
mod pattern;
mod pruned;
mod record_view;

use std::fmt;

use crate::model::StreamRecord;

use self::pattern::ObjectPattern;
use self::pruned::Wanted;
use self::record_view::RecordView;

/// Most filters per mapping (AWS's default quota).
pub const MAX_FILTERS: usize = crate::limits::ESM_MAX_FILTERS;
/// Longest filter pattern (AWS: 4096 characters).
pub const MAX_FILTER_PATTERN_CHARS: usize = crate::limits::ESM_MAX_FILTER_PATTERN_CHARS;

/// A mapping's filters, compiled. Empty: every record is kept.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FilterCriteria {
    filters: Vec<ObjectPattern>,
    /// What the filters walk below Kinesis `data`: all the data parse keeps.
    data_wanted: Wanted,
}

/// Why a mapping's filters were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    TooMany {
        count: usize,
    },
    /// `position` is 1-based, in the order the filters are given.
    Invalid {
        position: usize,
        reason: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::TooMany { count } => {
                write!(f, "{count} filters: at most {MAX_FILTERS} allowed")
            }
            FilterError::Invalid { position, reason } => write!(
                f,
                "filter {position}: Invalid filter pattern definition. ({reason})"
            ),
        }
    }
}

impl std::error::Error for FilterError {}

impl FilterCriteria {
    /// Parses the patterns; the first problem is the error.
    pub fn parse(patterns: &[String]) -> Result<FilterCriteria, FilterError> {
        FilterCriteria::parse_all(patterns).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Parses the patterns, reporting every problem (never an empty list on error).
    pub fn parse_all(patterns: &[String]) -> Result<FilterCriteria, Vec<FilterError>> {
        let mut errors = Vec::new();
        if patterns.len() > MAX_FILTERS {
            errors.push(FilterError::TooMany {
                count: patterns.len(),
            });
        }
        let mut filters = Vec::with_capacity(patterns.len());
        for (i, text) in patterns.iter().enumerate() {
            let parsed = if text.chars().count() > MAX_FILTER_PATTERN_CHARS {
                Err(format!("longer than {MAX_FILTER_PATTERN_CHARS} characters"))
            } else {
                pattern::parse(text)
            };
            match parsed {
                Ok(pattern) => filters.push(pattern),
                Err(reason) => errors.push(FilterError::Invalid {
                    position: i + 1,
                    reason,
                }),
            }
        }
        if errors.is_empty() {
            let mut data_wanted = Wanted::default();
            for pattern in &filters {
                pattern.each_field(&mut |key, field| {
                    if key == "data" {
                        data_wanted.add(field);
                    }
                });
            }
            Ok(FilterCriteria {
                filters,
                data_wanted,
            })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether the record goes to the function: no filters, or any filter matches.
    pub fn keeps(&self, record: &StreamRecord) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let view = RecordView::new(record, &self.data_wanted);
        let root = view.root();
        self.filters
            .iter()
            .any(|pattern| matcher::object_matches(pattern, Some(&root)))
    }
}

#[cfg(test)]
mod rule_syntax_tests;
#[cfg(test)]
mod tests;
