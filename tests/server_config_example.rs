//! `config.example.toml` parses, matches the built-in `[server]` defaults, and documents every
//! `[server]` key.

use isymphony_sync::config::{Config, ServerConfig};

#[test]
fn example_parses_and_documents_every_server_key() {
    let text = include_str!("../config.example.toml");
    let cfg = Config::parse(text).unwrap();
    let d = ServerConfig::default();
    assert_eq!(cfg.server.http_listen, d.http_listen);
    assert_eq!(cfg.server.acl, d.acl);
    assert_eq!(cfg.server.data_dir, d.data_dir);
    assert_eq!(cfg.server.max_body_bytes, d.max_body_bytes);
    for key in [
        "enabled",
        "http_listen",
        "https_listen",
        "tls_cert",
        "tls_key",
        "username",
        "password",
        "realm",
        "acl",
        "data_dir",
        "max_body_bytes",
        "voicemail_agents",
        "recording_agents",
    ] {
        let line = format!("{key} =");
        assert!(
            text.contains(&line),
            "config.example.toml does not document {key}"
        );
        // Each key also works when set explicitly in a [server] section.
    }
    // Every key of ServerConfig is in the list above: an unknown key would be rejected, and a
    // full example with all keys set must parse.
    let full =
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\n\
        tls_cert = \"/c\"\ntls_key = \"/k\"\nusername = \"u\"\npassword = \"p\"\nrealm = \"r\"\n\
        acl = [\"10.0.0.0/8\"]\ndata_dir = \"/d\"\nmax_body_bytes = 10\n\
        voicemail_agents = []\nrecording_agents = []\n";
    Config::parse(full).unwrap();
}
