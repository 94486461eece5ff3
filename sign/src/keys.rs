//! ECDSA P-256 keys as cosign and OpenSSL write them: public keys as PEM `PUBLIC KEY` (PKIX),
//! private keys as PEM `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1), or cosign's own
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt and NaCl secretbox around PKCS#8), and the
//! [`Signer`] a release is signed through (a key file today; a KMS can be another).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::{Digest as _, Sha256};

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or PEM of something else.
    #[error("{0}")]
    Format(String),
    /// An encrypted key needs its password.
    #[error("the key is encrypted and no password was given")]
    NoPassword,
    /// The password does not open it.
    #[error("the password does not decrypt the key")]
    WrongPassword,
}

/// A public key that verifies release signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    spki: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (what `cosign generate-key-pair` writes to cosign.pub).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
            KeyError::Format(format!("not a PEM ECDSA P-256 public key (PUBLIC KEY): {e}"))
        })?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: VerifyingKey) -> Self {
        let spki = key.to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        PublicKey { key, spki }
    }

    /// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo: how forge-pack names a key.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.spki)))
    }

    /// The sigstore bundle's `publicKey.hint`: base64 of SHA-256 of the DER
    /// SubjectPublicKeyInfo (a hint only; verifiers use the key they are given).
    pub fn hint(&self) -> String {
        STANDARD.encode(Sha256::digest(&self.spki))
    }

    /// The PEM form.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap_or_default()
    }

    /// Whether `signature` (ASN.1 DER, or the 64-byte `r||s` some signers write) is this key's
    /// ECDSA-SHA256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let parsed = Signature::from_der(signature).or_else(|_| Signature::from_slice(signature));
        parsed.is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }
}

/// What signs releases: a key file here; a KMS or HSM signer implements the same (its public
/// key, and a DER ECDSA-SHA256 signature of a message).
pub trait Signer: std::fmt::Debug + Send + Sync {
    /// The public half, for verifiers and for the bundle's key hint.
    fn public_key(&self) -> &PublicKey;
    /// The DER-encoded ECDSA P-256 SHA-256 signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// A private key in memory. Signatures are deterministic (RFC 6979): signing the same release
/// again writes the same bytes.
pub struct KeySigner {
    key: SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySigner({})", self.public.fingerprint())
    }
}

impl Signer for KeySigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature: DerSignature = self.key.sign(message);
        Ok(signature.as_bytes().to_vec())
    }
}

impl KeySigner {
    /// Reads a PEM private key; `password` opens cosign's encrypted form.
    pub fn from_pem(text: &str, password: Option<&str>) -> Result<Self, KeyError> {
        let (label, body) = pem(text)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&body)
                .map_err(|e| KeyError::Format(format!("not an ECDSA P-256 PKCS#8 key: {e}")))?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&body)
                .map(SigningKey::from)
                .map_err(|e| KeyError::Format(format!("not an ECDSA P-256 SEC1 key: {e}")))?,
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                let der = decrypt_cosign_key(&body, password.ok_or(KeyError::NoPassword)?)?;
                SigningKey::from_pkcs8_der(&der).map_err(|e| {
                    KeyError::Format(format!("the decrypted key is not ECDSA P-256 PKCS#8: {e}"))
                })?
            }
            other => {
                return Err(KeyError::Format(format!(
                    "a PEM `{other}` is not a private key forge-pack reads (PRIVATE KEY, EC PRIVATE KEY, or cosign's ENCRYPTED SIGSTORE PRIVATE KEY)"
                )));
            }
        };
        let public = PublicKey::from_key(*key.verifying_key());
        Ok(KeySigner { key, public })
    }
}

