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
        "agent_listen",
        "http_listen",
        "https_listen",
        "tls_cert",
        "tls_key",
        "username",
        "password",
        "password_file",
        "realm",
        "acl",
        "data_dir",
        "max_body_bytes",
        "voicemail_agents",
        "recording_agents",
        "auth_fail_limit",
        "auth_fail_window",
        "auth_block",
        "max_connections",
        "header_read_timeout",
        "idle_timeout",
        "body_read_timeout",
        "allowed_hosts",
        "metrics_token",
        "seed",
        "error_500",
        "drop_after_apply",
        "latency",
        "slow",
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
        "[server]\nenabled = true\nagent_listen = \"127.0.0.1:3\"\nhttp_listen = \"127.0.0.1:1\"\nhttps_listen = \"127.0.0.1:2\"\n\
        tls_cert = \"/c\"\ntls_key = \"/k\"\nusername = \"u\"\npassword = \"p\"\nrealm = \"r\"\n\
        acl = [\"10.0.0.0/8\"]\ndata_dir = \"/d\"\nmax_body_bytes = 10\n\
        voicemail_agents = []\nrecording_agents = []\nauth_fail_limit = 5\n\
        auth_fail_window = \"30s\"\nauth_block = \"2m\"\nmax_connections = 9\n\
        header_read_timeout = \"5s\"\nidle_timeout = \"20s\"\nbody_read_timeout = \"1m\"\n\
        allowed_hosts = [\"pbx.example.com\"]\nmetrics_token = \"0123456789abcdef0123\"\n\
        [server.faults]\nseed = 1\nerror_500 = { share = 0.1 }\n\
        drop_after_apply = { share = 0.05, methods = [\"POST\"], paths = [\"x\"] }\n\
        latency = { share = 1.0, delay_ms = 1 }\nslow = { share = 0.01, delay_ms = 100 }\n";
    let cfg = Config::parse(full).unwrap();
    assert!(cfg.server.faults.is_some());
    // The example's commented [server.faults] block, uncommented, parses too.
    let block: String = text
        .lines()
        .skip_while(|l| l.trim_end() != "# [server.faults]")
        .take_while(|l| l.starts_with('#'))
        .filter(|l| !l.starts_with("# #"))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect();
    let cfg = Config::parse(&block).unwrap();
    assert!(cfg.server.faults.unwrap().slow.is_some());
    // Faults stay off unless the section is present.
    assert!(ServerConfig::default().faults.is_none());
    assert!(Config::parse(text).unwrap().server.faults.is_none());
}
