//! The endpoint refuses a JSON value of the wrong type, as iSymphony does (issue 11 point 11).
//!
//! The wire types in `api::types` are tolerant so the agent can read any iSymphony (and the
//! PHP client's habits pass): a number may stand for a string and a numeric string for a
//! number. The endpoint accepts exactly that and nothing more. It compares each field of the
//! body with the same field after the round trip through the wire type: a known field whose
//! JSON type changed other than number <-> string (e.g. `true` read into a string field as
//! "true", or "1" into a boolean) is a 412 naming the field. Unknown fields come back
//! unchanged, so they always pass; `null` stands for "not set" everywhere.

use super::{Error, Obj};
use serde_json::Value;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn compatible(given: &Value, stored: &Value) -> bool {
    matches!(
        (given, stored),
        (Value::Null, _)
            | (Value::Bool(_), Value::Bool(_))
            | (
                Value::Number(_) | Value::String(_),
                Value::Number(_) | Value::String(_)
            )
            | (Value::Array(_), Value::Array(_))
            | (Value::Object(_), Value::Object(_))
    )
}

/// 412 for the first field of `given` whose type the wire type had to change.
pub fn same_types(given: &Obj, normalised: &Obj) -> Result<(), Error> {
    for (field, v) in given {
        let Some(out) = normalised.get(field) else {
            continue;
        };
        if !compatible(v, out) {
            let expected = match out {
                Value::Number(_) => "a number",
                other => kind(other),
            };
            return Err(Error::precondition(format!(
                "Invalid value for field '{field}': expected {expected}, got {}.",
                kind(v)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::normalise;
    use crate::api::types::{Extension, PbxServer, User};
    use serde_json::json;

    #[test]
    fn wrong_types_are_refused_with_the_field_named() {
        for (body, field) in [
            (json!({"extension": true}), "extension"),
            (
                json!({"extension": "1", "displayName": false}),
                "displayName",
            ),
            (
                json!({"extension": "1", "autoAnswer": "true"}),
                "autoAnswer",
            ),
            (json!({"extension": "1", "autoAnswer": 1}), "autoAnswer"),
            (json!({"extension": "1", "agentPaused": "0"}), "agentPaused"),
            (json!({"extension": "1", "peer": {"a": 1}}), "peer"),
            (json!({"extension": "1", "peer": [1]}), "peer"),
        ] {
            let e = normalise::<Extension>(body.clone(), &[]).unwrap_err();
            assert_eq!(e.status().as_u16(), 412, "{body}");
            assert!(e.message().contains(&format!("'{field}'")), "{body}: {e}");
        }
        let e = normalise::<User>(json!({"username": "a", "password": 5}), &[]).unwrap_err();
        assert!(e.message().contains("password"), "{e}");
        let e = normalise::<User>(json!({"username": "a", "full": "yes"}), &[]).unwrap_err();
        assert!(e.message().contains("full"), "{e}");
    }

    #[test]
    fn what_the_php_client_sends_passes() {
        // cxpanel: ports as strings, extension numbers as PHP ints, nulls for unset values,
        // fields the docs do not list.
        let p = normalise::<PbxServer>(
            json!({"host": "h", "port": "5038", "cdrPort": 3306, "enabled": true,
                   "cdrName": null, "password": "x", "extraThing": [1, {"a": true}]}),
            &[],
        )
        .unwrap();
        assert_eq!(p["port"], json!(5038));
        let e = normalise::<Extension>(
            json!({"extension": 1001, "autoAnswer": false, "restricted": false,
                   "agentPenalty": "0", "displayName": null}),
            &[],
        )
        .unwrap();
        assert_eq!(e["extension"], json!("1001"));
    }
}
