//! FAKE AMI servers, for faults a real Asterisk cannot produce: half-written lines, silence
//! mid-list, over-long lines, a flood without a line end, a server still booting.

use super::*;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// After the snapshot: an event split over two writes, then a half-written line and close.
    HalfLine,
    /// CoreShowChannels: `EventList: start`, one item, then silence.
    StopsMidList,
    /// After the snapshot: one line of 20 KB.
    LongLine,
    /// After the snapshot: 64 MB without a line end.
    Flood,
    /// No `FullyBooted` at login; it comes after the snapshot (Asterisk still booting).
    LateBoot,
}

struct Fake {
    port: u16,
    connections: Arc<AtomicUsize>,
    flooded: Arc<AtomicU64>,
}

/// FAKE: start a fake AMI that misbehaves with `fault`.
async fn fake_ami(fault: Fault) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind FAKE");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let flooded = Arc::new(AtomicU64::new(0));
    let (c, fl) = (connections.clone(), flooded.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(fake_session(s, fault, fl.clone()));
        }
    });
    Fake {
        port,
        connections,
        flooded,
    }
}

fn fake_settings(port: u16) -> AmiSettings {
    AmiSettings {
        host: "127.0.0.1".into(),
        port,
        username: "fake".into(),
        password: Secret::new("fake"),
    }
}

async fn fake_session(s: TcpStream, fault: Fault, flooded: Arc<AtomicU64>) {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    if w.write_all(b"Asterisk Call Manager/11.0.0\r\n")
        .await
        .is_err()
    {
        return;
    }
    let (mut action, mut id, mut answered) = (String::new(), String::new(), 0);
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((k, val)) = line.split_once(": ") {
            match k {
                "Action" => action = val.to_string(),
                "ActionID" => id = val.to_string(),
                _ => {}
            }
            continue;
        }
        // Blank line: the action is complete.
        if action == "CoreShowChannels" && fault == Fault::LateBoot {
            flooded.fetch_add(1, Ordering::SeqCst); // here: counts the listings
        }
        let reply = match action.as_str() {
            "Login" if fault != Fault::LateBoot => format!(
                "Response: Success\r\nActionID: {id}\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"
            ),
            "Login" | "Ping" | "Logoff" => format!("Response: Success\r\nActionID: {id}\r\n\r\n"),
            "CoreSettings" => format!("Response: Success\r\nActionID: {id}\r\nAsteriskVersion: FAKE\r\n\r\n"),
            "CoreShowChannels" if fault == Fault::StopsMidList => format!(
                "Response: Success\r\nActionID: {id}\r\nEventList: start\r\n\r\nEvent: CoreShowChannel\r\nActionID: {id}\r\nChannel: Local/1-1;1\r\nUniqueid: 1.1\r\n\r\n"
            ),
            _ => format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\n\r\nEvent: {action}Complete\r\nActionID: {id}\r\nEventList: Complete\r\n\r\n"),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if action != "Login" && action != "Ping" {
            answered += 1;
        }
        if answered == 6 {
            if fault == Fault::LateBoot {
                misbehave(&mut w, fault, &flooded).await;
                continue;
            }
            if fault == Fault::Flood && flooded.load(Ordering::SeqCst) > 0 {
                return; // only the first connection floods: its figure is the one measured
            }
            // The snapshot (six list actions) is answered: now the fault.
            misbehave(&mut w, fault, &flooded).await;
            if fault != Fault::StopsMidList {
                return;
            }
        }
    }
}

