//! Matching a compiled pattern against a record's view (EventBridge rules, spec 2.5).
//!
//! - Keys of an object are ANDed; the matchers of a leaf list are ORed; the alternatives
//!   of a `$or` are ORed, matched at the position of the object holding it, and ANDed with
//!   that object's other keys.
//! - A leaf matches when any scalar at that position does (an array in the record matches
//!   if any element does; an object holds no scalar, so only `exists: false` matches it).
//! - A nested pattern against an array matches if any element matches the whole nested
//!   pattern; against a missing key it is matched as absent, so `exists: false` below a
//!   missing key matches.
//! - Exact values compare as JSON values: strings to strings (no case folding), numbers
//!   to numbers of the same JSON value (`5` matches `5`, not `"5"` nor `5.0`), `true`,
//!   `false` and `null` to themselves. `null` does not match a missing key.
//! - `numeric` applies only to JSON numbers; `prefix`, `suffix` and `equals-ignore-case`
//!   only to strings (case folded by Unicode lowercasing, without allocating);
//!   `anything-but` matches any scalar that is present and equals none of its values.
//! - Kinesis `data` that is not JSON fails every field addressing it, `exists: false`
//!   included: Lambda drops such records for a pattern on `data`.

use super::pattern::{FieldPattern, Literal, Matcher, ObjectPattern};
use super::record_view::{Leaf, Node};

/// Whether `node` (absent: `None`) matches the object pattern.
pub(crate) fn object_matches(pattern: &ObjectPattern, node: Option<&Node<'_>>) -> bool {
    if let Some(items) = node.and_then(Node::as_array) {
        if !items.is_empty() {
            return items
                .iter()
                .any(|item| object_matches(pattern, Some(&Node::Json(item))));
        }
    }
    pattern.fields.iter().all(|(key, field)| {
        let child = node.and_then(|n| n.get(key));
        field_matches(field, child.as_ref())
    }) && (pattern.any_of.is_empty()
        || pattern
            .any_of
            .iter()
            .any(|alternative| object_matches(alternative, node)))
}

fn field_matches(field: &FieldPattern, node: Option<&Node<'_>>) -> bool {
    if matches!(node, Some(Node::NotJson)) {
        return false;
    }
    match field {
        FieldPattern::Object(inner) => object_matches(inner, node),
        FieldPattern::Leaf(matchers) => matchers.iter().any(|m| leaf_matches(m, node)),
    }
}

fn leaf_matches(matcher: &Matcher, node: Option<&Node<'_>>) -> bool {
    let any = |f: &mut dyn FnMut(&Leaf<'_>) -> bool| {
        node.is_some_and(|n| n.any_leaf(&mut |leaf| f(&leaf)))
    };
    match matcher {
        Matcher::Exists(expected) => any(&mut |_| true) == *expected,
        Matcher::Exact(literal) => any(&mut |leaf| equals(literal, leaf)),
        Matcher::Prefix(prefix) => {
            any(&mut |leaf| matches!(leaf, Leaf::Str(s) if s.starts_with(prefix.as_str())))
        }
        Matcher::Suffix(suffix) => {
            any(&mut |leaf| matches!(leaf, Leaf::Str(s) if s.ends_with(suffix.as_str())))
        }
        Matcher::EqualsIgnoreCase(lowercase) => any(
            &mut |leaf| matches!(leaf, Leaf::Str(s) if s.chars().flat_map(char::to_lowercase).eq(lowercase.chars())),
        ),
        Matcher::AnythingBut(excluded) => {
            any(&mut |leaf| !excluded.iter().any(|literal| equals(literal, leaf)))
        }
        Matcher::Numeric(range) => any(&mut |leaf| match leaf {
            Leaf::Num(n) => n.as_f64().is_some_and(|n| range.contains(n)),
            _ => false,
        }),
    }
}

fn equals(literal: &Literal, leaf: &Leaf<'_>) -> bool {
    match (literal, leaf) {
        (Literal::Str(a), Leaf::Str(b)) => a == b,
        (Literal::Num(a), Leaf::Num(b)) => a == b,
        (Literal::Bool(a), Leaf::Bool(b)) => a == b,
        (Literal::Null, Leaf::Null) => true,
        _ => false,
    }
}
