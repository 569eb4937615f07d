//! Shared helpers for the integration tests: a fresh store, a client aimed
//! at a test registry, and checks of the store's invariants.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use olreg::{Client, ClientBuilder, Digest, Progress, Watch};
pub use olreg_testreg::{
    Auth, BlobMode, ErrorBody, Fault, FaultKind, Model, Options, RequestRecord, Server, Target,
    TestRegistry, UploadMode,
};

/// A temporary store directory that is removed at the end of the test.
pub struct TempStore {
    pub dir: tempfile::TempDir,
}

impl TempStore {
    pub fn new() -> TempStore {
        TempStore {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root().join("blobs").join(digest.replace(':', "-"))
    }
    pub fn manifest_path(&self, host: &str, repo: &str, tag: &str) -> PathBuf {
        // On Windows a host's port separator is written '+' (':' separates
        // streams there).
        let host = if cfg!(windows) {
            host.replace(':', "+")
        } else {
            host.to_owned()
        };
        self.root()
            .join("manifests")
            .join(host)
            .join(repo)
            .join(tag)
    }
}

/// Pulls `name` with `client` on another thread; the receiver hears once,
/// when the first `event` arrives.
pub fn pull_in_background(
    client: &std::sync::Arc<Client>,
    name: String,
    event: olreg::ProgressEvent,
) -> (
    std::thread::JoinHandle<olreg::Result<olreg::Manifest>>,
    std::sync::mpsc::Receiver<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let client = client.clone();
    let pull = std::thread::spawn(move || {
        let mut told = false;
        let mut progress = |p: &Progress| {
            if p.event == event && !told {
                told = true;
                let _ = tx.send(());
            }
            true
        };
        client.pull(
            &name,
            Watch {
                progress: Some(&mut progress),
                cancel: None,
            },
        )
    });
    (pull, rx)
}

/// Makes every blob-store response send `after_bytes`, then pause `millis`.
pub fn stall_every_blob(reg: &TestRegistry, after_bytes: u64, millis: u64) {
    reg.inject(
        Fault::new(
            Target::BlobStore { digest: None },
            FaultKind::Stall {
                after_bytes,
                millis,
            },
        )
        .forever(),
    );
}

/// A client for tests: this store, no key, no Docker config, fast retries.
pub fn builder(store: &TempStore) -> ClientBuilder {
    Client::builder()
        .models_dir(store.root())
        .no_key()
        .no_docker_config()
        .retry_attempts(4)
        .retry_base_delay(Duration::from_millis(20))
        .retry_max_delay(Duration::from_millis(200))
        .stall_timeout(Duration::from_secs(5))
}

pub fn client(store: &TempStore) -> Client {
    builder(store).build().expect("client")
}

/// `http://host/ns/model:tag` for a model of `reg`.
pub fn name_of(reg: &TestRegistry, model: &Model) -> String {
    let scheme = if reg.ca_pem().is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}/{}:{}", reg.host(), model.repo, model.tag)
}

/// Pulls, collecting every progress event.
pub fn pull_collect(
    client: &Client,
    name: &str,
) -> (olreg::Result<olreg::Manifest>, Vec<Progress>) {
    let mut events = Vec::new();
    let mut cb = |p: &Progress| {
        events.push(p.clone());
        true
    };
    let r = client.pull(
        name,
        Watch {
            progress: Some(&mut cb),
            cancel: None,
        },
    );
    (r, events)
}

/// Invariant 1 and 2: every blob (in `blobs/`, or staged by a pull whose
/// model is not linked yet) hashes to its name; every linked manifest's
/// blobs are present. Returns the number of blobs in `blobs/`.
pub fn assert_store_consistent(root: &Path) -> usize {
    assert_blobs_hash_to_their_names(&root.join(".olreg/staged"));
    let count = assert_blobs_hash_to_their_names(&root.join("blobs"));
    let store = olreg::Store::new(root);
    for name in store.list().unwrap() {
        let m = store
            .load_manifest(&name, &olreg::Limits::default())
            .unwrap();
        for l in m.blobs() {
            assert!(
                store.has_blob(&l.digest, l.size),
                "{name} is linked but {} is missing",
                l.digest
            );
        }
    }
    count
}

/// Every file in `dir` is named `sha256-<hex>` and hashes to `<hex>`;
/// returns how many there are.
fn assert_blobs_hash_to_their_names(dir: &Path) -> usize {
    let mut count = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().into_string().unwrap();
            let digest = Digest::from_file_name(&name).unwrap_or_else(|| {
                panic!(
                    "a file that is not a blob sits in {}: {name}",
                    dir.display()
                )
            });
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(
                Digest::of(&bytes),
                digest,
                "blob {name} in {} does not hash to its name",
                dir.display()
            );
            count += 1;
        }
    }
    count
}

