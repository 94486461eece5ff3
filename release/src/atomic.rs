//! Writing a file so that readers, and a crash at any instant, see the old content or the new
//! content, never part of it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to a synced temp file beside `path` (mode 0644, like any file) and renames
/// it into place. The parent directory must exist.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write(path, &[bytes], true)
}

/// Like [`write_file`], for a cache: the parts are written one after the other and nothing is
/// synced. A reader must verify what it reads (a crash can leave a renamed file whose data
/// never reached the disk), and treat a bad file as missing.
pub fn write_cache_file(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    write(path, parts, false)
}

fn write(path: &Path, parts: &[&[u8]], sync: bool) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent)?;
    for part in parts {
        temp.write_all(part)?;
    }
    // tempfile creates 0600; what is written here is ordinary content (blobs, pointers).
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    if sync {
        temp.as_file().sync_all()?;
    }
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        super::write_file(&path, b"one").expect("write");
        super::write_file(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
        super::write_cache_file(&path, &[b"thr", b"ee"]).expect("cache write");
        assert_eq!(std::fs::read(&path).expect("read"), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
