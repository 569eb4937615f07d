//! A full disk: an early, explicit refusal, and a clean stop when space runs
//! out mid-pull, after which a pull with space resumes.
//!
//! These tests mount small tmpfs file systems, which needs Linux and root
//! (as CI has). On Windows and macOS the same errors come from the kind of
//! the I/O error (`src/error.rs` tests the mapping on every platform).
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use olreg::{ErrorKind, Status, Watch};

/// A tmpfs of `size` bytes, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests need root (CI runs as root)"
        );
        SmallDisk { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn store(&self) -> PathBuf {
        self.path().join("models")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn client_at(root: &Path) -> olreg::Client {
    olreg::Client::builder()
        .models_dir(root)
        .no_key()
        .no_docker_config()
        .retry_attempts(2)
        .retry_base_delay(Duration::from_millis(10))
        .streams(1)
        .build()
        .unwrap()
}

#[test]
fn a_pull_that_cannot_fit_fails_before_downloading() {
    let disk = SmallDisk::new(4 << 20);
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20, 3 << 20], 41);
    let err = client_at(&disk.store())
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::NoSpace, "{err}");
    let ErrorKind::NoSpace {
        needed, available, ..
    } = err.kind()
    else {
        panic!("{err:?}")
    };
    assert!(*needed >= 6 << 20 && *available < *needed, "{err}");
    assert!(err.to_string().contains("more bytes needed"), "{err}");
    assert!(
        requests_on(&reg, Server::BlobStore).is_empty(),
        "nothing was downloaded"
    );
}

#[test]
fn running_out_of_space_mid_pull_stops_cleanly_and_resumes_later() {
    let disk = SmallDisk::new(8 << 20);
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20, 3 << 20], 42);
    // Hold the first answer back while something else fills the disk to the
    // last byte. The blobs' space is already reserved (pre-allocated), so
    // they complete; what no longer fits is the manifest.
    reg.inject(Fault::new(
        Target::BlobStore { digest: None },
        FaultKind::StallHeaders { millis: 800 },
    ));
    let filler = disk.path().join("filler");
    let filling = {
        let filler = filler.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            fill(&filler);
        })
    };
    // Three streams: the config and both layers start (and reserve their
    // space) at once.
    let client = olreg::Client::builder()
        .models_dir(disk.store())
        .no_key()
        .no_docker_config()
        .retry_attempts(2)
        .retry_base_delay(Duration::from_millis(10))
        .streams(3)
        .build()
        .unwrap();
    let err = client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    filling.join().unwrap();
    assert_eq!(err.status(), Status::NoSpace, "{err}");
    assert!(
        err.to_string().contains(disk.path().to_str().unwrap()),
        "the message names the path: {err}"
    );
    assert_store_consistent(&disk.store());
    assert!(
        olreg::Store::new(disk.store()).list().unwrap().is_empty(),
        "nothing incomplete is linked"
    );
    let kept = model
        .layers
        .iter()
        .filter(|l| has_verified_blob(&disk.store(), &l.digest))
        .count();
    assert_eq!(kept, 2, "the verified blobs are kept");

    std::fs::remove_file(&filler).unwrap();
    reg.clear_requests();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("with space the pull completes");
    assert_store_consistent(&disk.store());
    assert!(
        requests_on(&reg, Server::BlobStore).is_empty(),
        "nothing is fetched again"
    );
}

#[test]
fn a_completely_full_disk_is_reported_with_the_path() {
    let disk = SmallDisk::new(8 << 20);
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20, 3 << 20], 43);
    let client = client_at(&disk.store());
    // A store holding reserved partial downloads, then a disk filled to the
    // last byte: the first file olreg cannot write is named.
    reg.inject(
        Fault::new(
            Target::BlobStore { digest: None },
            FaultKind::Status {
                code: 500,
                body: ErrorBody::Empty,
                retry_after: None,
            },
        )
        .forever(),
    );
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    reg.clear_faults();
    let filler = disk.path().join("filler");
    fill(&filler);
    let err = client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::NoSpace, "{err}");
    assert!(
        err.to_string().contains(disk.path().to_str().unwrap()),
        "the message names the path: {err}"
    );
    assert_store_consistent(&disk.store());
    std::fs::remove_file(&filler).unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("with space the pull completes");
    assert_store_consistent(&disk.store());
}

/// Writes to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![1u8; 64 << 10];
    loop {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = f.flush();
}
