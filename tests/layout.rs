//! OCI image layouts: export and import round trips (directory and tar,
//! several models in one layout), the real `oras` and `crane` reading what
//! olreg writes and writing what olreg reads, and hostile layouts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use olreg::{Client, Status, Watch};
use olreg_testreg::distribution::{Distribution, DistributionAuth};

/// A store holding one model pulled from a fresh test registry.
struct Fixture {
    _reg: TestRegistry,
    store: TempStore,
    client: Client,
    name: String,
    model: Model,
}

fn fixture(repo_tag: &str, sizes: &[u64], seed: u64) -> Fixture {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model(repo_tag, sizes, seed);
    let store = TempStore::new();
    let client = client(&store);
    let name = name_of(&reg, &model);
    client.pull(&name, Watch::default()).unwrap();
    Fixture {
        _reg: reg,
        store,
        client,
        name,
        model,
    }
}

/// Every file under `blobs/` and `manifests/` with its bytes: what a store
/// shows its users.
fn visible(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&root.join("blobs"), root, &mut out);
    walk(&root.join("manifests"), root, &mut out);
    out
}

fn index_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

fn blob_files(dir: &Path) -> Vec<String> {
    names_in(&dir.join("blobs/sha256"))
}

#[test]
fn export_then_import_is_byte_identical_as_directory_and_tar() {
    let f = fixture("library/layout:v1", &[3 << 20, 5000, 17], 61);
    let out = tempfile::tempdir().unwrap();
    for dest in [out.path().join("dir"), out.path().join("model.tar")] {
        let exported = f
            .client
            .export(&f.name, &dest, Watch::default())
            .expect("export");
        assert_eq!(exported.digest().to_string(), f.model.digest);

        let back = TempStore::new();
        let importer = client(&back);
        let mut events = Vec::new();
        let mut progress = |p: &olreg::Progress| {
            events.push(p.event);
            true
        };
        let imported = importer
            .import(
                &dest,
                "imported/model:v1",
                None,
                Watch {
                    progress: Some(&mut progress),
                    cancel: None,
                },
            )
            .expect("import");
        assert_eq!(imported.digest().to_string(), f.model.digest);
        assert_eq!(
            importer.show("imported/model:v1").unwrap(),
            f.model.manifest.to_vec(),
            "the manifest comes back byte for byte"
        );
        for blob in f.model.layers.iter().chain([&f.model.config]) {
            assert_eq!(
                std::fs::read(back.blob_path(&blob.digest)).unwrap(),
                std::fs::read(f.store.blob_path(&blob.digest)).unwrap()
            );
        }
        assert_store_consistent(back.root());
        assert_eq!(events.first(), Some(&olreg::ProgressEvent::Resolved));
        assert_eq!(events.last(), Some(&olreg::ProgressEvent::Finished));

        // Importing again changes nothing and copies nothing.
        let before = visible(back.root());
        let mut done = 0;
        let mut count = |p: &olreg::Progress| {
            done += (p.event == olreg::ProgressEvent::Done) as usize;
            true
        };
        importer
            .import(
                &dest,
                "imported/model:v1",
                None,
                Watch {
                    progress: Some(&mut count),
                    cancel: None,
                },
            )
            .unwrap();
        assert_eq!(done, 0, "every blob was already there");
        assert_eq!(visible(back.root()), before);
    }
    // The directory layout: oci-layout, an index entry named by the tag
    // (and the full name), and the store's bytes under blobs/sha256.
    let dir = out.path().join("dir");
    assert_eq!(
        std::fs::read_to_string(dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = index_json(&dir);
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert_eq!(entry["digest"], f.model.digest.as_str());
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        format!("{}/library/layout:v1", f._reg.host())
    );
    let hex = f.model.digest.strip_prefix("sha256:").unwrap();
    assert_eq!(
        std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap(),
        f.model.manifest.to_vec()
    );
}

#[test]
fn several_models_share_one_layout_and_a_reference_picks_one() {
    let a = fixture("library/alpha:v1", &[4000, 100], 62);
    let b = fixture("library/beta:v2", &[6000], 63);
    let out = tempfile::tempdir().unwrap();
    for dest in [out.path().join("dir"), out.path().join("both.tar")] {
        a.client.export(&a.name, &dest, Watch::default()).unwrap();
        b.client.export(&b.name, &dest, Watch::default()).unwrap();
        // Exporting a model again replaces its entry rather than adding one.
        a.client.export(&a.name, &dest, Watch::default()).unwrap();

        let back = TempStore::new();
        let c = client(&back);
        let err = c
            .import(&dest, "x/y:z", None, Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::InvalidArgument, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("library/alpha:v1") && text.contains("library/beta:v2"),
            "the error lists the references: {text}"
        );
        let err = c
            .import(&dest, "x/y:z", Some("v9"), Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::NotFound, "{err}");
        assert!(err.to_string().contains("v1"), "{err}");

        let m = c
            .import(&dest, "mine/beta:v2", Some("v2"), Watch::default())
            .unwrap();
        assert_eq!(m.digest().to_string(), b.model.digest);
        let m = c
            .import(
                &dest,
                "mine/alpha",
                Some(&format!("{}/library/alpha:v1", a._reg.host())),
                Watch::default(),
            )
            .unwrap();
        assert_eq!(m.digest().to_string(), a.model.digest);
        assert_eq!(c.list().unwrap().len(), 2);
        assert_store_consistent(back.root());
    }
    let dir = out.path().join("dir");
    assert_eq!(index_json(&dir)["manifests"].as_array().unwrap().len(), 2);
    // 2 manifests + 2 configs + 3 layers, each once.
    assert_eq!(blob_files(&dir).len(), 7);
}

#[test]
fn a_damaged_blob_in_an_existing_layout_is_rewritten() {
    let f = fixture("library/fix:v1", &[5000], 64);
    let dir = tempfile::tempdir().unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    let layer = f.model.layers[0].digest.strip_prefix("sha256:").unwrap();
    let path = dir.path().join("blobs/sha256").join(layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(f.store.blob_path(&f.model.layers[0].digest)).unwrap()
    );
    // No temporary files are left behind.
    assert!(blob_files(dir.path()).iter().all(|n| !n.starts_with('.')));
}

#[test]
fn export_refuses_damaged_store_blobs_and_foreign_directories() {
    let f = fixture("library/bad:v1", &[5000], 65);
    let layer = &f.model.layers[0].digest;
    let path = f.store.blob_path(layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    for dest in [out.path().join("dir"), out.path().join("bad.tar")] {
        let err = f
            .client
            .export(&f.name, &dest, Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::DigestMismatch, "{err}");
        assert_eq!(err.blob().map(|d| d.to_string()), Some(layer.clone()));
    }
    assert!(
        !out.path().join("bad.tar").exists(),
        "no half-written archive"
    );
    assert!(
        !out.path().join("dir/index.json").exists(),
        "no index without its blobs"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["dir"], "no temporary files: {leftovers:?}");

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("notes.txt"), "mine").unwrap();
    let err = f
        .client
        .export(&f.name, foreign.path(), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument, "{err}");
}

// ---------------------------------------------------------------------------
// The real oras and crane.

/// A tool built by `scripts/deps.sh`: `$env`, else the cache it builds
/// into, else `PATH`.
fn tool(name: &str, env: &str, version: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("OLREG_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/olreg/tools")))
        .unwrap_or_default()
        .join(format!("{name}-{version}"))
        .join(name);
    if cache.is_file() {
        return cache;
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!("{name} {version} is needed: run scripts/deps.sh (it builds it once) or set {env}")
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

fn oras() -> Command {
    let mut c = Command::new(tool("oras", "OLREG_ORAS", "v1.3.6"));
    // No credentials or caches of the machine's user.
    let home = tempfile::tempdir().unwrap().keep();
    c.env("HOME", &home).env("DOCKER_CONFIG", &home);
    c
}

fn crane() -> Command {
    let mut c = Command::new(tool("crane", "OLREG_CRANE", "v0.22.1"));
    let home = tempfile::tempdir().unwrap().keep();
    c.env("HOME", &home).env("DOCKER_CONFIG", &home);
    c
}

fn distribution() -> Distribution {
    Distribution::start(DistributionAuth::None).unwrap_or_else(|e| {
        panic!("Docker Distribution must be installed (apt-get install docker-registry): {e}")
    })
}

#[test]
fn oras_and_crane_read_what_olreg_exports() {
    let f = fixture("library/interop:v1", &[2 << 20, 300], 66);
    let dist = distribution();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("dir");
    let tar = out.path().join("model.tar");
    f.client.export(&f.name, &dir, Watch::default()).unwrap();
    f.client.export(&f.name, &tar, Watch::default()).unwrap();

    for (src, repo) in [(&dir, "oras/dir"), (&tar, "oras/tar")] {
        run(oras()
            .args(["copy", "--from-oci-layout", "--to-plain-http"])
            .args([
                format!("{}:v1", src.display()),
                format!("{}/{repo}:v1", dist.host()),
            ]));
    }
    // crane reads the directory layout (`crane push DIR REF`).
    run(crane().args(["push", "--insecure"]).args([
        dir.display().to_string(),
        format!("{}/crane/dir:v1", dist.host()),
    ]));
    let digest = run(crane()
        .args(["digest", "--insecure"])
        .arg(format!("{}/crane/dir:v1", dist.host())));
    assert_eq!(
        digest.trim(),
        f.model.digest,
        "crane pushed the same manifest"
    );

    for repo in ["oras/dir", "oras/tar", "crane/dir"] {
        let back = TempStore::new();
        let c = client(&back);
        let name = format!("http://{}/{repo}:v1", dist.host());
        let m = c.pull(&name, Watch::default()).unwrap();
        assert_eq!(m.digest().to_string(), f.model.digest, "{repo}");
        assert_eq!(c.show(&name).unwrap(), f.model.manifest.to_vec(), "{repo}");
        assert_store_consistent(back.root());
    }
}

#[test]
fn olreg_imports_what_oras_writes() {
    let f = fixture("library/fromoras:v3", &[1 << 20, 4096], 67);
    let dist = distribution();
    let target = format!("http://{}/team/model:v3", dist.host());
    f.client
        .push(&target, Some(&f.name), Watch::default())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("oras-layout");
    run(oras()
        .args(["copy", "--to-oci-layout", "--from-plain-http"])
        .args([
            format!("{}/team/model:v3", dist.host()),
            format!("{}:v3", dir.display()),
        ]));
    // And as a tar archive of that directory, made by tar(1) (`./` paths).
    let tar = out.path().join("oras-layout.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .arg("."));
    for src in [&dir, &tar] {
        let back = TempStore::new();
        let c = client(&back);
        let m = c
            .import(src, "local/model:v3", None, Watch::default())
            .unwrap();
        assert_eq!(m.digest().to_string(), f.model.digest);
        assert_eq!(c.show("local/model:v3").unwrap(), f.model.manifest.to_vec());
        assert_store_consistent(back.root());
    }
}

// ---------------------------------------------------------------------------
// Hostile layouts.

/// A layout to break: the files of a valid export, as (path, bytes).
fn valid_files(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    let mut files = vec![
        (
            "oci-layout".to_owned(),
            std::fs::read(dir.path().join("oci-layout")).unwrap(),
        ),
        (
            "index.json".to_owned(),
            std::fs::read(dir.path().join("index.json")).unwrap(),
        ),
    ];
    for name in blob_files(dir.path()) {
        files.push((
            format!("blobs/sha256/{name}"),
            std::fs::read(dir.path().join("blobs/sha256").join(&name)).unwrap(),
        ));
    }
    files
}

/// One raw tar entry: any path bytes, any type, any claimed size.
fn raw_entry(out: &mut Vec<u8>, path: &[u8], kind: u8, data: &[u8], claimed: u64, link: &[u8]) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{claimed:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_of(files: &[(String, Vec<u8>)], extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, data) in files {
        raw_entry(
            &mut out,
            path.as_bytes(),
            b'0',
            data,
            data.len() as u64,
            b"",
        );
    }
    extra(&mut out);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Imports `tar` and expects a failure that leaves the store as it was.
fn import_fails(f: &Fixture, tar: &[u8]) -> olreg::Error {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.tar");
    std::fs::write(&path, tar).unwrap();
    let target = TempStore::new();
    let c = client(&target);
    // Another model already there must stay exactly as it is.
    let other = f._reg.add_model("library/bystander:v1", &[1000], 99);
    c.pull(&name_of(&f._reg, &other), Watch::default()).unwrap();
    let before = visible(target.root());
    let err = c
        .import(&path, "victim/model:v1", None, Watch::default())
        .unwrap_err();
    assert_eq!(visible(target.root()), before, "{err}");
    assert!(c.show("victim/model:v1").is_err());
    err
}

#[test]
fn hostile_tar_entries_are_refused_before_anything_is_read() {
    let f = fixture("library/hostile:v1", &[3000, 20], 68);
    let files = valid_files(&f);
    type AddEntry = Box<dyn FnOnce(&mut Vec<u8>)>;
    let cases: Vec<(&str, AddEntry, &str)> = vec![
        (
            "symlink",
            Box::new(|t: &mut Vec<u8>| {
                raw_entry(t, b"blobs/sha256/link", b'2', b"", 0, b"/etc/passwd")
            }),
            "symbolic link",
        ),
        (
            "hard link",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"blobs/x", b'1', b"", 0, b"index.json")),
            "hard link",
        ),
        (
            "char device",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"dev", b'3', b"", 0, b"")),
            "character device",
        ),
        (
            "block device",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"blk", b'4', b"", 0, b"")),
            "block device",
        ),
        (
            "fifo",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"fifo", b'6', b"", 0, b"")),
            "FIFO",
        ),
        (
            "dot-dot",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"blobs/../../escape", b'0', b"x", 1, b"")),
            "'..'",
        ),
        (
            "absolute",
            Box::new(|t: &mut Vec<u8>| raw_entry(t, b"/tmp/olreg-escape", b'0', b"x", 1, b"")),
            "absolute",
        ),
    ];
    for (what, extra, needle) in cases {
        let err = import_fails(&f, &tar_of(&files, extra));
        assert_eq!(err.status(), Status::InvalidArgument, "{what}: {err}");
        assert!(err.to_string().contains(needle), "{what}: {err}");
    }
    assert!(!Path::new("/tmp/olreg-escape").exists());

    // The same path twice (a good blob, then another with its name).
    let (path, data) = files[2].clone();
    let err = import_fails(
        &f,
        &tar_of(&files, |t| {
            raw_entry(t, path.as_bytes(), b'0', &data, data.len() as u64, b"")
        }),
    );
    assert!(err.to_string().contains("twice"), "{err}");

    // An entry claiming more bytes than the archive holds (truncated).
    let mut cut = tar_of(&files, |_| {});
    cut.truncate(cut.len() - 1024 - 600);
    let err = import_fails(&f, &cut);
    assert_eq!(err.status(), Status::InvalidArgument, "{err}");
}

