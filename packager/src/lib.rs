//! forge-pack
