//! The benchmark: what users do — pulls and pushes of generated models to
//! and from a local test registry, over HTTP and HTTPS — beside the same
//! machine's own limits, measured in the same run with the same build.
//!
//!     cargo run --release --example bench [-- --runs 5 --big-gib 2 --only pull --proto http]
//!
//! Every figure is a median of `--runs` runs (5 by default). Each transfer
//! runs in a child process of its own, so its CPU time and peak memory are
//! the client's alone; the registry runs in another child, whose CPU time
//! per run is shown too (it shares the machine's cores with the client).
//! Wall and CPU times are also given as multiples of the time one core
//! takes to SHA-256 the same bytes: a blob's hash is sequential, so that is
//! the floor of a big pull.
//!
//! Measure on a quiet machine: the load average is printed before and after.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use olreg::digest::Hasher;
use olreg::{Client, Progress, Watch};
use olreg_testreg::{Options, TestRegistry};

const MIB: f64 = 1024.0 * 1024.0;
/// The bandwidth cap of the rate-limit figures, and the bytes moved under it
/// (about ten seconds' worth).
const CAP: u64 = 50 << 20;
const CAPPED_BYTES: u64 = 512 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => serve(&args[2..]),
        Some("--pull") => transfer_child(&args[2], false),
        Some("--push") => transfer_child(&args[2], true),
        _ => orchestrate(&args[1..]),
    }
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    text_flag(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text_flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------
// Children

/// Child: a test registry (`--tls` for HTTPS), with the benchmark models
/// unless `--empty` (a push target). Prints one JSON line, serves until
/// its stdin closes.
fn serve(args: &[String]) {
    let tls = args.iter().any(|a| a == "--tls");
    let empty = args.iter().any(|a| a == "--empty");
    let big_gib = flag(args, "--big-gib", 2);
    let reg = TestRegistry::start(Options::default().tls(tls));
    let mut out = serde_json::json!({
        "host": reg.host(),
        "ca_pem": reg.ca_pem(),
        "pid": std::process::id(),
    });
    if !empty {
        let big = reg.add_model("bench/big:latest", &[big_gib << 30], 1);
        let many = reg.add_model("bench/many:latest", &vec![8 << 20; 64], 2);
        let tail = reg.add_model("bench/tail:latest", &[512 << 20], 3);
        out["big"] = big.name.into();
        out["big_layer"] = big.layers[0].digest.clone().into();
        out["big_size"] = big.layers[0].size.into();
        out["many"] = many.name.into();
        out["tail"] = tail.name.into();
    }
    println!("{out}");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Child: one pull or push as `spec` describes (`"verbose": true` prints
/// the library's debug log on stderr), then its own wall time,
/// CPU time and peak RSS as JSON (and, with `"rate"`, the bytes done over
/// time, sampled from the progress events).
fn transfer_child(spec: &str, push: bool) {
    let v: serde_json::Value = serde_json::from_str(spec).unwrap();
    let mut builder = Client::builder()
        .models_dir(v["root"].as_str().unwrap())
        .no_key()
        .no_docker_config()
        .streams(v["streams"].as_u64().unwrap() as usize);
    if let Some(pem) = v["ca_pem"].as_str() {
        builder = builder.add_ca_pem(pem);
    }
    if let Some(rate) = v["rate"].as_u64() {
        builder = builder.rate_limit(rate);
    }
    if v["verbose"].as_bool() == Some(true) {
        builder = builder.log(
            olreg::LogLevel::Debug,
            std::sync::Arc::new(|_, line| eprintln!("{line}")),
        );
    }
    let client = builder.build().unwrap();
    // Progress is sampled for the rate-cap figures only: a 2 GiB transfer
    // reports often enough for the samples to weigh on the peak RSS.
    let sample = v["rate"].is_u64();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let started = Instant::now();
    let mut on_progress = |p: &Progress| {
        if sample {
            samples.push((started.elapsed().as_secs_f64(), p.completed));
        }
        true
    };
    let watch = Watch {
        progress: Some(&mut on_progress),
        cancel: None,
    };
    let name = v["name"].as_str().unwrap();
    if push {
        client
            .push(name, Some(v["source"].as_str().unwrap()), watch)
            .unwrap();
    } else {
        client.pull(name, watch).unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs();
    let max_rss_kib = peak_rss_kib();
    println!(
        "{}",
        serde_json::json!({"wall": wall, "cpu": cpu, "max_rss_kib": max_rss_kib, "samples": samples})
    );
}

/// User + system CPU seconds of this process.
#[cfg(unix)]
fn cpu_secs() -> f64 {
    let ru = rusage();
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

#[cfg(unix)]
fn rusage() -> libc::rusage {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru
}

/// This process's own peak RSS in KiB: `VmHWM` of /proc/self/status, the
/// high-water mark of this address space since exec. Not `getrusage`'s
/// `ru_maxrss`: Linux carries that over fork and exec, so a child reports
/// at least its parent's RSS (the bench's own, ~32 MiB) whatever it used.
#[cfg(target_os = "linux")]
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// This process's peak RSS in KiB (`ru_maxrss`, in bytes on macOS).
#[cfg(all(unix, not(target_os = "linux")))]
fn peak_rss_kib() -> u64 {
    let unit = if cfg!(target_vendor = "apple") {
        1024
    } else {
        1
    };
    rusage().ru_maxrss as u64 / unit
}

/// User + kernel CPU seconds of this process.
#[cfg(windows)]
fn cpu_secs() -> f64 {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: this process's pseudo-handle and writable structures.
    unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    // FILETIME counts 100 ns ticks.
    let secs = |t: FILETIME| {
        ((u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)) as f64 / 1e7
    };
    secs(kernel) + secs(user)
}

/// This process's peak working set in KiB.
#[cfg(windows)]
fn peak_rss_kib() -> u64 {
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;
    // SAFETY: plain data, filled in by the call below.
    let mut memory: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    // SAFETY: this process's pseudo-handle and a writable structure.
    unsafe {
        GetProcessMemoryInfo(
            GetCurrentProcess(),
            &mut memory,
            std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32,
        )
    };
    memory.PeakWorkingSetSize as u64 / 1024
}

/// Clock ticks per second, the unit of /proc's CPU times (which only Linux
/// has: elsewhere the registry's CPU reads as 0).
fn clock_ticks_per_sec() -> f64 {
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    return unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    #[cfg(not(unix))]
    return 100.0;
}

// ---------------------------------------------------------------------------
// The orchestrator

/// A registry child.
struct Server {
    child: Child,
    info: serde_json::Value,
}

impl Server {
    fn start(exe: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(exe)
            .arg("--serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Server {
            info: serde_json::from_str(&line).unwrap(),
            child,
        }
    }

    fn host(&self) -> &str {
        self.info["host"].as_str().unwrap()
    }

    fn scheme(&self) -> &str {
        if self.info["ca_pem"].is_string() {
            "https"
        } else {
            "http"
        }
    }

    /// `scheme://host/<model>` for a model this server made.
    fn name(&self, model: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme(),
            self.host(),
            self.info[model].as_str().unwrap()
        )
    }

    /// CPU seconds the server has used so far.
    fn cpu(&self) -> f64 {
        let pid = self.info["pid"].as_u64().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
            .unwrap_or(0.0);
        ticks / clock_ticks_per_sec()
    }

    /// Sends a fault to the control API.
    fn inject(&self, fault: &serde_json::Value) {
        let url = format!("{}://{}/_testreg/faults", self.scheme(), self.host());
        let status = curl(
            &["-X", "POST", "--data-binary", &fault.to_string(), &url],
            self,
        );
        assert!(status.starts_with('2'), "fault refused: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs curl against `server` (trusting its CA), returning the HTTP status.
fn curl(args: &[&str], server: &Server) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"]);
    let ca_file;
    if let Some(pem) = server.info["ca_pem"].as_str() {
        ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), pem).unwrap();
        cmd.arg("--cacert").arg(ca_file.path());
    }
    let out = cmd.args(args).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The figures of one run of a transfer.
#[derive(Clone, Default)]
struct Run {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
    server_cpu: f64,
    samples: Vec<(f64, u64)>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row of the table: medians of `runs`, the peak RSS their maximum.
struct Row {
    label: String,
    proto: String,
    streams: u64,
    bytes: f64,
    wall: f64,
    cpu: f64,
    rss_mib: f64,
    server_cpu: f64,
}

impl Row {
    fn of(label: &str, proto: &str, streams: u64, bytes: f64, runs: &[Run]) -> Row {
        Row {
            label: label.into(),
            proto: proto.into(),
            streams,
            bytes,
            wall: median(runs.iter().map(|r| r.wall).collect()),
            cpu: median(runs.iter().map(|r| r.cpu).collect()),
            // NaN (a row without the figure, such as curl's) stays NaN.
            rss_mib: runs.iter().map(|r| r.rss_mib).fold(f64::NAN, f64::max),
            server_cpu: median(runs.iter().map(|r| r.server_cpu).collect()),
        }
    }
}

struct Bench {
    exe: PathBuf,
    work: tempfile::TempDir,
    runs: usize,
    /// One core's SHA-256 throughput, bytes per second.
    sha: f64,
}

impl Bench {
    /// Runs a pull (or push) child `runs` times against `server`, each into
    /// a fresh store (pull) or a fresh server made by `fresh` (push).
    fn transfer(&self, push: bool, spec: serde_json::Value, server: &Server) -> Run {
        let before = server.cpu();
        let out = Command::new(&self.exe)
            .arg(if push { "--push" } else { "--pull" })
            .arg(spec.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "transfer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Run {
            wall: v["wall"].as_f64().unwrap(),
            cpu: v["cpu"].as_f64().unwrap(),
            rss_mib: v["max_rss_kib"].as_f64().unwrap() / 1024.0,
            server_cpu: server.cpu() - before,
            samples: serde_json::from_value(v["samples"].clone()).unwrap_or_default(),
        }
    }

    fn pull(&self, server: &Server, model: &str, streams: u64, extra: serde_json::Value) -> Run {
        let root = self.work.path().join("store");
        let _ = std::fs::remove_dir_all(&root);
        let mut spec = serde_json::json!({
            "root": root, "name": server.name(model), "streams": streams,
            "ca_pem": server.info["ca_pem"],
        });
        merge(&mut spec, extra);
        self.transfer(false, spec, server)
    }

    /// Pushes `source` (a model in the source store) to a fresh, empty
    /// registry.
    fn push(&self, tls: bool, source: &str, streams: u64, extra: serde_json::Value) -> Run {
        let target = Server::start(&self.exe, &empty_args(tls));
        let name = format!(
            "{}://{}/bench/pushed:latest",
            target.scheme(),
            target.host()
        );
        let mut spec = serde_json::json!({
            "root": self.work.path().join("source"), "name": name, "source": source,
            "streams": streams, "ca_pem": target.info["ca_pem"],
        });
        merge(&mut spec, extra);
        self.transfer(true, spec, &target)
    }

    /// Seconds one core takes to SHA-256 `bytes`.
    fn sha_secs(&self, bytes: f64) -> f64 {
        bytes / self.sha
    }

    fn print(&self, row: &Row) {
        let sha = self.sha_secs(row.bytes);
        // Figures a row does not have (curl's CPU and memory) print as "-".
        let fig = |v: f64, width: usize, suffix: &str| {
            if v.is_nan() {
                format!("{:>width$}", "-")
            } else {
                format!("{:>w$.2}{suffix}", v, w = width - suffix.len())
            }
        };
        println!(
            "{:<26} {:<5} {:>7} {} {} {} {} {} {}",
            row.label,
            row.proto,
            row.streams,
            fig(row.wall, 7, ""),
            fig(row.cpu, 7, ""),
            fig(row.wall / sha, 9, "x"),
            fig(row.cpu / sha, 8, "x"),
            fig(row.rss_mib, 8, ""),
            fig(row.server_cpu, 9, "")
        );
    }
}

fn empty_args(tls: bool) -> Vec<&'static str> {
    if tls {
        vec!["--empty", "--tls"]
    } else {
        vec!["--empty"]
    }
}

fn merge(spec: &mut serde_json::Value, extra: serde_json::Value) {
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            spec[k] = v;
        }
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn orchestrate(args: &[String]) {
    let runs = flag(args, "--runs", 5) as usize;
    let big_gib = flag(args, "--big-gib", 2);
    let only = text_flag(args, "--only").unwrap_or("all");
    // `--proto http` or `https`: only that protocol's pull and push rows.
    let proto = text_flag(args, "--proto").unwrap_or("all");
    let wanted = |p: &str| proto == "all" || proto == p;
    let exe = std::env::current_exe().unwrap();
    let work = tempfile::Builder::new()
        .prefix("olreg-bench")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = load_average();
    println!(
        "olreg benchmark: {cpus} CPUs, load average {load:.2} at the start, {runs} runs each, \
         medians; store on {}",
        work.path().display()
    );
    if load > 1.5 {
        println!("WARNING: the machine is busy (load {load:.2}); these figures are not worth much");
    }

    let sha = median((0..runs).map(|_| sha256_bytes_per_sec()).collect());
    let plain = Server::start(&exe, &["--big-gib", &big_gib.to_string()]);
    let tls =
        wanted("https").then(|| Server::start(&exe, &["--big-gib", &big_gib.to_string(), "--tls"]));
    let bench = Bench {
        exe: exe.clone(),
        work,
        runs,
        sha,
    };
    let big_bytes = (big_gib << 30) as f64;
    let many_bytes = (64u64 << 23) as f64;

    let loopback = median(
        (0..runs)
            .map(|_| receive_bytes_per_sec(&plain, 8))
            .collect(),
    );
    let tls_receive = tls
        .as_ref()
        .map(|tls| median((0..runs).map(|_| receive_bytes_per_sec(tls, 8)).collect()));
    let disk = median(
        (0..runs)
            .map(|_| disk_bytes_per_sec(bench.work.path(), 1 << 30))
            .collect(),
    );
    println!();
    println!("machine limits (this build, this run)");
    println!(
        "  sha256, one core          {:>7.0} MiB/s   ({big_gib} GiB in {:.2} s)",
        sha / MIB,
        bench.sha_secs(big_bytes)
    );
    println!(
        "  loopback receive, HTTP    {:>7.0} MiB/s   (8 connections, bytes discarded)",
        loopback / MIB
    );
    if let Some(tls_receive) = tls_receive {
        println!(
            "  TLS receive, HTTPS        {:>7.0} MiB/s   (8 connections, decrypted, discarded)",
            tls_receive / MIB
        );
    }
    println!("  disk write + fsync        {:>7.0} MiB/s", disk / MIB);

    println!();
    println!(
        "{:<26} {:<5} {:>7} {:>7} {:>7} {:>9} {:>8} {:>8} {:>9}",
        "operation",
        "proto",
        "streams",
        "wall s",
        "cpu s",
        "wall/sha",
        "cpu/sha",
        "peak MiB",
        "server s"
    );
    let default_streams = cpus.max(2) as u64;
    if only == "all" || only == "pull" {
        for server in [Some(&plain), tls.as_ref()].into_iter().flatten() {
            let proto = server.scheme();
            if !wanted(proto) {
                continue;
            }
            for (label, model, bytes, streams) in [
                (
                    format!("pull {big_gib} GiB, 1 layer"),
                    "big",
                    big_bytes,
                    default_streams.max(4),
                ),
                (
                    format!("pull {big_gib} GiB, 1 layer"),
                    "big",
                    big_bytes,
                    olreg::MAX_STREAMS as u64,
                ),
                (
                    "pull 64 x 8 MiB".into(),
                    "many",
                    many_bytes,
                    default_streams,
                ),
                (
                    "pull 64 x 8 MiB".into(),
                    "many",
                    many_bytes,
                    olreg::MAX_STREAMS as u64,
                ),
            ] {
                let all: Vec<Run> = (0..runs)
                    .map(|_| bench.pull(server, model, streams, serde_json::json!({})))
                    .collect();
                bench.print(&Row::of(&label, proto, streams, bytes, &all));
            }
        }
    }

    if only == "all" || only == "push" {
        // The models to push, pulled once into a source store.
        let source_root = bench.work.path().join("source");
        for model in ["big", "many"] {
            let spec = serde_json::json!({
                "root": source_root, "name": plain.name(model), "streams": 4,
            });
            bench.transfer(false, spec, &plain);
        }
        for tls in [false, true] {
            let proto = if tls { "https" } else { "http" };
            if !wanted(proto) {
                continue;
            }
            for (label, model, bytes) in [
                (format!("push {big_gib} GiB, 1 layer"), "big", big_bytes),
                ("push 64 x 8 MiB".to_string(), "many", many_bytes),
            ] {
                let all: Vec<Run> = (0..runs)
                    .map(|_| bench.push(tls, &plain.name(model), 4, serde_json::json!({})))
                    .collect();
                bench.print(&Row::of(&label, proto, 4, bytes, &all));
            }
            // The machine's own upload floor: curl -T of the same file to
            // the same kind of endpoint (a presigned PUT URL).
            let blob = source_root
                .join("blobs")
                .join(plain.info["big_layer"].as_str().unwrap().replace(':', "-"));
            let walls: Vec<Run> = (0..runs).map(|_| curl_upload(&exe, tls, &blob)).collect();
            bench.print(&Row::of(
                &format!("  floor: curl -T {big_gib} GiB"),
                proto,
                1,
                big_bytes,
                &walls,
            ));
        }
    }

    if only == "all" || only == "tail" {
        println!();
        slow_tail(&bench, &plain);
    }
    if only == "all" || only == "rate" {
        println!();
        rate_limit(&bench, &plain);
    }

    let load = load_average();
    println!();
    println!("load average at the end: {load:.2}");
    drop(plain);
    drop(tls);
}

/// One `curl -T` of `file` to a fresh registry's presigned upload URL.
fn curl_upload(exe: &Path, tls: bool, file: &Path) -> Run {
    let target = Server::start(exe, &empty_args(tls));
    let digest = format!(
        "sha256:{}",
        file.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("sha256-")
    );
    // POST for the upload URL (a 202 with Location), then the PUT.
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-D", "-", "-X", "POST"]);
    let ca = tempfile::NamedTempFile::new().unwrap();
    if let Some(pem) = target.info["ca_pem"].as_str() {
        std::fs::write(ca.path(), pem).unwrap();
        cmd.arg("--cacert").arg(ca.path());
    }
    let post = cmd
        .arg(format!(
            "{}://{}/v2/bench/pushed/blobs/uploads/?digest={digest}",
            target.scheme(),
            target.host()
        ))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&post.stdout);
    let location = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_owned())
        })
        .expect("the registry gives an upload URL");
    let before = target.cpu();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect:",
        "-T",
    ])
    .arg(file);
    if target.info["ca_pem"].is_string() {
        cmd.arg("--cacert").arg(ca.path());
    }
    let started = Instant::now();
    let out = cmd.arg(&location).output().unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "curl -T failed"
    );
    Run {
        wall,
        cpu: f64::NAN,
        rss_mib: f64::NAN,
        server_cpu: target.cpu() - before,
        samples: Vec::new(),
    }
}

