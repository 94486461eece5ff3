//! Writing directories so that a failure leaves nothing half-written.

use std::path::Path;

use crate::error::{Error, exit};

/// Creates `dir` holding `files` (relative paths). The files are written into a temporary
/// sibling directory that is renamed into place at the end. `dir` must not exist, or be empty.
pub fn write_new_dir<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), Error> {
    let io = |path: &Path, e: std::io::Error| {
        Error::new(exit::STORE, format!("{}: {e}", path.display()))
    };
    if dir.exists() {
        let empty =
            fs_err::read_dir(dir).map_err(|e| Error::input(e.to_string()))?.next().is_none();
        if !empty {
            return Err(Error::input(format!("{} already exists and is not empty", dir.display()))
                .with_hint("choose a new directory, or remove the old one first"));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
    let temp = tempfile::Builder::new()
        .prefix(".forge-tmp-")
        .tempdir_in(&parent)
        .map_err(|e| io(&parent, e))?;
    for (path, content) in files {
        let target = temp.path().join(path);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
        }
        fs_err::write(&target, content).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
    }
    if dir.exists() {
        fs_err::remove_dir(dir).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
    }
    let temp = temp.keep();
    fs_err::rename(&temp, dir).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
    // tempdir creates 0700; the result is an ordinary directory.
    set_mode(dir, 0o755)
}

fn set_mode(dir: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::new(exit::STORE, e.to_string()))
}
