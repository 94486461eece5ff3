//! A rendered output kept in the cache, written out segment by segment, each checked against
//! its seal before it is written.
//!
//! A warm generate writes megabytes that are already on disk. Reading them whole into memory
//! first would cost more than everything else it does (fresh pages are slow to come by, in
//! virtual machines above all), so each segment is read into a buffer that is reused, checked
//! against its tag in the seal ([`crate::seal`]) and only then written. A segment that does not
//! match stops the output with an error and the entry is removed (the next generate renders
//! the release again); Argo CD discards the output of a generate that fails, so the segments
//! written before it are never applied either. Past a few segments two threads share the
//! reading and checking: the second takes the odd segments and hands them over, checked, in
//! order.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::seal::{Opener, SEGMENT};

/// From this many segments on, a second thread reads and checks half of them. (Below, starting
/// it costs more than it saves: measured.)
const SHARED_FROM: usize = 4;

/// An open cache file whose seal was checked: `len` bytes of sealed output from byte `start`.
#[derive(Debug)]
pub struct CachedStream {
    file: File,
    path: PathBuf,
    start: u64,
    len: u64,
    opener: Opener,
}

/// Why a cached stream could not be written.
#[derive(Debug)]
pub enum StreamError {
    /// Writing the output failed.
    Write(io::Error),
    /// The file does not hold what was sealed (it was altered, or damaged on disk).
    Damaged {
        /// The cache file, now removed.
        path: PathBuf,
    },
}

/// Where a sealed stream lies in its file and what opens it.
#[derive(Debug)]
pub struct Sealed {
    /// Offset of the output in the file.
    pub start: u64,
    /// Its length.
    pub len: u64,
    /// What opens its segments.
    pub opener: Opener,
}

impl CachedStream {
    /// The stream `sealed` describes, in `file` (at `path`).
    pub fn new(file: File, path: PathBuf, sealed: Sealed) -> Self {
        let Sealed { start, len, opener } = sealed;
        CachedStream { file, path, start, len, opener }
    }

    /// Its length in bytes, `---` lines included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the stream to `out`, each segment checked before it is written.
    pub fn write_checked(&self, out: &mut dyn Write) -> Result<(), StreamError> {
        let count = self.len.div_ceil(SEGMENT as u64) as usize;
        if count < SHARED_FROM {
            let mut buffer = Vec::new();
            for index in 0..count {
                self.read_checked(index, &mut buffer)?;
                out.write_all(&buffer).map_err(StreamError::Write)?;
            }
            return Ok(());
        }
        std::thread::scope(|scope| {
            let (to_writer, checked) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
            let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
            // The helper's buffers come from this thread: a thread's first allocation sets up
            // an arena of its own, which costs more than a warm generate's hashing of a segment.
            for _ in 0..3 {
                let _ = give_back.send(Vec::with_capacity(SEGMENT));
            }
            let helper = scope.spawn(move || {
                for index in (1..count).step_by(2) {
                    let mut buffer = returned.recv().unwrap_or_default();
                    self.read_checked(index, &mut buffer)?;
                    if to_writer.send(buffer).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            let mut own = Vec::new();
            let mut written = Ok(());
            for index in 0..count {
                let buffer = if index % 2 == 0 {
                    if let Err(e) = self.read_checked(index, &mut own) {
                        written = Err(e);
                        break;
                    }
                    &own
                } else {
                    match checked.recv() {
                        Ok(buffer) => {
                            // Hand the previous one back, and keep this one until written.
                            let _ = give_back.send(std::mem::replace(&mut own, buffer));
                            &own
                        }
                        // The helper stopped: its error says why.
                        Err(_) => break,
                    }
                };
                if let Err(e) = out.write_all(buffer) {
                    written = Err(StreamError::Write(e));
                    break;
                }
            }
            // The helper, if still waiting for a buffer or to hand one over, stops.
            drop((checked, give_back));
            let helped = helper.join().unwrap_or_else(|_| Err(self.damaged()));
            written.and(helped)
        })
    }

    /// Reads segment `index` into `buffer` and opens it: its bytes as they were sealed.
    fn read_checked(&self, index: usize, buffer: &mut Vec<u8>) -> Result<(), StreamError> {
        let offset = (index * SEGMENT) as u64;
        let size = SEGMENT.min((self.len - offset) as usize);
        buffer.resize(size, 0);
        self.file.read_exact_at(buffer, self.start + offset).map_err(|_| self.damaged())?;
        if self.opener.open_segment(index, buffer) { Ok(()) } else { Err(self.damaged()) }
    }

    fn damaged(&self) -> StreamError {
        let _ = std::fs::remove_file(&self.path);
        StreamError::Damaged { path: self.path.clone() }
    }
}

#[cfg(test)]
mod tests {
    use forge_release::Digest;

    use super::*;
    use crate::seal::SealKey;

    /// Writes `stream` sealed (after a 7-byte header) at `path`, damaged at `damage` if given,
    /// and writes it out again.
    fn round_trip(path: &std::path::Path, stream: &[u8], damage: Option<usize>) -> Option<Vec<u8>> {
        let key = SealKey::for_tests(1);
        let release = Digest::of(b"release");
        let (seal, sealed) = key.seal(&release, ("c", "n"), &[stream]).expect("seal");
        assert_eq!(sealed.len(), stream.len());
        assert_ne!(sealed, stream, "what the cache holds is not the output");
        let mut bytes = b"header\n".to_vec();
        bytes.extend_from_slice(&sealed);
        if let Some(at) = damage {
            bytes[7 + at] ^= 1;
        }
        std::fs::write(path, &bytes).expect("write");
        let (fields, opener) = key.open(&release, seal).expect("opens");
        let sealed = Sealed { start: 7, len: fields.len, opener };
        let cached = CachedStream::new(File::open(path).expect("open"), path.into(), sealed);
        let mut out = Vec::new();
        cached.write_checked(&mut out).ok().map(|()| out)
    }

    #[test]
    fn a_stream_is_written_whole_or_its_entry_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("stream");
        // One segment and a part (one thread), and enough for two threads to share.
        for len in [SEGMENT + 5, SHARED_FROM * SEGMENT + SEGMENT / 2] {
            let stream: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            assert_eq!(round_trip(&path, &stream, None).as_deref(), Some(&stream[..]));
            // Damage in each segment, even and odd (the helper's), first and last byte.
            let segments = len.div_ceil(SEGMENT);
            for at in (0..segments).flat_map(|s| [s * SEGMENT, ((s + 1) * SEGMENT).min(len) - 1]) {
                assert!(round_trip(&path, &stream, Some(at)).is_none(), "damage at {at}");
                assert!(!path.exists(), "a damaged entry is removed");
            }
        }
    }
}
