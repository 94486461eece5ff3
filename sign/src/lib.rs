//! Release signatures in the formats the field's tools read: cosign's sigstore bundles
//! (attached as OCI referrers, cosign v3's default) and its classic simple-signing `.sig`
//! images (what cosign v2 and older verifiers read), with ECDSA P-256 keys. Pure: building
//! and checking bytes; the store crate moves them.

pub mod bundle;
pub mod classic;
pub mod keys;

pub use keys::{KeyError, KeySigner, PublicKey, Signer};