/// The slow-tail figure: a 512 MiB pull with one connection throttled to
/// 1/20 of the rate of the others, against the same pull unthrottled.
fn slow_tail(bench: &Bench, server: &Server) {
    let streams = 4;
    let bytes = 512.0 * MIB;
    let free: Vec<Run> = (0..bench.runs)
        .map(|_| bench.pull(server, "tail", streams, serde_json::json!({})))
        .collect();
    let free_wall = median(free.iter().map(|r| r.wall).collect());
    let per_connection = bytes / free_wall / streams as f64;
    let throttle = (per_connection / 20.0) as u64;
    let slow: Vec<Run> = (0..bench.runs)
        .map(|_| {
            // The first chunk's connection (after the redirect's probe).
            server.inject(&serde_json::json!({
                "target": {"blob_store": {}},
                "kind": {"throttle": {"bytes_per_sec": throttle}},
                "after": 1,
            }));
            bench.pull(server, "tail", streams, serde_json::json!({}))
        })
        .collect();
    let slow_wall = median(slow.iter().map(|r| r.wall).collect());
    println!(
        "slow tail: 512 MiB pull, {streams} streams, one connection at 1/20 ({:.1} MiB/s): \
         {slow_wall:.2} s against {free_wall:.2} s unthrottled = {:.2}x (target <= 1.3x)",
        throttle as f64 / MIB,
        slow_wall / free_wall
    );
}

