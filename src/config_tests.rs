//! Unit tests of `config` (kept apart so config.rs stays a readable size).

use super::*;

#[test]
fn empty_file_gives_defaults() {
    let c = Config::parse("").unwrap();
    // No embedded endpoint unless asked for; the service's own port is 58081.
    assert!(!c.server.enabled);
    assert_eq!(
        c.server.agent_endpoint(),
        AgentListen::Own("127.0.0.1:58081".parse().unwrap())
    );
    assert_eq!(c.server.http_listen.port(), 58080);
    assert_eq!(c.server.username, "manager");
    assert_eq!(c.sync.concurrency, 16);
    assert!(!c.sync.clean_unknown_items);
}

#[test]
fn agent_listen_shares_the_embedded_endpoint_only_when_asked() {
    let at = |t: &str| Config::parse(t).unwrap().server.agent_endpoint();
    let own = |a: &str| AgentListen::Own(a.parse().unwrap());
    assert_eq!(at("[server]\nenabled = true\n"), AgentListen::WithApi);
    assert_eq!(
        at("[server]\nenabled = true\nhttp_listen = \"127.0.0.1:9\"\nagent_listen = \"127.0.0.1:9\"\n"),
        AgentListen::WithApi
    );
    assert_eq!(
        at("[server]\nenabled = true\nagent_listen = \"127.0.0.1:58081\"\n"),
        own("127.0.0.1:58081")
    );
    assert_eq!(
        at("[server]\nagent_listen = \"[::1]:7000\"\n"),
        own("[::1]:7000")
    );
    // With the embedded endpoint off, even its address is the service's own listener.
    assert_eq!(
        at("[server]\nagent_listen = \"127.0.0.1:58080\"\n"),
        own("127.0.0.1:58080")
    );
}

#[test]
fn unknown_key_is_named() {
    let e = Config::parse("[server]\nenabeld = true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("enabeld"), "{e}");
}

#[test]
fn wrong_type_is_named() {
    let e = Config::parse("[server]\nenabled = \"yes\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("enabled"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
    assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
    assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
    assert!(parse_duration("soon").is_err());
    let c = Config::parse("[sync]\ndebounce = \"1s\"\nresync_interval = 30\n").unwrap();
    assert_eq!(c.sync.debounce, Duration::from_secs(1));
    assert_eq!(c.sync.resync_interval, Duration::from_secs(30));
}

#[test]
fn faults_section() {
    let c = Config::parse("").unwrap();
    assert!(c.server.faults.is_none());
    let c = Config::parse(
        "[server.faults]\nseed = 7\nerror_500 = { share = 0.1, methods = [\"POST\"] }\n\
         drop_after_apply = { share = 0.05, paths = [\"extensions\"] }\n\
         latency = { share = 1.0, delay_ms = 5 }\n",
    )
    .unwrap();
    let f = c.server.faults.unwrap();
    assert_eq!(f.seed, Some(7));
    assert_eq!(f.error_500.unwrap().methods, vec!["POST".to_string()]);
    assert_eq!(f.latency.unwrap().delay_ms, Some(5));
    let e = Config::parse("[server.faults]\nerror_500 = { share = 0.1, bogus = 1 }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
    let e = Config::parse("[server.faults]\nerror_500 = { share = 1.5 }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("error_500.share"), "{e}");
    let e = Config::parse("[server.faults]\nerror_500 = { share = 0.6 }\nslow = { share = 0.6 }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("add up"), "{e}");
    let e = Config::parse("[server.faults]\nerror_500 = { methods = [] }\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("share"), "{e}");
}

#[test]
fn auth_lockout_keys() {
    let c = Config::parse(
        "[server]\nauth_fail_limit = 3\nauth_fail_window = \"10s\"\nauth_block = \"2s\"\n",
    )
    .unwrap();
    assert_eq!(c.server.auth_fail_limit, 3);
    assert_eq!(c.server.auth_fail_window, Duration::from_secs(10));
    assert_eq!(c.server.auth_block, Duration::from_secs(2));
    assert_eq!(ServerConfig::default().auth_fail_limit, 10);
    assert!(Config::parse("[server]\nauth_fail_limit = 0\n").is_err());
}

#[test]
fn connection_limit_keys() {
    let d = ServerConfig::default();
    assert_eq!(d.max_connections, 256);
    assert_eq!(d.header_read_timeout, Duration::from_secs(10));
    assert_eq!(d.idle_timeout, Duration::from_secs(30));
    assert_eq!(d.body_read_timeout, Duration::from_secs(30));
    let c = Config::parse(
        "[server]\nmax_connections = 20\nheader_read_timeout = \"2s\"\n\
         idle_timeout = \"500ms\"\nbody_read_timeout = 3\n",
    )
    .unwrap();
    assert_eq!(c.server.max_connections, 20);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(2));
    assert_eq!(c.server.idle_timeout, Duration::from_millis(500));
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(3));
    let e = Config::parse("[server]\nmax_connections = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_connections"), "{e}");
    let e = Config::parse("[server]\nidle_timeout = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("idle_timeout"), "{e}");
    // The agent token is never read from a file.
    assert!(Config::parse("[isymphony]\nagent_token = \"x\"\n").is_err());
}

#[test]
fn debug_hides_passwords() {
    let c = Config::parse("[server]\npassword = \"s3cr3t-xyz\"\n").unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t-xyz"));
    let c = Config::parse("[isymphony]\nurl = \"http://u:s3cr3t-url@pbx/x/\"\n").unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cr3t-url") && shown.contains("http://pbx/x/"),
        "{shown}"
    );
}

#[test]
fn toml_errors_name_the_key_but_never_quote_the_line_or_value() {
    let e = Config::parse("[isymphony]\npasword = \"S3cr3t-typo\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("pasword"), "{e}");
    assert!(!e.contains("S3cr3t"), "{e}");
    let e = Config::parse("[sync]\nconcurrency = \"S3cr3t-type\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2") && e.contains("invalid type: string"),
        "{e}"
    );
    assert!(!e.contains("S3cr3t"), "{e}");
}
