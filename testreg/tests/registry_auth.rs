//! The auth modes over real sockets, with the shared test vectors and the
//! vector key signing fresh requests.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{get, Req};
use ed25519_dalek::{Signer, SigningKey};
use olreg_testreg::{Auth, Options, TestRegistry};

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/auth-vector.json"
    );
    let text = std::fs::read_to_string(path)
        .or_else(|_| std::fs::read_to_string("/work/shared/testdata/auth-vector.json"))
        .expect("auth-vector.json");
    serde_json::from_str(&text).expect("vector JSON")
}

/// The vector's public key line and its base64 field.
fn public_key() -> (String, String) {
    let line = vectors()["public_key"].as_str().expect("key").to_string();
    let field = line.split_whitespace().nth(1).expect("field").to_string();
    (line, field)
}

/// The vector's private key, from its unencrypted OpenSSH encoding.
fn signing_key() -> SigningKey {
    let pem = vectors()["private_key_openssh"]
        .as_str()
        .expect("private key")
        .to_string();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let raw = STANDARD.decode(body).expect("base64");
    let mut rest = raw
        .strip_prefix(b"openssh-key-v1\0")
        .expect("openssh magic");
    assert_eq!(ssh_string(&mut rest), b"none"); // cipher
    assert_eq!(ssh_string(&mut rest), b"none"); // kdf
    ssh_string(&mut rest); // kdf options
    rest = &rest[4..]; // number of keys
    ssh_string(&mut rest); // public key
    let private = ssh_string(&mut rest);
    // checkint x2, key type, public key, then the 64-byte private key.
    let mut p = &private[8..];
    assert_eq!(ssh_string(&mut p), b"ssh-ed25519");
    ssh_string(&mut p);
    let secret = ssh_string(&mut p);
    SigningKey::from_bytes(secret[..32].try_into().expect("seed"))
}

/// Takes one SSH wire-format string off the front of `buf`.
fn ssh_string<'a>(buf: &mut &'a [u8]) -> &'a [u8] {
    let len = u32::from_be_bytes(buf[..4].try_into().expect("len")) as usize;
    let s = &buf[4..4 + len];
    *buf = &buf[4 + len..];
    s
}

/// `Authorization` for the token endpoint: the key field and the signature
/// of the URL.
fn sign_url(url: &str) -> String {
    let zero = STANDARD.encode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let sig = signing_key().sign(format!("GET,{url},{zero}").as_bytes());
    format!("{}:{}", public_key().1, STANDARD.encode(sig.to_bytes()))
}

#[test]
fn the_vector_key_is_the_vector_public_key() {
    assert_eq!(
        signing_key().verifying_key().to_bytes().to_vec(),
        STANDARD.decode(public_key().1).expect("b64")[19..].to_vec()
    );
}

#[test]
fn legacy_tokens_from_the_vectors_are_accepted() {
    let (line, _) = public_key();
    for keys in [vec![], vec![line]] {
        let reg =
            TestRegistry::start(Options::default().auth(Auth::Ed25519Legacy { public_keys: keys }));
        let model = reg.add_model("ns/m:t", &[10], 1);
        let manifest_url = format!("{}/v2/ns/m/manifests/t", reg.url());
        for case in vectors()["cases"].as_array().expect("cases") {
            let auth = case["authorization"].as_str().expect("authorization");
            let resp = Req::new("GET", &manifest_url)
                .header("Authorization", auth)
                .send();
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body, model.manifest);
        }
        let resp = get(&manifest_url);
        assert_eq!(resp.status, 401);
        assert_eq!(resp.error_code(), "UNAUTHORIZED");
        assert_eq!(get(&format!("{}/v2/", reg.url())).status, 401);
        let resp = Req::new("GET", &manifest_url)
            .header("Authorization", "Bearer aGk=:AAAA:AAAA")
            .send();
        assert_eq!(resp.status, 401);
    }
}

#[test]
fn legacy_auth_refuses_unlisted_keys_and_never_guards_the_blob_store() {
    let reg = TestRegistry::start(Options::default().auth(Auth::Ed25519Legacy {
        public_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA other".into()],
    }));
    let model = reg.add_model("ns/m:t", &[10], 1);
    let auth = vectors()["cases"][0]["authorization"]
        .as_str()
        .expect("authorization")
        .to_string();
    let blob = format!("{}/v2/ns/m/blobs/{}", reg.url(), model.layers[0].digest);
    assert_eq!(
        Req::new("GET", &blob)
            .header("Authorization", &auth)
            .send()
            .status,
        401
    );

    let open = TestRegistry::start(Options::default().auth(Auth::Ed25519Legacy {
        public_keys: vec![],
    }));
    let model = open.add_model("ns/m:t", &[10], 1);
    let blob = format!("{}/v2/ns/m/blobs/{}", open.url(), model.layers[0].digest);
    let resp = Req::new("GET", &blob).header("Authorization", &auth).send();
    assert_eq!(resp.status, 307);
    let resp = get(resp.header("location").expect("Location"));
    assert_eq!(resp.status, 200);
}