async fn misbehave(w: &mut tokio::net::tcp::OwnedWriteHalf, fault: Fault, flooded: &AtomicU64) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    match fault {
        Fault::HalfLine => {
            let _ = w
                .write_all(b"Event: Newchannel\r\nChannel: Local/7@x-1;1\r\nUnique")
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = w.write_all(b"id: 7.7\r\nLinkedid: 7.7\r\n\r\n").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = w.write_all(b"Event: Hangup\r\nUniqu").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Fault::LongLine => {
            let mut l = b"Event: Newchannel\r\nChannel: ".to_vec();
            l.extend(std::iter::repeat(b'x').take(20 * 1024));
            l.extend_from_slice(b"\r\n\r\n");
            let _ = w.write_all(&l).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Fault::Flood => {
            let chunk = vec![b'y'; 64 * 1024];
            let _ = w.write_all(b"Event: Newchannel\r\nChannel: ").await;
            for _ in 0..1024 {
                match tokio::time::timeout(Duration::from_secs(2), w.write_all(&chunk)).await {
                    Ok(Ok(())) => flooded.fetch_add(chunk.len() as u64, Ordering::SeqCst),
                    _ => break,
                };
            }
        }
        Fault::LateBoot => {
            let _ = w
                .write_all(b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
                .await;
        }
        Fault::StopsMidList => {}
    }
}

fn down_reason(h: &Handle) -> Option<String> {
    h.shared().read(|f| match &f.link {
        Link::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn fake_half_written_event_lines() {
    let fake = fake_ami(Fault::HalfLine).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(&h, "FAKE link up", Duration::from_secs(5), |f| {
        f.link.is_up()
    })
    .await;
    // An event split mid-line across two writes is read whole.
    wait_for(&h, "channel 7.7", Duration::from_secs(5), |f| {
        f.channels.contains_key("7.7")
    })
    .await;
    // A half-written line followed by a close: the link is down, nothing stale is kept, and
    // the half event was never applied (7.7 is not "hung up" by it; it is gone with the link).
    wait_for(&h, "FAKE link down", Duration::from_secs(5), |f| {
        !f.link.is_up()
    })
    .await;
    assert!(h.shared().read(|f| f.channels.is_empty()));
    let reason = down_reason(&h).unwrap_or_default();
    assert!(reason.contains("closed"), "{reason}");
    wait_for(&h, "reconnected to FAKE", Duration::from_secs(5), |_| {
        fake.connections.load(Ordering::SeqCst) >= 2
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn fake_server_that_stops_answering_mid_list() {
    let fake = fake_ami(Fault::StopsMidList).await;
    let h = asterisk::start(fake_settings(fake.port));
    let t = wait_for(&h, "a timeout reason", Duration::from_secs(15), |f| {
        matches!(&f.link, Link::Down { reason, .. } if reason.contains("did not answer CoreShowChannels"))
    })
    .await;
    eprintln!("mid-list silence detected after {t:?}");
    assert!(
        h.shared().read(|f| f.channels.is_empty()),
        "a partial list is never shown"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn fake_over_long_line_closes_with_a_clear_error() {
    let fake = fake_ami(Fault::LongLine).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(&h, "the long-line reason", Duration::from_secs(5), |f| {
        matches!(&f.link, Link::Down { reason, .. } if reason.contains("longer than 16384 bytes"))
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn fake_flood_without_line_end_is_bounded() {
    let fake = fake_ami(Fault::Flood).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(
        &h,
        "the flood refused",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("longer than")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = fake.flooded.load(Ordering::SeqCst);
    eprintln!(
        "FAKE could write {} KB before the backend closed",
        sent / 1024
    );
    assert!(
        sent < 16 * 1024 * 1024,
        "the reader stopped reading early: {sent} bytes accepted of 64 MB"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn fake_asterisk_still_booting_is_listed_again_after_fully_booted() {
    let fake = fake_ami(Fault::LateBoot).await;
    let h = asterisk::start(fake_settings(fake.port));
    let t = wait_for(&h, "up without FullyBooted", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    assert!(
        t >= Duration::from_millis(2900),
        "waited for FullyBooted first: {t:?}"
    );
    let start = Instant::now();
    while fake.flooded.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.flooded.load(Ordering::SeqCst),
        2,
        "listed again after the late FullyBooted"
    );
    assert!(h.shared().read(|f| f.link.is_up()));
    assert_eq!(
        fake.connections.load(Ordering::SeqCst),
        1,
        "without reconnecting"
    );
    h.shutdown().await;
}
