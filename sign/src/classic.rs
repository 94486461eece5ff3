//! cosign's classic signature form: a simple-signing payload naming the manifest digest, signed
//! (ECDSA over its SHA-256), stored as one layer of the image tagged `sha256-<hex>.sig` in the
//! release's repository, the signature in the layer's annotation. cosign v2 and every older
//! verifier read only this form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use forge_release::Digest;
use serde_json::{Value, json};

use crate::keys::{PublicKey, Signer};

/// The layer media type of a simple-signing payload.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The most layers a signature image may have that is read (cosign's own limit is 1000).
pub const MAX_LAYERS: usize = 100;
/// The largest payload read.
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

/// The tag of the signatures of `digest`: `sha256-<hex>.sig`.
pub fn tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The payload that says "`reference` at `digest`", in cosign's field order.
pub fn payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let value = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&value).expect("a payload serialises")
}

/// A signed payload: the blob to upload and its layer descriptor.
#[derive(Debug, Clone)]
pub struct SignedPayload {
    /// The payload bytes (the layer blob).
    pub payload: Vec<u8>,
    /// The layer descriptor, signature annotation included.
    pub layer: Value,
}

/// Signs the payload for `digest` in `docker_reference`.
pub fn sign(
    signer: &dyn Signer,
    docker_reference: &str,
    digest: &Digest,
) -> Result<SignedPayload, String> {
    let payload = payload(docker_reference, digest);
    let signature = signer.sign(&payload)?;
    let layer = json!({
        "mediaType": PAYLOAD_MEDIA_TYPE,
        "size": payload.len(),
        "digest": Digest::of(&payload).as_str(),
        "annotations": {SIGNATURE_ANNOTATION: STANDARD.encode(signature)},
    });
    Ok(SignedPayload { payload, layer })
}

/// The layers of an existing signature image (`bytes`); an image that is not one is an error.
pub fn layers(manifest: &[u8]) -> Result<Vec<Value>, String> {
    let value: Value =
        serde_json::from_slice(manifest).map_err(|_| "the .sig manifest is not JSON".to_owned())?;
    let layers = value
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| "the .sig manifest has no layers".to_owned())?;
    if layers.len() > MAX_LAYERS {
        return Err(format!("the .sig image has more than {MAX_LAYERS} layers"));
    }
    Ok(layers.clone())
}

/// The signature image holding `layers`: its config blob and manifest, in cosign's shape (one
/// history entry and one diff id per layer, so that cosign can append to it).
pub fn image(layers: &[Value]) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<&str> =
        layers.iter().filter_map(|l| l.get("digest").and_then(Value::as_str)).collect();
    let history: Vec<Value> =
        layers.iter().map(|_| json!({"created": "0001-01-01T00:00:00Z"})).collect();
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config = serde_json::to_vec(&config).expect("a config serialises");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": Digest::of(&config).as_str(),
        },
        "layers": layers,
    });
    (config, serde_json::to_vec(&manifest).expect("a manifest serialises"))
}

/// The simple-signing layers of a signature image (at most [`MAX_LAYERS`]): each payload's
/// digest and size and its base64 signature. Read into typed values: whatever else the
/// manifest holds is skipped, not kept.
pub fn signed_layers(manifest: &[u8]) -> Vec<(Digest, u64, String)> {
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layer {
        media_type: String,
        digest: String,
        size: u64,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    let Ok(image) = serde_json::from_slice::<Image>(manifest) else { return Vec::new() };
    image
        .layers
        .into_iter()
        .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
        .filter_map(|l| {
            let signature = l.annotations.get(SIGNATURE_ANNOTATION)?.clone();
            Some((l.digest.parse().ok()?, l.size, signature))
        })
        .take(MAX_LAYERS)
        .collect()
}

/// A layer's payload descriptor and base64 signature, if it is a simple-signing layer.
pub fn layer_parts(layer: &Value) -> Option<(Digest, u64, &str)> {
    if layer.get("mediaType")?.as_str()? != PAYLOAD_MEDIA_TYPE {
        return None;
    }
    let digest = layer.get("digest")?.as_str()?.parse().ok()?;
    let size = layer.get("size")?.as_u64()?;
    let signature = layer.get("annotations")?.get(SIGNATURE_ANNOTATION)?.as_str()?;
    Some((digest, size, signature))
}

/// Checks a payload and its base64 signature: signed by one of `keys`, naming `digest`. The
/// key that signed, or why not.
pub fn verify<'k>(
    payload: &[u8],
    signature_b64: &str,
    digest: &Digest,
    keys: &'k [PublicKey],
) -> Result<&'k PublicKey, String> {
    let signature =
        STANDARD.decode(signature_b64).map_err(|_| "the signature is not base64".to_owned())?;
    let key = keys
        .iter()
        .find(|k| k.verifies(payload, &signature))
        .ok_or_else(|| "a .sig signature by none of the trusted keys".to_owned())?;
    let value: Value = serde_json::from_slice(payload)
        .map_err(|_| "a signed .sig payload that is not JSON".to_owned())?;
    let named = value.pointer("/critical/image/docker-manifest-digest").and_then(Value::as_str);
    if named != Some(digest.as_str()) {
        return Err(format!(
            "a .sig signature of another release ({})",
            named.unwrap_or("no digest")
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySigner;

    #[test]
    fn a_signed_payload_verifies_for_its_digest_only() {
        let signer = KeySigner::from_pem(crate::keys::tests::TEST_KEY, None).expect("key");
        let digest = Digest::of(b"release");
        let signed = sign(&signer, "registry.example.com/team/app", &digest).expect("sign");
        let (payload_digest, size, signature) = layer_parts(&signed.layer).expect("layer");
        assert_eq!(
            (payload_digest, size),
            (Digest::of(&signed.payload), signed.payload.len() as u64)
        );
        let keys = [signer.public_key().clone()];
        assert!(verify(&signed.payload, signature, &digest, &keys).is_ok());
        let other = Digest::of(b"other");
        let refused = verify(&signed.payload, signature, &other, &keys).expect_err("other digest");
        assert!(refused.contains("another release"), "{refused}");
        let (config, manifest) = image(&[signed.layer]);
        let config: Value = serde_json::from_slice(&config).expect("json");
        assert_eq!(config["rootfs"]["diff_ids"][0], Digest::of(&signed.payload).as_str());
        assert_eq!(layers(&manifest).expect("layers").len(), 1);
    }
}
