//! Writing directories so that a failure leaves nothing half-written.

use std::path::Path;

use std::io;
use std::path::PathBuf;

/// A local file or directory that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Reading or writing a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// An output directory that is already in use.
    #[error("{} already exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// Writing stdout failed (a closed pipe is not an error).
    #[error("writing to stdout: {0}")]
    Stdout(io::Error),
}

impl LocalError {
    /// `source` on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LocalError::Io { path: path.into(), source }
    }
}

/// Creates `dir` holding `files` (relative paths). The files are written into a temporary
/// sibling directory that is renamed into place at the end. `dir` must not exist, or be empty.
pub fn write_new_dir<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), LocalError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map_err(|e| LocalError::io(dir, e))?.next().is_none();
        if !empty {
            return Err(LocalError::NotEmpty(dir.to_owned()));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| LocalError::io(&parent, e))?;
    let temp = tempfile::Builder::new()
        .prefix(".forge-tmp-")
        .tempdir_in(&parent)
        .map_err(|e| LocalError::io(&parent, e))?;
    for (path, content) in files {
        let target = temp.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| LocalError::io(parent, e))?;
        }
        std::fs::write(&target, content).map_err(|e| LocalError::io(&target, e))?;
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| LocalError::io(dir, e))?;
    }
    let temp = temp.keep();
    std::fs::rename(&temp, dir).map_err(|e| LocalError::io(dir, e))?;
    // tempdir creates 0700; the result is an ordinary directory.
    set_mode(dir, 0o755)
}

fn set_mode(dir: &Path, mode: u32) -> Result<(), LocalError> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LocalError::io(dir, e))
}
