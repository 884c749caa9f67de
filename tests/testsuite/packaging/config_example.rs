//! `config.example.toml` parses, matches the built-in `[server]` defaults, and documents every
//! key of every section. The keys come from the config types themselves (the field names
//! serde's derive gives each section), so a key added to the code and not to the example
//! fails here; a key counts only as a line of its own section (`cdr_password =` in
//! `[isymphony]` does not document `[server] password`).

use isymphony_sync::config::{
    Config, FaultRule, FaultsConfig, FreepbxConfig, IsymphonyConfig, LiveConfig, ServerConfig,
    SyncConfig,
};
use serde::de::{self, Deserialize, Visitor};
use std::collections::{BTreeMap, BTreeSet};

/// A deserializer that records the field names a derived struct asks for, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct with named fields"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The TOML keys of `T` (its serde field names; `#[serde(skip)]` fields are not keys).
fn keys<T: for<'de> Deserialize<'de>>() -> BTreeSet<&'static str> {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    assert!(
        !fields.is_empty(),
        "{} has no named fields",
        std::any::type_name::<T>()
    );
    fields.iter().copied().collect()
}

/// Every section and the type that reads it.
fn sections() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    BTreeMap::from([
        ("server", keys::<ServerConfig>()),
        ("server.faults", keys::<FaultsConfig>()),
        ("freepbx", keys::<FreepbxConfig>()),
        ("isymphony", keys::<IsymphonyConfig>()),
        ("sync", keys::<SyncConfig>()),
        ("live", keys::<LiveConfig>()),
    ])
}

/// A line with its comment marker taken off (`# key = 1` → `key = 1`).
fn uncommented(line: &str) -> &str {
    line.trim().trim_start_matches('#').trim_start()
}

/// The example's text by section: `[name]` or `# [name]` alone on a line opens one.
fn by_section(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let l = uncommented(line);
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.to_string();
        }
        out.entry(current.clone()).or_default().push(l.to_string());
    }
    out
}

/// The key a line sets (`key = …`, commented or not), if it sets one.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(key)
}

#[test]
fn example_parses_and_documents_every_key_of_every_section() {
    let text = include_str!("../../../config.example.toml");
    let cfg = Config::parse(text).expect("config.example.toml parses");
    let d = ServerConfig::default();
    assert_eq!(cfg.server.http_listen, d.http_listen);
    assert_eq!(cfg.server.acl, d.acl);
    assert_eq!(cfg.server.data_dir, d.data_dir);
    assert_eq!(cfg.server.max_body_bytes, d.max_body_bytes);

    let sections = sections();
    let top: BTreeSet<&str> = sections
        .keys()
        .filter(|s| !s.contains('.'))
        .copied()
        .collect();
    assert_eq!(
        keys::<Config>(),
        top,
        "a section of Config is not checked here"
    );

    let example = by_section(text);
    let mut missing = Vec::new();
    for (section, keys) in &sections {
        let lines = example.get(*section).map(Vec::as_slice).unwrap_or_default();
        let documented: BTreeSet<&str> = lines.iter().filter_map(|l| key_of(l)).collect();
        for key in keys {
            // A key that is a table of its own (`[server.faults]`) is documented as a section.
            let table = format!("{section}.{key}");
            if !documented.contains(key) && !example.contains_key(&table) {
                missing.push(format!("[{section}] {key}"));
            }
        }
    }
    // A fault rule is an inline table: its keys are documented inside the faults section.
    let faults = example["server.faults"].join("\n");
    for key in keys::<FaultRule>() {
        if !faults.contains(&format!("{key} = ")) {
            missing.push(format!("[server.faults] {{ {key} = … }}"));
        }
    }
    assert!(
        missing.is_empty(),
        "config.example.toml does not document:\n{}",
        missing.join("\n")
    );
}

