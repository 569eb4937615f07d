//! The benchmark: pulls generated models from a local test registry and
//! prints wall time, CPU time, peak memory and throughput beside the same
//! machine's own limits, measured in the same run with the same build:
//! single-core SHA-256 throughput, loopback throughput from the test server,
//! and disk write (with fsync) throughput.
//!
//!     cargo run --release --example bench [-- --runs 3 --big-gib 2]
//!
//! Each pull runs in a child process of its own, so its CPU time and peak
//! memory are the client's alone (the registry runs in another child).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use olreg::digest::Hasher;
use olreg::{Client, Watch};
use olreg_testreg::{Options, TestRegistry};

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => serve(&args[2..]),
        Some("--pull") => pull_child(&args[2]),
        _ => orchestrate(&args[1..]),
    }
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Child: the test registry with the two benchmark models.
fn serve(args: &[String]) {
    let big_gib = flag(args, "--big-gib", 2);
    let reg = TestRegistry::start(Options::default());
    let big = reg.add_model("bench/big:latest", &[big_gib << 30], 1);
    let many = reg.add_model("bench/many:latest", &vec![8 << 20; 64], 2);
    let out = serde_json::json!({
        "host": reg.host(),
        "blob_store": reg.blob_store_url(),
        "big": big.name, "big_layer": big.layers[0].digest, "big_size": big.layers[0].size,
        "many": many.name,
    });
    println!("{out}");
    std::io::stdout().flush().unwrap();
    // Serve until the parent closes our stdin.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Child: one pull, then its own wall time, CPU time and peak RSS as JSON.
fn pull_child(spec: &str) {
    let v: serde_json::Value = serde_json::from_str(spec).unwrap();
    let client = Client::builder()
        .models_dir(v["root"].as_str().unwrap())
        .no_key()
        .no_docker_config()
        .streams(v["streams"].as_u64().unwrap() as usize)
        .build()
        .unwrap();
    let started = Instant::now();
    client
        .pull(v["name"].as_str().unwrap(), Watch::default())
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let usage = rusage();
    println!(
        "{}",
        serde_json::json!({"wall": wall, "cpu": usage.0, "max_rss_kib": usage.1})
    );
}

/// (user + system CPU seconds, peak RSS in KiB) of this process.
fn rusage() -> (f64, u64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss as u64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Server {
    child: Child,
    info: serde_json::Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn orchestrate(args: &[String]) {
    let runs = flag(args, "--runs", 3) as usize;
    let big_gib = flag(args, "--big-gib", 2);
    let exe = std::env::current_exe().unwrap();
    let work = tempfile::Builder::new()
        .prefix("olreg-bench")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "olreg benchmark: {cpus} CPUs, {runs} runs each, medians; store on {}",
        work.path().display()
    );

    // The machine's limits, with this build.
    let sha = median((0..runs).map(|_| sha256_mib_s()).collect());
    let mut child = Command::new(&exe)
        .args(["--serve", "--big-gib", &big_gib.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        info: serde_json::from_str(&line).unwrap(),
        child,
    };
    let host = server.info["host"].as_str().unwrap().to_owned();
    let loopback = median((0..runs).map(|_| loopback_mib_s(&server.info, 8)).collect());
    let disk = median(
        (0..runs)
            .map(|_| disk_mib_s(work.path(), 1 << 30))
            .collect(),
    );
    println!();
    println!("machine limits (this build, this run)");
    println!("  sha256, one core        {sha:>8.0} MiB/s");
    println!("  loopback from server    {loopback:>8.0} MiB/s  (8 connections, bytes discarded)");
    println!("  disk write + fsync      {disk:>8.0} MiB/s");

    println!();
    println!(
        "{:<28} {:>7} {:>8} {:>8} {:>9} {:>10} {:>9}",
        "pull", "streams", "wall s", "cpu s", "MiB/s", "of sha256", "peak MiB"
    );
    let big_name = format!("http://{host}/{}", server.info["big"].as_str().unwrap());
    let many_name = format!("http://{host}/{}", server.info["many"].as_str().unwrap());
    let total_big = (big_gib << 30) as f64 / MIB;
    let total_many = 64.0 * 8.0;
    let default_streams = cpus.max(2) as u64;
    for (label, name, mib, streams) in [
        (format!("{big_gib} GiB, 1 layer"), &big_name, total_big, 2),
        (
            format!("{big_gib} GiB, 1 layer"),
            &big_name,
            total_big,
            default_streams.max(4),
        ),
        (
            format!("{big_gib} GiB, 1 layer"),
            &big_name,
            total_big,
            olreg::MAX_STREAMS as u64,
        ),
        (
            "64 layers of 8 MiB".to_string(),
            &many_name,
            total_many,
            default_streams,
        ),
        (
            "64 layers of 8 MiB".to_string(),
            &many_name,
            total_many,
            olreg::MAX_STREAMS as u64,
        ),
    ] {
        let mut walls = Vec::new();
        let mut cpus_used = Vec::new();
        let mut peak = 0u64;
        for _ in 0..runs {
            let root = work.path().join("store");
            let _ = std::fs::remove_dir_all(&root);
            let spec =
                serde_json::json!({"root": root, "name": name, "streams": streams}).to_string();
            let out = Command::new(&exe).args(["--pull", &spec]).output().unwrap();
            assert!(
                out.status.success(),
                "pull failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            walls.push(v["wall"].as_f64().unwrap());
            cpus_used.push(v["cpu"].as_f64().unwrap());
            peak = peak.max(v["max_rss_kib"].as_u64().unwrap());
        }
        let wall = median(walls);
        let rate = mib / wall;
        println!(
            "{label:<28} {streams:>7} {wall:>8.2} {:>8.2} {rate:>9.0} {:>9.0}% {:>9.1}",
            median(cpus_used),
            100.0 * rate / sha,
            peak as f64 / 1024.0
        );
    }
    drop(server);
}

/// Single-core SHA-256 throughput over 1 GiB, with olreg's own hasher.
fn sha256_mib_s() -> f64 {
    let buf = vec![0x5au8; 16 << 20];
    let started = Instant::now();
    let mut h = Hasher::new();
    for _ in 0..64 {
        h.update(&buf);
    }
    std::hint::black_box(h.finish());
    1024.0 / started.elapsed().as_secs_f64()
}

/// Reads the big blob from the blob store over `streams` connections,
/// discarding the bytes: what the server and loopback can deliver.
fn loopback_mib_s(info: &serde_json::Value, streams: u64) -> f64 {
    let size = info["big_size"].as_u64().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(olreg::remote::tls::insecure_config().unwrap())
            .build()
            .unwrap();
        // The blob store answers the signed URLs the registry redirects to.
        let signed = client
            .get(format!(
                "http://{}/v2/bench/big/blobs/{}",
                info["host"].as_str().unwrap(),
                info["big_layer"].as_str().unwrap()
            ))
            .header("range", "bytes=0-0")
            .send()
            .await
            .unwrap();
        let url = signed.url().to_string();
        let chunk = size / streams;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..streams {
            let client = client.clone();
            let url = url.clone();
            let (a, b) = (
                i * chunk,
                if i + 1 == streams {
                    size - 1
                } else {
                    (i + 1) * chunk - 1
                },
            );
            tasks.push(tokio::spawn(async move {
                let mut resp = client
                    .get(&url)
                    .header("range", format!("bytes={a}-{b}"))
                    .send()
                    .await
                    .unwrap();
                let mut n = 0u64;
                while let Some(c) = resp.chunk().await.unwrap() {
                    n += c.len() as u64;
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / MIB / started.elapsed().as_secs_f64()
    })
}

/// Writes `bytes` to a file in `dir` and syncs it.
fn disk_mib_s(dir: &Path, bytes: usize) -> f64 {
    let path = dir.join("disk-probe");
    let buf = vec![0xa5u8; 8 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    for _ in 0..bytes / buf.len() {
        f.write_all(&buf).unwrap();
    }
    f.sync_all().unwrap();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    drop(f);
    let _ = std::fs::remove_file(&path);
    bytes as f64 / MIB / secs
}
