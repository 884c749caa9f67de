//! Every collection described in `api::resource` is served by the embedded server at the
//! description's path, with its natural key checked for duplicates (409) and read back under
//! the description's key and id fields: the client, the server and `observe` share one
//! description per kind, so a path or key changed there changes everywhere.

use crate::support;

use isymphony_sync::api::resource::{self, Resource};
use serde_json::{json, Map, Value};
use support::server::*;

/// A minimal valid object of `res` with natural key `key`.
fn object(res: &Resource, key: &str) -> Value {
    let mut m = Map::new();
    m.insert(res.key.to_string(), json!(key));
    if res.no_hash {
        m.insert("password".into(), json!("secret-1"));
    }
    Value::Object(m)
}

#[tokio::test]
async fn each_described_collection_is_routed_keyed_and_read_by_its_description() {
    let t = start().await;
    let cs = t.core_server("default").await;
    for res in resource::ALL {
        let list = res.list(&cs);
        expect(t.post(&list, object(&res, "k-1")).await, 204, "");
        let dup = t.post(&list, object(&res, "k-1")).await;
        // PBX connections may repeat a host; every other collection refuses a second key.
        let has_key_check = res.kind != isymphony_sync::model::Kind::PbxServer;
        if has_key_check {
            expect(dup, 409, "already exists");
        } else {
            expect(dup, 204, "");
        }
        let items = expect(t.get(&list).await, 200, "");
        let items = items.as_array().expect("a list");
        let ours: Vec<&Value> = items
            .iter()
            .filter(|o| o[res.key] == json!("k-1"))
            .collect();
        assert_eq!(
            ours.len(),
            if has_key_check { 1 } else { 2 },
            "{list}: {items:?}"
        );
        let id = ours[0][res.id].as_str().expect("an id").to_string();
        let one = expect(t.get(&res.item(&cs, &id)).await, 200, "");
        assert_eq!(one[res.key], json!("k-1"), "{}", res.item(&cs, &id));
        expect(t.delete(&res.item(&cs, &id)).await, 204, "");
        expect(t.get(&res.item(&cs, &id)).await, 404, "does not exist");
    }
}
