//! Writing a file so that readers, and a crash at any instant, see the old content or the new
//! content, never part of it.

use std::io::{IoSlice, Write};
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

/// Like [`write_cache_file`], for content that `body` writes (the file is positioned after
/// `header_len` bytes) and a header it returns, of that length, that goes before it: a seal of
/// the content, say, made while it is written.
pub fn write_cache_file_with_header(
    path: &Path,
    header_len: usize,
    body: impl FnOnce(&mut std::fs::File) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileExt;
    let mut temp = temp_beside(path)?;
    temp.as_file_mut().seek(SeekFrom::Start(header_len as u64))?;
    let header = body(temp.as_file_mut())?;
    if header.len() != header_len {
        return Err(std::io::Error::other(format!(
            "header of {} bytes, {header_len} reserved",
            header.len()
        )));
    }
    temp.as_file().write_all_at(&header, 0)?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn temp_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent)
}

fn write_parts(file: &mut std::fs::File, parts: &[&[u8]]) -> std::io::Result<()> {
    // Gathered writes: a rendered output has two parts per object, hundreds of syscalls apart.
    let mut slices: Vec<IoSlice> = parts.iter().map(|part| IoSlice::new(part)).collect();
    let mut rest = slices.as_mut_slice();
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut rest, written),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write(path: &Path, parts: &[&[u8]], sync: bool) -> std::io::Result<()> {
    let mut temp = temp_beside(path)?;
    write_parts(temp.as_file_mut(), parts)?;
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
        super::write_cache_file(&path, &[b"thr", b"", b"ee"]).expect("cache write");
        assert_eq!(std::fs::read(&path).expect("read"), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
        // More parts than one gathered write takes (IOV_MAX is 1024 on Linux).
        let parts: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_string().into_bytes()).collect();
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        super::write_cache_file(&path, &slices).expect("many parts");
        assert_eq!(std::fs::read(&path).expect("read"), parts.concat());
        // A header made while the content is written, of the length reserved for it.
        let body = |file: &mut std::fs::File| {
            std::io::Write::write_all(file, b"body").map(|()| b"head\n".to_vec())
        };
        super::write_cache_file_with_header(&path, 5, body).expect("header");
        assert_eq!(std::fs::read(&path).expect("read"), b"head\nbody");
        let refused = super::write_cache_file_with_header(&path, 4, body);
        assert!(refused.is_err(), "a header of another length is refused");
        assert_eq!(std::fs::read(&path).expect("read"), b"head\nbody", "the file is untouched");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1, "no temp file left");
    }
}