#[test]
fn wrong_sizes_digests_and_paths_fail_with_the_digest() {
    let f = fixture("library/corrupt:v1", &[200_000, 30], 69);
    let files = valid_files(&f);
    let layer = f.model.layers[0].digest.clone();
    let layer_path = format!("blobs/sha256/{}", layer.strip_prefix("sha256:").unwrap());
    let with = |path: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let mut files = files.clone();
        for (p, data) in files.iter_mut() {
            if p == path {
                change(data);
            }
        }
        files
    };

    // A layer with a flipped byte: caught by the hash, named by digest.
    let err = import_fails(
        &f,
        &tar_of(&with(&layer_path, &|d| d[150_000] ^= 1), |_| {}),
    );
    assert_eq!(err.status(), Status::DigestMismatch, "{err}");
    assert_eq!(err.blob().map(|d| d.to_string()), Some(layer.clone()));

    // A truncated layer: caught before any byte is copied.
    let err = import_fails(
        &f,
        &tar_of(&with(&layer_path, &|d| d.truncate(1000)), |_| {}),
    );
    assert_eq!(err.status(), Status::SizeMismatch, "{err}");
    assert_eq!(err.blob().map(|d| d.to_string()), Some(layer.clone()));

    // A missing layer.
    let missing: Vec<_> = files
        .iter()
        .filter(|(p, _)| *p != layer_path)
        .cloned()
        .collect();
    let err = import_fails(&f, &tar_of(&missing, |_| {}));
    assert_eq!(err.status(), Status::NotFound, "{err}");
    assert_eq!(err.blob().map(|d| d.to_string()), Some(layer.clone()));

    // A manifest that is not what the index says.
    let manifest_path = format!(
        "blobs/sha256/{}",
        f.model.digest.strip_prefix("sha256:").unwrap()
    );
    let err = import_fails(&f, &tar_of(&with(&manifest_path, &|d| d[0] = b' '), |_| {}));
    assert_eq!(err.status(), Status::DigestMismatch, "{err}");

    // index.json entries whose digests try to be paths.
    for digest in ["sha256:../../../../etc/passwd", "sha512:abcd", "sha256-00"] {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":10}}]}}"#
        );
        let err = import_fails(
            &f,
            &tar_of(
                &with("index.json", &|d| *d = index.clone().into_bytes()),
                |_| {},
            ),
        );
        assert_eq!(err.status(), Status::InvalidArgument, "{digest}: {err}");
    }

    // No oci-layout file, or another version.
    let no_marker: Vec<_> = files
        .iter()
        .filter(|(p, _)| p != "oci-layout")
        .cloned()
        .collect();
    let err = import_fails(&f, &tar_of(&no_marker, |_| {}));
    assert!(err.to_string().contains("oci-layout"), "{err}");
}

