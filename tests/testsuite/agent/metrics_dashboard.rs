//! The Grafana dashboard in `examples/grafana-dashboard.json` references
//! only metrics the agent exports, and every metric the agent exports is on it. The exported
//! set is what a real agent (the release binary's daemon mode, against real MariaDB and an
//! embedded endpoint in this process) serves on its own port (`[server]
//! agent_listen`) at `/isymphony-sync/api/metrics`, after a pass, in the OpenMetrics format
//! that `prometheus-client` writes.

use crate::support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use support::agent::*;
use support::e2e::*;

/// Not the factory password: the service refuses that outside the demo. The
/// test's iSymphony uses it too.
const PW: &str = "Metrics-Dash-Pw-1";

fn agent_config(env: &Env) -> PathBuf {
    let dir = env.dir.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[server]\nagent_listen = \"127.0.0.1:0\"\nusername = \"manager\"\npassword = \"{PW}\"\n\
         data_dir = \"{}\"\n\n\
         [freepbx]\ndatabase_url = \"{}\"\nvoicemail_conf = \"{}\"\n\n\
         [isymphony]\nurl = \"{}\"\nusername = \"manager\"\npassword = \"{PW}\"\n\n\
         [sync]\nstate_dir = \"{}\"\n",
        dir.join("server").display(),
        env.db.url(),
        env.vm_path().display(),
        env.server().base_url(),
        dir.join("state").display(),
    );
    let p = env.dir.path().join("agent.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Metric families (`# TYPE` names) and the sample names an exposition declares: those of its
/// sample lines, and those each family's type implies (a labelled family may have no series
/// yet, e.g. no HTTP request answered).
fn exported(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let (Some(name), Some(kind)) = (w.next(), w.next()) else {
                continue;
            };
            families.insert(name.to_string());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            samples.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_string());
        }
    }
    (families, samples)
}

/// Every string in the dashboard that a data source evaluates: PromQL `expr`s and the
/// template variables' queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| queries(x, out)),
        _ => {}
    }
}

/// The `isymphony_sync_…` metric names a query mentions.
fn referenced(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(i) = rest.find("isymphony_sync_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Is `name` a sample name of family `family` (itself, or with an OpenMetrics suffix)?
fn sample_of(name: &str, family: &str) -> bool {
    name.strip_prefix(family).is_some_and(|s| {
        [
            "", "_total", "_created", "_bucket", "_sum", "_count", "_info",
        ]
        .contains(&s)
    })
}

/// What is wrong with `dashboard` against an exposition: names it uses that are not exported,
/// and exported families it does not show.
fn check(dashboard: &Value, exposition: &str) -> (Vec<String>, Vec<String>) {
    let (families, samples) = exported(exposition);
    let mut qs = Vec::new();
    queries(dashboard, &mut qs);
    let used: BTreeSet<String> = qs.iter().flat_map(|q| referenced(q)).collect();
    let unknown = used.difference(&samples).cloned().collect();
    let unshown = families
        .iter()
        .filter(|f| !used.iter().any(|u| sample_of(u, f)))
        .cloned()
        .collect();
    (unknown, unshown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_uses_only_and_all_exported_metrics() {
    let env = Env::new_with(3, |c| {
        c.server.password = isymphony_sync::secret::Secret::new(PW)
    })
    .await;
    let cfg = agent_config(&env);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    agent
        .wait_log(Duration::from_secs(60), |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    // One answered request, so that the request counter has a series.
    let r = get_logged_in(&root, "/isymphony-sync/api/status", PW).await;
    assert_eq!(r.status(), 200);
    let r = get_logged_in(&root, "/isymphony-sync/api/metrics", PW).await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let m = r.text().await.unwrap();
    assert!(m.ends_with("# EOF\n"), "not OpenMetrics:\n{m}");
    // After a pass, the labelled families have series too (a family without samples would
    // pass the check below vacuously).
    for want in [
        "isymphony_sync_passes_total{result=\"success\"}",
        "isymphony_sync_managed_objects{kind=\"extension\"} 3",
        "isymphony_sync_change_to_converged_seconds_bucket{le=\"0.05\"}",
        "isymphony_sync_change_to_converged_seconds_bucket{le=\"30.0\"}",
        "isymphony_sync_leader 1",
        "isymphony_sync_http_requests_total{method=\"GET\",status=\"200\"} 1",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (unknown, unshown) = check(&dashboard, &m);
    assert!(
        unknown.is_empty(),
        "{} uses metrics the agent does not export: {unknown:?}\nexported:\n{m}",
        path.display()
    );
    assert!(
        unshown.is_empty(),
        "{} does not show exported metrics: {unshown:?}",
        path.display()
    );
    let (families, _) = exported(&m);
    assert!(families.len() >= 13, "{families:?}");

    // The check itself notices a misspelt or removed metric and a missing panel.
    let mut broken = dashboard.clone();
    broken["panels"][0]["targets"][0]["expr"] = "isymphony_sync_leaders".into();
    let (unknown, unshown) = check(&broken, &m);
    assert_eq!(unknown, vec!["isymphony_sync_leaders".to_string()]);
    assert_eq!(
        unshown,
        Vec::<String>::new(),
        "the instance variable still shows it"
    );
    broken["templating"] = serde_json::json!({"list": []});
    let (_, unshown) = check(&broken, &m);
    assert_eq!(unshown, vec!["isymphony_sync_leader".to_string()]);
}
