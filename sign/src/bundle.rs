//! cosign v3's signature form: a sigstore bundle (v0.3) holding a DSSE envelope of an in-toto
//! statement about the release manifest, attached as an OCI 1.1 referrer (a manifest whose
//! `subject` is the release), found through the registry's referrers API or, where there is
//! none, the referrers tag schema: an index tagged `sha256-<hex>`. The same envelope carries
//! provenance (another predicate type).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use forge_release::Digest;
use serde_json::{Value, json};

use crate::keys::{PublicKey, Signer};

/// The bundle media type (also the referrer's artifact type and its layer's media type).
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type cosign signs images with.
pub const SIGNATURE_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The predicate type of SLSA provenance v1.
pub const PROVENANCE_PREDICATE: &str = "https://slsa.dev/provenance/v1";
/// The OCI empty config (`{}`).
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The referrers index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The most referrers of one release that are read.
pub const MAX_REFERRERS: usize = 64;
/// The largest bundle read.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;

/// The referrers tag schema's tag for `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// An in-toto statement (v1) about the manifest `digest`.
pub fn statement(digest: &Digest, predicate_type: &str, predicate: Value) -> Vec<u8> {
    let value = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&value).expect("a statement serialises")
}

/// DSSE's pre-authentication encoding: what is actually signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out =
        format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The bundle of `statement` signed by `signer`.
pub fn sign(signer: &dyn Signer, statement: &[u8]) -> Result<Vec<u8>, String> {
    let signature = signer.sign(&pae(PAYLOAD_TYPE, statement))?;
    let bundle = json!({
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": signer.public_key().hint()}},
        "dsseEnvelope": {
            "payload": STANDARD.encode(statement),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": STANDARD.encode(signature)}],
        },
    });
    Ok(serde_json::to_vec(&bundle).expect("a bundle serialises"))
}

/// What the referrer's `subject` says of the release manifest.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The manifest's media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its digest.
    pub digest: Digest,
}

/// The referrer manifest attaching `bundle` to `subject`.
pub fn referrer(bundle: &[u8], subject: &Subject, predicate_type: &str, created: &str) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "size": EMPTY_CONFIG.len(),
            "digest": Digest::of(EMPTY_CONFIG).as_str(),
        },
        "layers": [{
            "mediaType": MEDIA_TYPE,
            "size": bundle.len(),
            "digest": Digest::of(bundle).as_str(),
        }],
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
            "org.opencontainers.image.created": created,
        },
        "subject": {
            "mediaType": subject.media_type,
            "size": subject.size,
            "digest": subject.digest.as_str(),
        },
        "artifactType": MEDIA_TYPE,
    });
    serde_json::to_vec(&manifest).expect("a referrer serialises")
}

/// The fallback index with the referrer `(digest, size)` added (sorted by digest, as the
/// referrers tag schema's writers keep it); `None` when it is listed already.
pub fn add_to_index(
    existing: Option<&[u8]>,
    digest: &Digest,
    size: u64,
) -> Result<Option<Vec<u8>>, String> {
    let mut index = match existing {
        Some(bytes) => {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|_| "the referrers index is not JSON".to_owned())?;
            if value.get("mediaType").and_then(Value::as_str) != Some(INDEX_MEDIA_TYPE) {
                return Err("the referrers tag names something else than an OCI index".into());
            }
            value
        }
        None => json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}),
    };
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "the referrers index has no manifests".to_owned())?;
    if manifests.iter().any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str())) {
        return Ok(None);
    }
    manifests.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": size,
        "digest": digest.as_str(),
        "artifactType": MEDIA_TYPE,
    }));
    manifests.sort_by(|a, b| {
        let key = |v: &Value| v.get("digest").and_then(Value::as_str).unwrap_or("").to_owned();
        key(a).cmp(&key(b))
    });
    Ok(Some(serde_json::to_vec(&index).expect("an index serialises")))
}