// Symbolic links and FIFOs made the Unix way.
#[cfg(unix)]
#[test]
fn directory_layouts_with_links_are_refused() {
    let f = fixture("library/links:v1", &[3000], 70);
    let outside = tempfile::tempdir().unwrap();
    let layer = f.model.layers[0]
        .digest
        .strip_prefix("sha256:")
        .unwrap()
        .to_owned();

    // blobs/ is a symlink to a directory outside the layout.
    let dir = tempfile::tempdir().unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    std::fs::rename(dir.path().join("blobs"), outside.path().join("blobs")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("blobs"), dir.path().join("blobs")).unwrap();
    let store = TempStore::new();
    let err = client(&store)
        .import(dir.path(), "a/b:c", None, Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument, "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(visible(store.root()).is_empty());

    // One blob is a symlink (to a file holding the right bytes, even).
    let dir = tempfile::tempdir().unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    let blob = dir.path().join("blobs/sha256").join(&layer);
    let elsewhere = outside.path().join("layer");
    std::fs::rename(&blob, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &blob).unwrap();
    let err = client(&store)
        .import(dir.path(), "a/b:c", None, Watch::default())
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(visible(store.root()).is_empty());

    // A FIFO where a blob should be: refused, not waited on.
    std::fs::remove_file(&blob).unwrap();
    let c_path = std::ffi::CString::new(blob.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let err = client(&store)
        .import(dir.path(), "a/b:c", None, Watch::default())
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(visible(store.root()).is_empty());
}

/// Holds the store's lock on `digest`, as another process writing it would.
fn hold_blob_lock(store: &TempStore, digest: &str) -> std::fs::File {
    let dir = store.root().join(".olreg/locks");
    std::fs::create_dir_all(&dir).unwrap();
    let file =
        std::fs::File::create(dir.join(format!("{}.lock", digest.replace(':', "-")))).unwrap();
    assert!(lock_exclusively(&file));
    file
}

#[test]
fn a_cancelled_import_links_nothing_and_the_next_one_finishes() {
    let f = fixture("library/cancel:v1", &[2 << 20, 3000], 71);
    let dir = tempfile::tempdir().unwrap();
    f.client
        .export(&f.name, dir.path(), Watch::default())
        .unwrap();
    let store = TempStore::new();
    let c = client(&store);
    // The last layer is being written by someone else: the import copies
    // the config and the first layer, then waits, and is cancelled there.
    let held = hold_blob_lock(&store, &f.model.layers[1].digest);
    let mut stop = |p: &olreg::Progress| p.event != olreg::ProgressEvent::Waiting;
    let err = c
        .import(
            dir.path(),
            "a/b:c",
            None,
            Watch {
                progress: Some(&mut stop),
                cancel: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::Cancelled, "{err}");
    assert!(c.list().unwrap().is_empty());
    assert!(
        visible(store.root()).is_empty(),
        "blobs that hashed right wait for the others before they appear"
    );
    drop(held);
    c.import(dir.path(), "a/b:c", None, Watch::default())
        .unwrap();
    assert_eq!(c.show("a/b:c").unwrap(), f.model.manifest.to_vec());
    assert_store_consistent(store.root());
}