/// The first PEM block of `text`: its label and decoded body.
fn pem(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")))
        .ok_or_else(|| KeyError::Format("not a PEM file (no -----BEGIN line)".into()))?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let bytes = STANDARD
                .decode(body)
                .map_err(|_| KeyError::Format(format!("the PEM `{label}` body is not base64")))?;
            return Ok((label, bytes));
        }
        // Headers (`Proc-Type: …`) mark OpenSSL's legacy encryption, which is not read.
        if line.contains(':') {
            return Err(KeyError::Format(format!(
                "the PEM `{label}` has headers (OpenSSL's legacy encryption); convert it with `openssl pkcs8 -topk8`"
            )));
        }
        body.push_str(line);
    }
    Err(KeyError::Format(format!("the PEM `{label}` has no END line")))
}

/// The JSON inside cosign's encrypted key (go-securesystemslib's `encrypted` format).
#[derive(serde::Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn decrypt_cosign_key(body: &[u8], password: &str) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let bad = |what: &str| KeyError::Format(format!("cosign key: {what}"));
    let key: EncryptedKey = serde_json::from_slice(body).map_err(|_| bad("not its JSON"))?;
    if key.kdf.name != "scrypt" || key.cipher.name != "nacl/secretbox" {
        return Err(bad("only scrypt with nacl/secretbox is read"));
    }
    // The parameter sets cosign accepts: a key file cannot make opening it arbitrarily costly.
    let log_n = match (key.kdf.params.N, key.kdf.params.r, key.kdf.params.p) {
        (32768, 8, 1) => 15,
        (65536, 8, 1) => 16,
        (131072, 8, 1) => 17,
        _ => return Err(bad("unsupported scrypt parameters")),
    };
    let decode = |what: &str, text: &str| STANDARD.decode(text).map_err(|_| bad(what));
    let salt = decode("salt is not base64", &key.kdf.salt)?;
    let nonce = decode("nonce is not base64", &key.cipher.nonce)?;
    let ciphertext = decode("ciphertext is not base64", &key.ciphertext)?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| bad("the nonce is not 24 bytes"))?;
    let params = scrypt::Params::new(log_n, 8, 1).map_err(|_| bad("scrypt parameters"))?;
    let mut secret = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut secret)
        .map_err(|_| bad("scrypt failed"))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&secret.into());
    cipher.decrypt(&nonce.into(), ciphertext.as_slice()).map_err(|_| KeyError::WrongPassword)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway PKCS#8 key (openssl ecparam -genkey | openssl pkcs8 -topk8 -nocrypt).
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiEESVpwOGEqg97Zu
qPgcoeZI7QFlGSpwr+7hcSEHT46hRANCAAQkOgIQyeExs/LBdHrRFcXK4KTThTbL
WY5asxagPoDI5A4x+JbiErIIm/ky//VuuXOwxs53j5YxcSfxwcCwaz/b
-----END PRIVATE KEY-----
";

    #[test]
    fn a_key_signs_deterministically_and_its_public_half_verifies() {
        let signer = KeySigner::from_pem(TEST_KEY, None).expect("key");
        let first = signer.sign(b"release").expect("sign");
        assert_eq!(first, signer.sign(b"release").expect("sign"), "RFC 6979");
        let public = PublicKey::from_pem(&signer.public_key().to_pem()).expect("pem");
        assert!(public.verifies(b"release", &first));
        assert!(!public.verifies(b"other", &first));
        assert!(public.fingerprint().starts_with("sha256:"));
    }

    #[test]
    fn other_pems_and_broken_ones_are_refused_with_reasons() {
        let public = KeySigner::from_pem(TEST_KEY, None).expect("key").public_key().to_pem();
        let refused = KeySigner::from_pem(&public, None).expect_err("public key");
        assert!(refused.to_string().contains("`PUBLIC KEY` is not a private key"), "{refused}");
        assert!(KeySigner::from_pem("hello", None).is_err());
        let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert!(matches!(KeySigner::from_pem(encrypted, None), Err(KeyError::NoPassword)));
        assert!(KeySigner::from_pem(encrypted, Some("pw")).is_err());
    }
}
