//! Reading local files that someone else may have written (a cache volume, a layout in a
//! checkout): regular files only, and never more than a bound, so that a symbolic link to
//! `/dev/zero` or a huge file cannot exhaust memory.

use std::io::{self, Read};
use std::path::Path;

/// Reads the regular file at `path` (symbolic links followed), refusing one larger than
/// `max` bytes (`FileTooLarge`) or that is not a regular file (`InvalidInput`).
pub fn read_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open(path)?;
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

/// Opens `path` for reading without waiting: opening a FIFO someone planted would otherwise
/// block until a writer comes (a regular file reads as ever).
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblocking = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    std::fs::OpenOptions::new().read(true).custom_flags(nonblocking).open(path)
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
        // A FIFO is refused at once, not waited on for a writer.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read_file(&fifo, 1 << 20).map(|_| ())));
        let read = result.recv_timeout(std::time::Duration::from_secs(5)).expect("not blocked");
        assert_eq!(read.expect_err("fifo").kind(), io::ErrorKind::InvalidInput);
    }
}
