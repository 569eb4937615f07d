//! Signing keys written by other tools (tests/fixtures/keys, made with
//! ssh-keygen, OpenSSL's `genpkey -algorithm ed25519` and Python's
//! `cryptography`): OpenSSH keys whatever their base64 line width, and
//! PKCS#8 `BEGIN PRIVATE KEY` Ed25519 keys as Go's ssh.ParseRawPrivateKey
//! reads them. Each must sign what the registry verifies with its public key.

mod common;

use std::path::{Path, PathBuf};

use common::{builder, name_of, TempStore};
use olreg::{Status, Watch};
use olreg_testreg::{Auth, Options, TestRegistry};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

#[test]
fn keys_from_other_tools_sign_requests() {
    for key in [
        "ssh-keygen",
        "cryptography-openssh",
        "cryptography-pkcs8.pem",
        "openssl-pkcs8.pem",
    ] {
        let private = fixture(key);
        let public_file = fixture(&format!("{}.pub", key.trim_end_matches(".pem")));
        let public = std::fs::read_to_string(&public_file).unwrap();
        // Only this key's signature opens the registry.
        let reg = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
            public_keys: vec![public.trim().to_owned()],
            token_ttl_secs: 60,
        }));
        let model = reg.add_model("library/m:v1", &[1000], 1);
        let store = TempStore::new();
        let client = builder(&store)
            .key_file(&private)
            .build()
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        client
            .pull(&name_of(&reg, &model), Watch::default())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn unusable_keys_are_named_once_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("id_ed25519");
    std::fs::write(
        &garbage,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64!\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let encrypted = fixture("ssh-keygen-encrypted");
    for (path, why) in [
        (garbage.as_path(), "base64"),
        (not_pem.as_path(), "no private key"),
        (encrypted.as_path(), "passphrase"),
    ] {
        let store = TempStore::new();
        let Err(err) = builder(&store).key_file(path).build() else {
            panic!("{} was accepted", path.display());
        };
        let text = err.to_string();
        assert_eq!(err.status(), Status::InvalidArgument, "{text}");
        assert_eq!(
            text.matches(&path.display().to_string()).count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("invalid argument").count(), 1, "{text}");
        assert!(text.contains(why), "{text}");
    }
}