/// Every `[server]` and `[server.faults]` key also works when set explicitly: a config that
/// sets all of them parses (an unknown or misspelt key would be refused).
#[test]
fn every_server_key_can_be_set() {
    let full = "[server]\nenabled = true\nagent_listen = \"127.0.0.1:3\"\n\
        http_listen = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\n\
        tls_cert = \"/c\"\ntls_key = \"/k\"\nusername = \"u\"\npassword = \"p\"\n\
        realm = \"r\"\n\
        acl = [\"10.0.0.0/8\"]\ndata_dir = \"/d\"\nmax_body_bytes = 10\n\
        voicemail_agents = []\nrecording_agents = []\nauth_fail_limit = 5\n\
        auth_fail_window = \"30s\"\nauth_block = \"2m\"\nlicensed_full_users = 3\n\
        max_connections = 9\nheader_read_timeout = \"5s\"\nidle_timeout = \"20s\"\n\
        body_read_timeout = \"1m\"\nallowed_hosts = [\"pbx.example.com\"]\n\
        metrics_token = \"0123456789abcdef0123\"\n\
        [server.faults]\nseed = 1\nerror_500 = { share = 0.1 }\n\
        drop_after_apply = { share = 0.05, methods = [\"POST\"], paths = [\"x\"] }\n\
        latency = { share = 1.0, delay_ms = 1 }\nslow = { share = 0.01, delay_ms = 100 }\n";
    // `password_file` excludes `password`: set on its own, to a real file.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("password");
    std::fs::write(&file, "a-password-from-a-file\n").expect("write the password file");
    let alone = format!("[server]\npassword_file = \"{}\"\n", file.display());
    let from_file = Config::parse(&alone).expect("password_file alone");
    assert_eq!(from_file.server.password.expose(), "a-password-from-a-file");
    let set: BTreeSet<&str> = full
        .lines()
        .chain(alone.lines())
        .filter_map(key_of)
        .collect();
    let sections = sections();
    let mut unset: Vec<&&str> = sections["server"]
        .iter()
        .chain(&sections["server.faults"])
        .filter(|k| !set.contains(**k))
        .collect();
    unset.retain(|k| **k != "faults");
    assert!(unset.is_empty(), "the full config leaves out {unset:?}");
    let cfg = Config::parse(full).expect("every [server] key set");
    assert_eq!(cfg.server.licensed_full_users, Some(3));
    assert!(cfg.server.faults.is_some());
}

/// The example's commented `[server.faults]` block, uncommented, parses; faults stay off
/// unless the section is present.
#[test]
fn the_example_faults_block_parses_and_is_off_by_default() {
    let text = include_str!("../../../config.example.toml");
    let block: String = text
        .lines()
        .skip_while(|l| l.trim_end() != "# [server.faults]")
        .take_while(|l| l.starts_with('#'))
        .filter(|l| !l.starts_with("# #"))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    let cfg = Config::parse(&block).expect("the faults block parses");
    assert!(cfg.server.faults.expect("faults set").slow.is_some());
    assert!(ServerConfig::default().faults.is_none());
    let example = Config::parse(text).expect("config.example.toml parses");
    assert!(example.server.faults.is_none());
}

/// The key reader itself: derived names, skipped fields left out, and the per-section match
/// that tells `cdr_password` from `password`.
#[test]
fn the_key_reader_reads_sections_and_whole_keys() {
    let server = keys::<ServerConfig>();
    assert!(server.contains("licensed_full_users") && server.contains("password"));
    assert!(!server.contains("password_file_error"), "a skipped field");
    let example = by_section("[a]\n# cdr_password = \"x\"\n# [b]\npassword = 1\n");
    let a: Vec<&str> = example["a"].iter().filter_map(|l| key_of(l)).collect();
    assert_eq!(a, ["cdr_password"]);
    let b: Vec<&str> = example["b"].iter().filter_map(|l| key_of(l)).collect();
    assert_eq!(b, ["password"]);
}
