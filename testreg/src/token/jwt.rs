//! ES256 JSON Web Tokens in the shape Docker Distribution verifies.
//!
//! Distribution finds the verifying key from the JWT header, trying `x5c`
//! (a certificate chain checked against `auth.token.rootcertbundle`), then
//! `jwk`, then `kid`, which 2.8 reads as a *libtrust key ID* of one of the
//! bundle's public keys. (3.x reads `kid` as a JWK thumbprint instead, and
//! 3.0.0 computes it from the curve's base point rather than the key, so
//! only `x5c` works with every version.) We sign with a fresh P-256 key and
//! put a self-signed certificate for it in the bundle, so both `kid` and
//! `x5c` work with 2.8; which one goes in the header is a [`KeyHint`]. The
//! signature is the raw 64-byte `r || s` form JOSE requires, not DER.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;

/// Which header field tells the registry the signing key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyHint {
    /// `kid`: the libtrust key ID of the public key in the root bundle.
    #[default]
    KeyId,
    /// `x5c`: the (self-signed) certificate itself, verified against the bundle.
    CertChain,
}

/// One entry of the `access` claim: what the token allows on one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    /// `repository`, or `registry` for the catalog.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The repository name, e.g. `library/m`.
    pub name: String,
    /// Granted actions, e.g. `["pull", "push"]`.
    pub actions: Vec<String>,
}

/// The claim set Distribution checks: issuer, audience (= service), time
/// window (with its 60 s leeway on both ends) and `access`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<ResourceActions>,
}

/// A P-256 signing key with its self-signed certificate.
pub struct SigningKey {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    key_id: String,
    cert_pem: String,
    cert_der_b64: String,
}

impl SigningKey {
    /// Generates a new key and a self-signed certificate for it.
    pub fn generate() -> io::Result<SigningKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| io::Error::other("cannot generate a P-256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| io::Error::other(format!("cannot load the P-256 key: {e}")))?;
        let cert_key = rcgen::KeyPair::try_from(pkcs8.as_ref())
            .map_err(|e| io::Error::other(format!("rcgen cannot load the key: {e}")))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| io::Error::other(format!("certificate parameters: {e}")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "olreg-testreg token signer");
        let cert = params
            .self_signed(&cert_key)
            .map_err(|e| io::Error::other(format!("cannot self-sign: {e}")))?;
        let spki = spki_der_p256(key.public_key().as_ref());
        Ok(SigningKey {
            key,
            rng,
            key_id: libtrust_key_id(&spki),
            cert_pem: cert.pem(),
            cert_der_b64: STANDARD.encode(cert.der().as_ref()),
        })
    }

    /// The libtrust key ID Distribution computes for this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The certificate, PEM-encoded: the content of `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs `claims` as a compact JWS (`header.claims.signature`).
    pub fn sign(&self, claims: &Claims, hint: KeyHint) -> io::Result<String> {
        let header = match hint {
            KeyHint::KeyId => serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": self.key_id}),
            KeyHint::CertChain => {
                serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_b64]})
            }
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| io::Error::other("ES256 signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// 16 random bytes as hex, for `jti`.
    pub fn random_id(&self) -> String {
        let mut b = [0u8; 16];
        // SystemRandom only fails if the OS RNG is broken; an all-zero jti is
        // still a valid (if not unique) claim, so there is nothing to report.
        let _ = self.rng.fill(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

/// The DER SubjectPublicKeyInfo of an uncompressed P-256 point, as Go's
/// `x509.MarshalPKIXPublicKey` writes it (the input to the libtrust key ID).
fn spki_der_p256(point: &[u8]) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(point);
    der
}

/// libtrust's key ID: base32 of the first 240 bits of sha256(SPKI DER), in
/// twelve `:`-separated groups of four characters.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = Sha256::digest(spki_der);
    let b32 = base32_no_pad(&hash[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32 (standard alphabet) without padding.
fn base32_no_pad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u64, 0u32);
    for &byte in data {
        buf = (buf << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_no_pad(b""), "");
        assert_eq!(base32_no_pad(b"f"), "MY");
        assert_eq!(base32_no_pad(b"fo"), "MZXQ");
        assert_eq!(base32_no_pad(b"foo"), "MZXW6");
        assert_eq!(base32_no_pad(b"foob"), "MZXW6YQ");
        assert_eq!(base32_no_pad(b"fooba"), "MZXW6YTB");
        assert_eq!(base32_no_pad(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn key_id_has_twelve_groups_of_four() {
        let key = SigningKey::generate().unwrap();
        let groups: Vec<&str> = key.key_id().split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| g.len() == 4));
    }

    #[test]
    fn signature_verifies_with_the_public_key() {
        let key = SigningKey::generate().unwrap();
        let claims = Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp: 2,
            nbf: 0,
            iat: 1,
            jti: key.random_id(),
            access: vec![],
        };
        let jwt = key.sign(&claims, KeyHint::KeyId).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            key.key.public_key().as_ref(),
        );
        public.verify(input.as_bytes(), &sig).unwrap();
    }
}