/// The bandwidth-cap figures: about ten seconds of pull and of push under
/// a 50 MiB/s cap, as the client's progress saw them.
fn rate_limit(bench: &Bench, server: &Server) {
    let extra = serde_json::json!({ "rate": CAP });
    let pulled = bench.pull(server, "tail", 4, extra.clone());
    report_rate("pull", &pulled);
    let source = server.name("tail");
    // The tail model is in the last pull's store: push it from there.
    let root = bench.work.path().join("store");
    let target = Server::start(&bench.exe, &empty_args(false));
    let name = format!("http://{}/bench/pushed:latest", target.host());
    let spec = serde_json::json!({
        "root": root, "name": name, "source": source, "streams": 4, "rate": CAP,
    });
    let pushed = bench.transfer(true, spec, &target);
    report_rate("push", &pushed);
}

/// Prints the average rate of a capped run and its busiest one-second
/// window, both against the cap.
fn report_rate(what: &str, run: &Run) {
    let samples = &run.samples;
    let Some(&(end, total)) = samples.last() else {
        println!("rate limit {what}: no progress seen");
        return;
    };
    debug_assert_eq!(total, CAPPED_BYTES);
    // Bytes done at time t, from the samples (a step function).
    let done_at = |t: f64| -> f64 {
        let i = samples.partition_point(|&(s, _)| s <= t);
        if i == 0 {
            0.0
        } else {
            samples[i - 1].1 as f64
        }
    };
    let first = samples.iter().find(|s| s.1 > 0).map_or(0.0, |s| s.0);
    let average = total as f64 / (end - first).max(1e-9);
    let mut busiest: f64 = 0.0;
    let mut t = first;
    while t + 1.0 <= end {
        busiest = busiest.max(done_at(t + 1.0) - done_at(t));
        t += 0.05;
    }
    println!(
        "rate limit {what}: {} MiB at a {} MiB/s cap in {:.1} s: average {:.1} MiB/s ({:+.1}%), \
         busiest one-second window {:.2}x the cap",
        total >> 20,
        CAP >> 20,
        end - first,
        average / MIB,
        100.0 * (average / CAP as f64 - 1.0),
        busiest / CAP as f64
    );
}

