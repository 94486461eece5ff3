//! forge-cmp
