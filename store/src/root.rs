//! The embedded default store.

use std::path::PathBuf;

use forge_release::reference::StoreRoot;

/// The embedded default store: `$XDG_DATA_HOME/forge-pack/releases`, else
/// `~/.local/share/forge-pack/releases`; `None` when neither variable is set.
pub fn embedded() -> Option<StoreRoot> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = match nonempty("XDG_DATA_HOME") {
        Some(data) => data.join("forge-pack/releases"),
        None => nonempty("HOME")?.join(".local/share/forge-pack/releases"),
    };
    Some(StoreRoot::Layouts(dir))
}
