//! Fuzz the AMI reader (`live::ami::codec::Decoder`): any bytes, fed in any split, must give
//! messages or a clear error, never a panic, and never hold more than its limits. The first
//! input byte chooses where the stream is cut in two, so split lines are covered too. Each
//! decoded message is also fed to the backend's event handler, which must not panic either.
#![no_main]

use isymphony_sync::live::ami::codec::{Decoder, MAX_HEADERS, MAX_MESSAGE};
use isymphony_sync::live::asterisk::events;
use isymphony_sync::live::facts::Facts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut stream = b"Asterisk Call Manager/11.0.0\r\n".to_vec();
    stream.extend_from_slice(rest);
    let cut = (cut as usize * stream.len() / 256).min(stream.len());
    let mut d = Decoder::new();
    let mut facts = Facts::down("fuzz");
    let mut check = |m: isymphony_sync::live::ami::Message| {
        assert!(m.headers.len() <= MAX_HEADERS);
        let bytes: usize = m.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= MAX_MESSAGE);
        events::apply(&mut facts, &m);
    };
    if d.feed(&stream[..cut], &mut check).is_ok() {
        let _ = d.feed(&stream[cut..], &mut check);
    }
});