#[derive(serde::Deserialize)]
struct Listing {
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Layers {
    #[serde(default)]
    layers: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
}

/// The referrer manifests an index lists (digest and size), at most [`MAX_REFERRERS`]. Read
/// into typed values: whatever else the index holds is skipped, not kept.
pub fn index_entries(index: &[u8]) -> Result<Vec<(Digest, u64)>, String> {
    let listing: Listing = serde_json::from_slice(index)
        .map_err(|_| "a referrers index that is not an index".to_owned())?;
    Ok(listing
        .manifests
        .into_iter()
        .filter_map(|m| Some((m.digest.parse().ok()?, m.size)))
        .take(MAX_REFERRERS)
        .collect())
}

/// The bundle layer of a referrer manifest: its digest and size, if it has exactly one.
pub fn bundle_layer(manifest: &[u8]) -> Option<(Digest, u64)> {
    let manifest: Layers = serde_json::from_slice(manifest).ok()?;
    let bundles: Vec<Entry> = manifest
        .layers
        .into_iter()
        .filter(|l| l.media_type.starts_with("application/vnd.dev.sigstore.bundle"))
        .collect();
    let [layer] = bundles.as_slice() else { return None };
    Some((layer.digest.parse().ok()?, layer.size))
}

/// A verified statement: who signed it and what it says.
#[derive(Debug, Clone)]
pub struct Verified<'k> {
    /// The key whose signature verified.
    pub key: &'k PublicKey,
    /// The statement's predicate type.
    pub predicate_type: String,
    /// Its predicate.
    pub predicate: Value,
}

/// Checks a bundle: a DSSE envelope with one signature by one of `keys` over an in-toto
/// statement whose subject is `digest`. What it says, or why it does not count.
pub fn verify<'k>(
    bundle: &[u8],
    digest: &Digest,
    keys: &'k [PublicKey],
) -> Result<Verified<'k>, String> {
    let value: Value =
        serde_json::from_slice(bundle).map_err(|_| "a bundle that is not JSON".to_owned())?;
    let media_type = value.get("mediaType").and_then(Value::as_str).unwrap_or_default();
    if !media_type.starts_with("application/vnd.dev.sigstore.bundle") {
        return Err(format!("a bundle of media type `{media_type}`"));
    }
    let envelope =
        value.get("dsseEnvelope").ok_or_else(|| "a bundle without a DSSE envelope".to_owned())?;
    if envelope.get("payloadType").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err("a DSSE envelope that is not an in-toto statement".into());
    }
    let decode = |text: &str| STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok();
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .and_then(decode)
        .ok_or_else(|| "a DSSE payload that is not base64".to_owned())?;
    let signatures = envelope.get("signatures").and_then(Value::as_array);
    let [signature] = signatures.map(Vec::as_slice).unwrap_or_default() else {
        return Err("a DSSE envelope without exactly one signature".into());
    };
    let signature = signature
        .get("sig")
        .and_then(Value::as_str)
        .and_then(decode)
        .ok_or_else(|| "a DSSE signature that is not base64".to_owned())?;
    let signed = pae(PAYLOAD_TYPE, &payload);
    let key = keys
        .iter()
        .find(|k| k.verifies(&signed, &signature))
        .ok_or_else(|| "a bundle signed by none of the trusted keys".to_owned())?;
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|_| "a signed statement that is not JSON".to_owned())?;
    let names_release =
        statement.get("subject").and_then(Value::as_array).is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(digest.hex()))
        });
    if !names_release {
        return Err("a bundle about another release".into());
    }
    Ok(Verified {
        key,
        predicate_type: statement
            .get("predicateType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        predicate: statement.get("predicate").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySigner;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(pae("t", b"body"), b"DSSEv1 1 t 4 body");
    }

    #[test]
    fn a_bundle_verifies_for_its_release_and_key_only() {
        let signer = KeySigner::from_pem(crate::keys::tests::TEST_KEY, None).expect("key");
        let digest = Digest::of(b"release");
        let statement = statement(&digest, SIGNATURE_PREDICATE, json!({}));
        let bundle = sign(&signer, &statement).expect("sign");
        let keys = [signer.public_key().clone()];
        let verified = verify(&bundle, &digest, &keys).expect("verifies");
        assert_eq!(verified.predicate_type, SIGNATURE_PREDICATE);
        let refused = verify(&bundle, &Digest::of(b"other"), &keys).expect_err("other release");
        assert!(refused.contains("another release"), "{refused}");
        let forged =
            String::from_utf8(bundle).expect("utf-8").replace("\"sig\":\"M", "\"sig\":\"N");
        assert!(verify(forged.as_bytes(), &digest, &keys).is_err());
    }

    #[test]
    fn the_fallback_index_gains_each_referrer_once_in_digest_order() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let index = add_to_index(None, &a, 10).expect("new").expect("added");
        let index = add_to_index(Some(&index), &b, 20).expect("add").expect("added");
        assert!(add_to_index(Some(&index), &a, 10).expect("again").is_none());
        let entries = index_entries(&index).expect("entries");
        let mut expected = vec![(a, 10), (b, 20)];
        expected.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        assert_eq!(entries, expected);
        assert!(add_to_index(Some(b"{\"mediaType\":\"other\"}"), &Digest::of(b"c"), 1).is_err());
    }
}
