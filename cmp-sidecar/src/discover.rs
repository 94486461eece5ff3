//! Finding the pointer files in the app directory.

use std::path::Path;

use forge_release::reference::StoreRoot;

use crate::error::CmpError;
use crate::pointer::{self, LoadedPointer};

/// Loads the pointers of an app: the named file if one is configured, otherwise every
/// `*.yaml`/`*.yml` file directly in `dir` whose `kind` is ReleasePointer (other files are
/// ignored). Sorted by file name; two pointers for one image are an error.
pub fn pointers(
    dir: &Path,
    named: Option<&Path>,
    root: &StoreRoot,
) -> Result<Vec<LoadedPointer>, CmpError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|source| CmpError::ReadPointer { path: path.to_owned(), source })
    };
    if let Some(name) = named {
        let path = dir.join(name);
        return Ok(vec![pointer::load(name, &read(&path)?, root)?]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|source| CmpError::ReadPointer { path: dir.to_owned(), source })?;
    let mut candidates: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    candidates.sort();
    let mut found: Vec<LoadedPointer> = Vec::new();
    for path in candidates {
        let text = read(&path)?;
        if !pointer::declares_pointer(&text) {
            continue;
        }
        let shown = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        let loaded = pointer::load(&shown, &text, root)?;
        if let Some(first) = found.iter().find(|p| p.location.project == loaded.location.project) {
            return Err(CmpError::DuplicatePointer {
                first: first.path.clone(),
                second: loaded.path.clone(),
                image: loaded.location.project.to_string(),
            });
        }
        found.push(loaded);
    }
    if found.is_empty() {
        return Err(CmpError::NoPointer { dir: dir.to_owned() });
    }
    Ok(found)
}
