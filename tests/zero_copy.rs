//! Pushes over plain HTTP send blob bytes with sendfile(2): the bytes
//! arrive intact, in one PUT or in PATCH pieces, and a server that hangs up
//! in the middle of a body neither kills the process (SIGPIPE) nor loses
//! the push (it is retried).
//!
//! Linux only: zero-copy uploads are (src/remote/zero_copy.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use olreg::{LogLevel, Watch};

const MIB: u64 = 1 << 20;

/// A client for `store` that keeps its Debug log lines.
fn logging_client(store: &TempStore) -> (olreg::Client, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let client = builder(store)
        .chunk_threshold(4 * MIB)
        .chunk_size(MIB)
        .upload_chunk_size(3 * MIB)
        .log(
            LogLevel::Debug,
            Arc::new(move |_, m| sink.lock().unwrap().push(m.to_owned())),
        )
        .build()
        .unwrap();
    (client, lines)
}

/// Pulls `model` from `src` into the client's store, then pushes it from
/// there to `target`.
fn pull_then_push(
    client: &olreg::Client,
    src: &TestRegistry,
    model: &Model,
    target: &str,
) -> olreg::Result<olreg::Manifest> {
    let source = name_of(src, model);
    client.pull(&source, Watch::default()).expect("pull");
    client.push(target, Some(&source), Watch::default())
}

fn sendfile_lines(lines: &Mutex<Vec<String>>) -> usize {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("(sendfile)"))
        .count()
}

#[test]
fn blobs_go_with_sendfile_whole_and_in_pieces() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/zc:v1", &[10 * MIB, 3000], 5);
    for opts in [Options::default(), Options::default().distribution_like()] {
        let dst = TestRegistry::start(opts);
        let store = TempStore::new();
        let (client, lines) = logging_client(&store);
        pull_then_push(
            &client,
            &src,
            &model,
            &format!("http://{}/other/zc:v1", dst.host()),
        )
        .expect("push");
        for blob in model.layers.iter().chain([&model.config]) {
            assert!(
                dst.blob(&blob.digest) == src.blob(&blob.digest),
                "{}",
                blob.digest
            );
        }
        // Presigned: one PUT per blob; sessions: four PATCH pieces of the
        // 10 MiB blob and one PUT of the small ones.
        assert!(sendfile_lines(&lines) >= 3, "{:?}", lines.lock().unwrap());
    }
}

#[test]
fn a_server_hanging_up_mid_body_costs_a_retry_not_the_process() {
    // Rust test programs ignore SIGPIPE; a C program does not. Behave like
    // one, so that a SIGPIPE raised by sendfile into the dead connection
    // would end this process. (Linux answers the first write after a reset
    // with ECONNRESET and raises SIGPIPE only on the next one, which olreg
    // does not make; its runtime threads block SIGPIPE besides.)
    // SAFETY: resetting a signal disposition before any upload starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };

    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/hangup:v1", &[16 * MIB], 6);
    let dst = TestRegistry::start(Options::default());
    // The first upload goes to a server that reads a little and hangs up.
    let rude = TcpListener::bind("127.0.0.1:0").unwrap();
    let rude_url = format!("http://{}/upload/x?sig=1", rude.local_addr().unwrap());
    let served = std::thread::spawn(move || {
        let (mut conn, _) = rude.accept().unwrap();
        let mut buf = vec![0u8; 256 << 10];
        let _ = conn.read(&mut buf);
        // Close with unread data: the kernel answers with a reset.
    });
    dst.inject(Fault::new(
        Target::Upload,
        FaultKind::UploadLocation { location: rude_url },
    ));
    let store = TempStore::new();
    let (client, lines) = logging_client(&store);
    let target = format!("http://{}/other/hangup:v1", dst.host());
    pull_then_push(&client, &src, &model, &target).expect("the push survives the hang-up");
    served.join().unwrap();
    let layer = &model.layers[0];
    assert!(dst.blob(&layer.digest) == src.blob(&layer.digest));
    assert!(sendfile_lines(&lines) >= 2, "{:?}", lines.lock().unwrap());
}
