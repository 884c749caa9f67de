//! Unit tests of the scheduler (`scheduler.rs`), on tokio's paused clock.
use super::*;

#[derive(Debug, Clone)]
struct Run {
    start: Instant,
    end: Instant,
    req: PassRequest,
}

struct Harness {
    tx: TriggerSender,
    stop: CancellationToken,
    runs: Arc<Mutex<Vec<Run>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A scheduler whose fake pass takes `pass_time` and returns results from `results`
/// (then Ok).
fn harness(timing: Timing, pass_time: Duration, results: Vec<Next>) -> Harness {
    let (tx, rx) = channel();
    let stop = CancellationToken::new();
    let runs = Arc::new(Mutex::new(Vec::<Run>::new()));
    let results = Arc::new(Mutex::new(results));
    let view = Arc::new(Mutex::new(SchedulerView::default()));
    let r2 = runs.clone();
    let task = tokio::spawn(run(rx, timing, stop.clone(), view, move |req| {
        let runs = r2.clone();
        let results = results.clone();
        async move {
            let start = Instant::now();
            tokio::time::sleep(pass_time).await;
            runs.lock().unwrap().push(Run {
                start,
                end: Instant::now(),
                req,
            });
            let mut r = results.lock().unwrap();
            if r.is_empty() {
                Next::Converged
            } else {
                r.remove(0)
            }
        }
    }));
    Harness {
        tx,
        stop,
        runs,
        task,
    }
}

fn timing() -> Timing {
    Timing {
        debounce: Duration::from_millis(300),
        resync_interval: Duration::from_secs(600),
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        shutdown_grace: Duration::from_secs(8),
    }
}

async fn advance(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn assert_no_overlap(runs: &[Run]) {
    for w in runs.windows(2) {
        assert!(w[0].end <= w[1].start, "passes overlap: {runs:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn triggers_within_debounce_coalesce() {
    let h = harness(timing(), Duration::from_millis(50), vec![]);
    for _ in 0..5 {
        h.tx.trigger(TriggerSource::Database, false);
        advance(50).await;
    }
    h.tx.trigger(TriggerSource::File, false);
    advance(1000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0].req.sources,
        vec![TriggerSource::Database, TriggerSource::File]
    );
    assert!(!runs[0].req.full);
    assert!(runs[0].req.first_change.is_some());
}

#[tokio::test(start_paused = true)]
async fn first_pass_waits_for_the_debounce() {
    let h = harness(timing(), Duration::from_millis(10), vec![]);
    let t0 = Instant::now();
    h.tx.trigger(TriggerSource::Api, false);
    advance(1000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].start - t0, Duration::from_millis(300));
}

/// A window opened by a binary-log commit waits only COMMIT_DEBOUNCE; any other trigger in
/// the window brings back the configured debounce.
#[tokio::test(start_paused = true)]
async fn a_commit_from_the_binary_log_waits_only_the_commit_debounce() {
    let h = harness(timing(), Duration::from_millis(10), vec![]);
    let t0 = Instant::now();
    h.tx.trigger(TriggerSource::BinaryLog, false);
    advance(1000).await;
    let t1 = Instant::now();
    h.tx.trigger(TriggerSource::BinaryLog, false);
    h.tx.trigger(TriggerSource::Database, false);
    advance(1000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].start - t0, COMMIT_DEBOUNCE);
    assert_eq!(runs[1].start - t1, Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn triggers_during_a_pass_schedule_exactly_one_more() {
    let h = harness(timing(), Duration::from_secs(2), vec![]);
    h.tx.trigger(TriggerSource::Database, false);
    advance(500).await; // pass 1 running
    for _ in 0..10 {
        h.tx.trigger(TriggerSource::Database, false);
        advance(100).await;
    }
    h.tx.trigger(TriggerSource::Api, true);
    advance(10_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_no_overlap(&runs);
    assert!(
        runs[1].req.full,
        "the full flag of a coalesced trigger is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn never_two_passes_at_once_under_a_storm() {
    let h = harness(timing(), Duration::from_millis(700), vec![]);
    for i in 0..200 {
        h.tx.trigger(
            if i % 2 == 0 {
                TriggerSource::Database
            } else {
                TriggerSource::File
            },
            false,
        );
        advance(37).await;
    }
    advance(5000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_no_overlap(&runs);
    // 200 triggers over 7.4 s with 0.7 s passes: about one pass per second, not 200.
    assert!(runs.len() >= 5 && runs.len() <= 12, "{}", runs.len());
}

#[tokio::test(start_paused = true)]
async fn periodic_full_verify() {
    let mut t = timing();
    t.resync_interval = Duration::from_secs(10);
    let h = harness(t, Duration::from_millis(100), vec![]);
    advance(35_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r.req.full));
    assert!(runs
        .iter()
        .all(|r| r.req.sources == vec![TriggerSource::Timer]));
}

#[tokio::test(start_paused = true)]
async fn failures_retry_with_capped_backoff() {
    let h = harness(
        timing(),
        Duration::from_millis(10),
        vec![Next::Retry, Next::Retry, Next::Retry, Next::Retry],
    );
    h.tx.trigger(TriggerSource::Database, false);
    advance(30_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 5, "{runs:?}");
    let gaps: Vec<u128> = runs
        .windows(2)
        .map(|w| (w[1].start - w[0].end).as_millis())
        .collect();
    // 1 s, 2 s, 4 s, then capped at 4 s.
    assert_eq!(gaps, vec![1000, 2000, 4000, 4000]);
    assert!(runs[4].req.sources.contains(&TriggerSource::Retry));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_pass_finish() {
    let h = harness(timing(), Duration::from_secs(3), vec![]);
    h.tx.trigger(TriggerSource::Database, false);
    advance(1000).await;
    let t0 = Instant::now();
    h.stop.cancel();
    h.tx.trigger(TriggerSource::Database, false);
    h.task.await.unwrap();
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "the pass finished, no new one started");
    assert!(Instant::now() - t0 <= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_a_pass_that_overruns_the_grace() {
    let mut t = timing();
    t.shutdown_grace = Duration::from_secs(2);
    let h = harness(t, Duration::from_secs(60), vec![]);
    h.tx.trigger(TriggerSource::Database, false);
    advance(1000).await;
    let t0 = Instant::now();
    h.stop.cancel();
    h.task.await.unwrap();
    assert_eq!(Instant::now() - t0, Duration::from_secs(2));
    assert!(h.runs.lock().unwrap().is_empty(), "the pass was dropped");
}

#[tokio::test(start_paused = true)]
async fn skipped_passes_are_not_retried() {
    let h = harness(timing(), Duration::from_millis(10), vec![Next::Skipped]);
    h.tx.trigger(TriggerSource::Database, false);
    advance(20_000).await;
    assert_eq!(h.runs.lock().unwrap().len(), 1);
}

/// A partial pass that is settled (the same refusal again) is not retried: only the next
/// trigger or the periodic verify runs a pass; a failure after it starts the backoff anew.
#[tokio::test(start_paused = true)]
async fn a_settled_pass_waits_for_the_next_trigger() {
    let mut t = timing();
    t.resync_interval = Duration::from_secs(20);
    let h = harness(
        t,
        Duration::from_millis(10),
        vec![
            Next::Retry,
            Next::Settled,
            Next::Settled,
            Next::Retry,
            Next::Settled,
        ],
    );
    let t0 = Instant::now();
    h.tx.trigger(TriggerSource::Startup, true);
    advance(15_000).await;
    assert_eq!(
        h.runs.lock().unwrap().len(),
        2,
        "failed once, retried, settled"
    );
    h.tx.trigger(TriggerSource::Database, false);
    advance(1_000).await;
    assert_eq!(
        h.runs.lock().unwrap().len(),
        3,
        "a change still runs a pass"
    );
    advance(3_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    // The verify is due 20 s after the settled full pass (the retry at about 1.3 s).
    advance(20_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 5, "{runs:?}");
    assert_eq!(runs[3].req.sources, vec![TriggerSource::Timer]);
    let verify = runs[3].start - t0;
    assert!(
        verify >= Duration::from_secs(21) && verify < Duration::from_secs(22),
        "{verify:?}"
    );
    // The verify failed: retried after backoff_min again, not a doubled backoff.
    assert_eq!(runs[4].start - runs[3].end, Duration::from_secs(1));
    advance(15_000).await;
    assert_eq!(h.runs.lock().unwrap().len(), 6, "the next verify only");
}

/// A change that converges only after failed passes keeps the time it was detected, so
/// the change-to-converged latency includes the failures and the backoff.
#[tokio::test(start_paused = true)]
async fn a_retried_pass_keeps_the_time_of_the_change() {
    let h = harness(
        timing(),
        Duration::from_millis(10),
        vec![Next::Retry, Next::Retry],
    );
    let t0 = Instant::now();
    h.tx.trigger(TriggerSource::Database, false);
    advance(10_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for r in &runs {
        assert_eq!(r.req.first_change, Some(t0), "{runs:?}");
    }
    assert!(runs[2].req.sources.contains(&TriggerSource::Retry));
    assert!(runs[2].req.sources.contains(&TriggerSource::Database));
}

/// "Sync now" while a detected change is still pending (in the debounce window, in a
/// failed pass's backoff, or seen during a running pass) converges that change: the pass
/// it runs carries the change's detection time, so its latency is recorded.
#[tokio::test(start_paused = true)]
async fn a_manual_pass_that_takes_a_detected_change_keeps_its_time() {
    let h = harness(timing(), Duration::from_millis(500), vec![Next::Retry]);
    // Within the debounce window.
    let t0 = Instant::now();
    h.tx.trigger(TriggerSource::Database, false);
    advance(100).await;
    h.tx.trigger(TriggerSource::Api, false);
    // Pass 1 (300 ms debounce, 500 ms long) fails; its retry waits 1 s: press again.
    advance(1_200).await;
    h.tx.trigger(TriggerSource::Api, false);
    // Pass 2 runs from 1.8 s to 2.3 s; a change seen meanwhile, then a press.
    advance(800).await;
    let t1 = Instant::now();
    h.tx.trigger(TriggerSource::Database, false);
    h.tx.trigger(TriggerSource::Api, false);
    advance(5_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let has = |i: usize, s| runs[i].req.sources.contains(&s);
    assert!(has(0, TriggerSource::Api) && has(0, TriggerSource::Database));
    assert_eq!(runs[0].req.first_change, Some(t0));
    assert!(has(1, TriggerSource::Api) && has(1, TriggerSource::Retry));
    assert_eq!(runs[1].req.first_change, Some(t0), "{runs:?}");
    assert!(has(2, TriggerSource::Api) && runs[2].start > t1);
    assert_eq!(runs[2].req.first_change, Some(t1), "{runs:?}");
    // A press with no change detected has no time to measure from.
    h.tx.trigger(TriggerSource::Api, false);
    advance(1_000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert_eq!(runs[3].req.first_change, None);
}

#[tokio::test(start_paused = true)]
async fn sync_now_does_not_wait_out_the_backoff() {
    let mut t = timing();
    t.backoff_min = Duration::from_secs(30);
    t.backoff_max = Duration::from_secs(30);
    let h = harness(t, Duration::from_millis(10), vec![Next::Retry, Next::Retry]);
    h.tx.trigger(TriggerSource::Database, false);
    advance(1000).await;
    assert_eq!(h.runs.lock().unwrap().len(), 1, "the first pass failed");
    // The operator fixed the cause and presses Sync now: it runs after the debounce, not in 30 s.
    h.tx.trigger(TriggerSource::Api, false);
    advance(1000).await;
    let runs = h.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[1].req.sources.contains(&TriggerSource::Api));
    // It failed again: the backoff still holds for what is not asked for.
    h.tx.trigger(TriggerSource::Database, false);
    advance(10_000).await;
    assert_eq!(
        h.runs.lock().unwrap().len(),
        2,
        "a database change waits for the retry"
    );
    advance(25_000).await;
    assert_eq!(h.runs.lock().unwrap().len(), 3);
}
