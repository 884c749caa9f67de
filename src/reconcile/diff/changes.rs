//! Which fields an update changes, found by comparing an object's wire JSON before and after
//! the desired values are set on it: the field names are the wire types' serde names, written
//! once in `api::types`, and the values are rendered as the plan shows them (strings quoted).

use super::to_value;
use crate::reconcile::plan::Change;
use serde::Serialize;
use serde_json::Value;

/// The fields of `to` whose JSON differs from `from`'s, in the wire type's field order.
pub(super) fn changed_fields<T: Serialize + PartialEq>(from: &T, to: &T) -> Vec<Change> {
    changed_fields_masked(from, to, &[])
}

/// [`changed_fields`], with the values of the `secret` fields shown as `***`.
pub(super) fn changed_fields_masked<T: Serialize + PartialEq>(
    from: &T,
    to: &T,
    secret: &[String],
) -> Vec<Change> {
    // Equal values serialise alike: the common case of a converged object skips the two
    // JSON trees (most of a converged pass's CPU at 1,000 extensions).
    if from == to {
        return Vec::new();
    }
    let (Value::Object(a), Value::Object(b)) = (to_value(from), to_value(to)) else {
        return Vec::new();
    };
    b.into_iter()
        .filter_map(|(field, new)| {
            let old = a.get(&field).cloned().unwrap_or(Value::Null);
            if old == new {
                return None;
            }
            let masked = secret.contains(&field);
            let show = |v: Value| {
                if masked {
                    "***".to_string()
                } else {
                    v.to_string()
                }
            };
            Some(Change {
                from: show(old),
                to: show(new),
                field,
            })
        })
        .collect()
}

/// The change line of a pushed password (never its value).
pub(super) fn password_change() -> Change {
    Change {
        field: "password".into(),
        from: "***".into(),
        to: "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::Queue;

    #[test]
    fn changes_are_named_by_serde_and_rendered_like_the_plan() {
        let a = Queue {
            display_name: "Sales".into(),
            enabled: false,
            ..Default::default()
        };
        let mut b = a.clone();
        b.display_name = "Sales \"EU\"".into();
        b.enabled = true;
        let c = changed_fields(&a, &b);
        let got: Vec<(&str, &str, &str)> = c
            .iter()
            .map(|c| (c.field.as_str(), c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("displayName", "\"Sales\"", "\"Sales \\\"EU\\\"\""),
                ("enabled", "false", "true")
            ]
        );
        assert!(changed_fields(&a, &a).is_empty());
    }
}