/// Single-core SHA-256 throughput over 1 GiB, with olreg's own hasher.
fn sha256_bytes_per_sec() -> f64 {
    let buf = vec![0x5au8; 16 << 20];
    let started = Instant::now();
    let mut h = Hasher::new();
    for _ in 0..64 {
        h.update(&buf);
    }
    std::hint::black_box(h.finish());
    (1u64 << 30) as f64 / started.elapsed().as_secs_f64()
}

/// Reads the big blob from `server`'s blob store over `streams`
/// connections, discarding the bytes: what the server and loopback (and
/// TLS, for an HTTPS server) can deliver.
fn receive_bytes_per_sec(server: &Server, streams: u64) -> f64 {
    let info = server.info.clone();
    let size = info["big_size"].as_u64().unwrap();
    let base = format!("{}://{}", server.scheme(), server.host());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let tls = match info["ca_pem"].as_str() {
            Some(pem) => olreg::remote::tls::verifying_config(
                &olreg::remote::tls::parse_pem_certificates(pem.as_bytes()).unwrap(),
            )
            .unwrap(),
            None => olreg::remote::tls::insecure_config().unwrap(),
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        // The blob store answers the signed URLs the registry redirects to.
        let signed = client
            .get(format!(
                "{base}/v2/bench/big/blobs/{}",
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
        total as f64 / started.elapsed().as_secs_f64()
    })
}

/// Writes `bytes` to a file in `dir` and syncs it.
fn disk_bytes_per_sec(dir: &Path, bytes: usize) -> f64 {
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
    bytes as f64 / secs
}