#[test]
fn challenge_flow_issues_scoped_tokens() {
    let reg = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
        public_keys: vec![public_key().0],
        token_ttl_secs: 60,
    }));
    let model = reg.add_model("library/m:t", &[10], 1);
    let manifest_url = format!("{}/v2/library/m/manifests/t", reg.url());

    let resp = get(&manifest_url);
    assert_eq!(resp.status, 401);
    let challenge = resp
        .header("www-authenticate")
        .expect("challenge")
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}/token\",service=\"{}\",scope=\"repository:library/m:pull\"",
            reg.url(),
            reg.host()
        )
    );
    let resp = Req::new(
        "POST",
        &format!("{}/v2/library/m/blobs/uploads/", reg.url()),
    )
    .send();
    assert!(resp
        .header("www-authenticate")
        .expect("challenge")
        .ends_with("scope=\"repository:library/m:pull,push\""));

    // The client's token request, query sorted as Go's url.Values encodes.
    let token_url = format!(
        "{}/token?nonce=abc&scope=repository%3Alibrary%2Fm%3Apull&service={}&ts=1700000000",
        reg.url(),
        reg.host().replace(':', "%3A")
    );
    let resp = Req::new("GET", &token_url)
        .header("Authorization", sign_url(&token_url))
        .send();
    assert_eq!(
        resp.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
    let answer = resp.json();
    assert_eq!(answer["expires_in"], 60);
    assert!(answer["issued_at"]
        .as_str()
        .expect("issued_at")
        .ends_with('Z'));
    let token = answer["token"].as_str().expect("token").to_string();
    let bearer = format!("Bearer {token}");

    let resp = Req::new("GET", &manifest_url)
        .header("Authorization", &bearer)
        .send();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, model.manifest);

    // A pull token does not allow a push…
    let resp = Req::new(
        "POST",
        &format!("{}/v2/library/m/blobs/uploads/", reg.url()),
    )
    .header("Authorization", &bearer)
    .send();
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .expect("challenge")
        .contains("error=\"insufficient_scope\""));
    // …nor another repository.
    let resp = Req::new(
        "GET",
        &format!("{}/v2/library/other/manifests/t", reg.url()),
    )
    .header("Authorization", &bearer)
    .send();
    assert_eq!(resp.status, 401);

    // A signature over another URL, or none, gets no token.
    let resp = Req::new("GET", &token_url)
        .header("Authorization", sign_url(&format!("{token_url}&x=1")))
        .send();
    assert_eq!(resp.status, 401);
    assert_eq!(get(&token_url).status, 401);
}

#[test]
fn challenge_tokens_expire_and_keys_are_checked() {
    let reg = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
        public_keys: vec![],
        token_ttl_secs: 0,
    }));
    let token_url = format!(
        "{}/token?scope=repository%3Ans%2Fm%3Apull%2Cpush&service=x",
        reg.url()
    );
    let resp = Req::new("GET", &token_url)
        .header("Authorization", sign_url(&token_url))
        .send();
    assert_eq!(resp.status, 200);
    let token = resp.json()["token"].as_str().expect("token").to_string();
    let resp = Req::new("GET", &format!("{}/v2/ns/m/manifests/t", reg.url()))
        .header("Authorization", format!("Bearer {token}"))
        .send();
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .expect("challenge")
        .contains("error=\"invalid_token\""));

    let strict = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
        public_keys: vec![
            "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ],
        token_ttl_secs: 60,
    }));
    let token_url = format!("{}/token?service=x", strict.url());
    let resp = Req::new("GET", &token_url)
        .header("Authorization", sign_url(&token_url))
        .send();
    assert_eq!(resp.status, 401);
}

#[test]
fn basic_auth_wants_the_exact_user_and_password() {
    let reg = TestRegistry::start(Options::default().auth(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }));
    let url = format!("{}/v2/", reg.url());
    let resp = get(&url);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Basic realm=\"testreg\"")
    );
    let good = format!("Basic {}", STANDARD.encode("alice:s3cret"));
    let bad = format!("Basic {}", STANDARD.encode("alice:nope"));
    assert_eq!(
        Req::new("GET", &url)
            .header("Authorization", good)
            .send()
            .status,
        200
    );
    assert_eq!(
        Req::new("GET", &url)
            .header("Authorization", bad)
            .send()
            .status,
        401
    );
}

#[test]
fn challenges_may_name_another_realm() {
    let reg = TestRegistry::start(
        Options::default()
            .auth(Auth::OllamaChallenge {
                public_keys: vec![],
                token_ttl_secs: 60,
            })
            .realm("http://127.0.0.1:9/token", "elsewhere"),
    );
    let resp = get(&format!("{}/v2/library/m/manifests/t", reg.url()));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some(
            "Bearer realm=\"http://127.0.0.1:9/token\",service=\"elsewhere\",scope=\"repository:library/m:pull\""
        )
    );
}
