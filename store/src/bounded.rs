//! Reading local files that someone else may have written (a cache volume, a layout in a
//! checkout): regular files only, and never more than a bound, so that a symbolic link to
//! `/dev/zero` or a huge file cannot exhaust memory.

use std::io::{self, Read};
use std::path::Path;

/// Reads the regular file at `path` (symbolic links followed), refusing one larger than
/// `max` bytes (`FileTooLarge`) or that is not a regular file (`InvalidInput`).
pub fn read_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    // The length may change under us: the read itself is bounded too.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, format!("larger than the {max} bytes accepted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_special_files_are_refused() {
        let refused = read_file(Path::new("/dev/zero"), 1 << 20).expect_err("/dev/zero");
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        let dir = tempfile::tempdir().expect("dir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 100]).expect("write");
        assert_eq!(read_file(&big, 99).expect_err("big").kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(read_file(&big, 100).expect("fits").len(), 100);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert_eq!(
            read_file(&link, 1 << 20).expect_err("link").kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