/// Whether a verified copy of `digest` is kept in the store at `root`: in
/// `blobs/`, or staged by a pull that stopped before linking its model.
pub fn has_verified_blob(root: &Path, digest: &str) -> bool {
    let file = digest.replace(':', "-");
    root.join("blobs").join(&file).is_file() || root.join(".olreg/staged").join(&file).is_file()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Blob-store GETs per blob of `model`: its layers, then its config.
pub fn fetches_per_blob(reg: &TestRegistry, model: &Model) -> Vec<usize> {
    let reqs = requests_on(reg, Server::BlobStore);
    model
        .layers
        .iter()
        .chain([&model.config])
        .map(|b| {
            reqs.iter()
                .filter(|r| r.path_and_query.contains(b.digest.as_str()))
                .count()
        })
        .collect()
}

/// Makes every download of `digest` from the blob store answer `code`.
pub fn fail_blob(reg: &TestRegistry, digest: &str, code: u16) {
    reg.inject(
        Fault::status(
            Target::BlobStore {
                digest: Some(digest.to_owned()),
            },
            code,
            ErrorBody::Empty,
        )
        .forever(),
    );
}

/// The requests `reg` saw on a server.
pub fn requests_on(reg: &TestRegistry, server: Server) -> Vec<RequestRecord> {
    reg.requests()
        .into_iter()
        .filter(|r| r.server == server)
        .collect()
}

/// In a child process started by [`spawn_pull_child`]: pulls the model it
/// was given into the store it was given. Elsewhere: does nothing.
pub fn run_pull_child() {
    let (Ok(name), Ok(root)) = (
        std::env::var("OLREG_CHILD_NAME"),
        std::env::var("OLREG_CHILD_ROOT"),
    ) else {
        return;
    };
    let mut builder = olreg::Client::builder()
        .models_dir(root)
        .no_key()
        .no_docker_config()
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20);
    if let Ok(mirror) = std::env::var("OLREG_CHILD_MIRROR") {
        builder = builder.mirror(mirror);
    }
    builder
        .build()
        .unwrap()
        .pull(&name, Watch::default())
        .unwrap();
}

/// Starts this test binary again, running only `child_test` (which calls
/// [`run_pull_child`]) to pull `name` into `root`.
pub fn spawn_pull_child(child_test: &str, name: &str, root: &Path) -> std::process::Child {
    pull_child_command(child_test, name, root).spawn().unwrap()
}

/// [`spawn_pull_child`] through a mirror (`URL` or `HOST=URL`), with the
/// child's stderr piped so a failure can be shown.
pub fn spawn_pull_child_via(
    child_test: &str,
    name: &str,
    root: &Path,
    mirror: &str,
) -> std::process::Child {
    pull_child_command(child_test, name, root)
        .env("OLREG_CHILD_MIRROR", mirror)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn pull_child_command(child_test: &str, name: &str, root: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env("OLREG_CHILD_NAME", name)
        .env("OLREG_CHILD_ROOT", root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// An image index (OCI, or a Docker manifest list with that `media_type`)
/// whose entries are `(manifest bytes, platform "os/arch[/variant]")`.
pub fn image_index(media_type: &str, entries: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(bytes, platform)| {
            let parts: Vec<&str> = platform.split('/').collect();
            let mut platform = serde_json::json!({"os": parts[0], "architecture": parts[1]});
            if let Some(variant) = parts.get(2) {
                platform["variant"] = (*variant).into();
            }
            let inner: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            serde_json::json!({
                "mediaType": inner["mediaType"],
                "digest": Digest::of(bytes).to_string(),
                "size": bytes.len(),
                "platform": platform,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    }))
    .unwrap()
}

/// The media type of OCI image indexes.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of Docker manifest lists.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// In a child process whose peak memory a test measures: prints the
/// process's own peak resident memory (`VmHWM`; a child's rusage would
/// include its parent's pages, which a spawned child shares until it execs).
pub fn print_peak_rss() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    println!("{line}");
}

/// Runs this test binary again, only `child_test` (which ends with
/// [`print_peak_rss`]) with `envs` set; fails unless it succeeds, and
/// returns its peak resident memory in MiB.
pub fn child_peak_rss_mib<K, V>(child_test: &str, envs: impl IntoIterator<Item = (K, V)>) -> u64
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .envs(envs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    peak_rss_mib(&stdout)
}

/// The peak resident memory, in MiB, that a child printed with
/// [`print_peak_rss`].
fn peak_rss_mib(stdout: &str) -> u64 {
    let kib: u64 = stdout
        .lines()
        .find_map(|l| l.split("VmHWM:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM line in {stdout}"));
    kib / 1024
}

/// Takes the store's exclusive lock on an open lock file without waiting,
/// as another olreg process does: `flock` on Unix; on Windows `LockFileEx`
/// on the one byte at 2^62 (past any data, so lock files stay readable).
/// Whether it was free.
pub fn lock_exclusively(file: &std::fs::File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor the caller keeps open.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::Storage::FileSystem::{
            LockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
        };
        const LOCK_OFFSET: u64 = 1 << 62;
        // SAFETY: plain data, zero as its initial state.
        let mut at: windows_sys::Win32::System::IO::OVERLAPPED = unsafe { std::mem::zeroed() };
        at.Anonymous.Anonymous.Offset = LOCK_OFFSET as u32;
        at.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
        let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
        // SAFETY: a handle the caller keeps open and an OVERLAPPED on our stack.
        unsafe { LockFileEx(file.as_raw_handle() as _, flags, 0, 1, 0, &mut at) != 0 }
    }
}

/// The names of the entries of `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
