//! A rendered output kept in the cache, written out while it is checked.
//!
//! A warm generate writes a few megabytes that are already on disk. Reading them whole into
//! memory first would cost more than everything else a warm generate does (fresh pages are
//! slow to come by, in virtual machines above all), so the stream goes out through one small
//! buffer, each document checked against the digest the release's metadata records for its
//! file as it passes. A document that does not match stops the output with an error (the
//! entry is removed, so the next generate fetches the release again): Argo CD discards the
//! output of a generate that fails, so what went out before the error is never applied. The
//! usual damage (a torn or truncated file, a wrong header) is found before a byte is written.
//! Past a few megabytes hashing is most of the work, and two threads share it: each chunk,
//! read once, is written and its documents hashed, half of them on a second thread. (Below
//! that, handing chunks over costs more than it saves: measured.)

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use forge_release::Digest;
use forge_release::digest::HashingWriter;

use crate::emit::SEPARATOR;

/// Bytes read and written at a time.
const CHUNK: usize = 64 << 10;

/// From this length on, a second thread hashes half the documents.
const SHARED_FROM: u64 = 8 << 20;

/// Bytes read at a time when two threads hash: few handovers, buffers reused.
const SHARED_CHUNK: usize = 1 << 20;

/// An open cache file whose layout was checked: `documents` (size, digest), each after a
/// `---` line, from byte `start` to the end of the file.
#[derive(Debug)]
pub struct CachedStream {
    file: File,
    path: PathBuf,
    start: u64,
    documents: Vec<(usize, Digest)>,
}

/// Why a cached stream could not be written.
#[derive(Debug)]
pub enum StreamError {
    /// Writing the output failed.
    Write(io::Error),
    /// The file does not hold what the release says (it was altered, or damaged on disk).
    Damaged {
        /// The cache file, now removed.
        path: PathBuf,
    },
}

impl CachedStream {
    /// A stream in `file` (at `path`) from byte `start`: `documents` as (size, digest).
    pub fn new(file: File, path: PathBuf, start: u64, documents: Vec<(usize, Digest)>) -> Self {
        CachedStream { file, path, start, documents }
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Its length in bytes, `---` lines included.
    pub fn len(&self) -> u64 {
        self.documents.iter().map(|(size, _)| (SEPARATOR.len() + size) as u64).sum()
    }

    /// Whether it holds no documents.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Writes the stream to `out`, checking every byte on the way.
    pub fn write_checked(&self, out: &mut dyn Write) -> Result<(), StreamError> {
        if self.len() >= SHARED_FROM {
            return self.write_checked_on_two_threads(out);
        }
        let mut checker = Checker::new(regions(&self.documents), 0, 1);
        let len = self.len();
        let mut buffer = vec![0; CHUNK];
        let mut offset = 0;
        while offset < len {
            let want = CHUNK.min((len - offset) as usize);
            let read = match self.file.read_at(&mut buffer[..want], self.start + offset) {
                Ok(0) | Err(_) => return Err(self.damaged()),
                Ok(read) => read,
            };
            if !checker.feed(offset, &buffer[..read]) {
                return Err(self.damaged());
            }
            out.write_all(&buffer[..read]).map_err(StreamError::Write)?;
            offset += read as u64;
        }
        if checker.finished() { Ok(()) } else { Err(self.damaged()) }
    }

    /// [`Self::write_checked`] with the hashing shared: the helper gets each chunk after it
    /// is read (the same bytes this thread writes) and hashes the odd documents.
    fn write_checked_on_two_threads(&self, out: &mut dyn Write) -> Result<(), StreamError> {
        let regions = regions(&self.documents);
        let len = self.len();
        let (to_helper, chunks) = std::sync::mpsc::sync_channel::<(u64, Arc<Vec<u8>>)>(4);
        let (give_back, returned) = std::sync::mpsc::channel::<Arc<Vec<u8>>>();
        std::thread::scope(|scope| {
            let helper_regions = regions.clone();
            let helper = scope.spawn(move || {
                let mut checker = Checker::new(helper_regions, 1, 2);
                let mut ok = true;
                for (offset, chunk) in chunks {
                    ok = ok && checker.feed(offset, &chunk);
                    let _ = give_back.send(chunk);
                }
                ok && checker.finished()
            });
            let mut checker = Checker::new(regions, 0, 2);
            let mut spare: Vec<Vec<u8>> = Vec::new();
            let mut offset = 0;
            let mut result = Ok(());
            while offset < len {
                // A buffer the helper is done with, else a new one (a few in all).
                spare.extend(returned.try_iter().filter_map(|b| Arc::try_unwrap(b).ok()));
                let mut buffer = spare.pop().unwrap_or_else(|| vec![0; SHARED_CHUNK]);
                let want = SHARED_CHUNK.min((len - offset) as usize);
                buffer.truncate(want);
                buffer.resize(want, 0);
                match self.file.read_at(&mut buffer, self.start + offset) {
                    Ok(read) if read > 0 => buffer.truncate(read),
                    _ => {
                        result = Err(self.damaged());
                        break;
                    }
                }
                let chunk = Arc::new(buffer);
                if to_helper.send((offset, Arc::clone(&chunk))).is_err() {
                    result = Err(self.damaged());
                    break;
                }
                if !checker.feed(offset, &chunk) {
                    result = Err(self.damaged());
                    break;
                }
                if let Err(e) = out.write_all(&chunk) {
                    result = Err(StreamError::Write(e));
                    break;
                }
                offset += chunk.len() as u64;
            }
            drop(to_helper);
            let helper_ok = helper.join().unwrap_or(false);
            result?;
            if helper_ok && checker.finished() { Ok(()) } else { Err(self.damaged()) }
        })
    }

    fn damaged(&self) -> StreamError {
        let _ = std::fs::remove_file(&self.path);
        StreamError::Damaged { path: self.path.clone() }
    }
}

/// Where a document lies in the stream (offsets from its start): its `---` line from `start`,
/// its text from `body` to `end`, and the digest the text must have.
#[derive(Debug, Clone)]
struct Region {
    start: u64,
    body: u64,
    end: u64,
    digest: Digest,
}

fn regions(documents: &[(usize, Digest)]) -> Vec<Region> {
    let mut offset = 0;
    documents
        .iter()
        .map(|(size, digest)| {
            let start = offset;
            let body = start + SEPARATOR.len() as u64;
            offset = body + *size as u64;
            Region { start, body, end: offset, digest: digest.clone() }
        })
        .collect()
}

/// Checks the regions of a stream fed in order, in chunks of any size: each `---` line byte
/// for byte, each document by its digest once its last byte has passed. One of `shares`
/// checkers (`share` is its number) hashes every `shares`-th document; the first also checks
/// the `---` lines.
struct Checker {
    regions: Vec<Region>,
    next: usize,
    hasher: HashingWriter<io::Sink>,
    share: usize,
    shares: usize,
}

impl Checker {
    fn new(regions: Vec<Region>, share: usize, shares: usize) -> Self {
        Checker { regions, next: 0, hasher: HashingWriter::new(io::sink()), share, shares }
    }

    /// Takes the chunk at `offset`; false as soon as it departs from what is expected.
    fn feed(&mut self, offset: u64, chunk: &[u8]) -> bool {
        let end = offset + chunk.len() as u64;
        let part = |from: u64, to: u64| &chunk[(from - offset) as usize..(to - offset) as usize];
        while let Some(region) = self.regions.get(self.next) {
            if region.start >= end && region.end > region.start {
                break;
            }
            let mine = self.next % self.shares == self.share;
            let (from, to) = (region.start.max(offset), region.body.min(end));
            if from < to && self.share == 0 {
                let expected =
                    &SEPARATOR[(from - region.start) as usize..(to - region.start) as usize];
                if part(from, to) != expected {
                    return false;
                }
            }
            let (from, to) = (region.body.max(offset), region.end.min(end));
            if from < to && mine {
                let _ = self.hasher.write_all(part(from, to));
            }
            if region.end > end {
                break;
            }
            if mine {
                let hasher = std::mem::replace(&mut self.hasher, HashingWriter::new(io::sink()));
                if hasher.finish().1 != region.digest {
                    return false;
                }
            }
            self.next += 1;
        }
        true
    }

    fn finished(&self) -> bool {
        self.next == self.regions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(texts: &[&str]) -> Vec<(usize, Digest)> {
        texts.iter().map(|t| (t.len(), Digest::of(t.as_bytes()))).collect()
    }

    /// Whether `stream` passes, fed in pieces of `piece` bytes.
    fn check(expected: &[(usize, Digest)], stream: &[u8], piece: usize) -> bool {
        let regions = regions(expected);
        let total = regions.last().map_or(0, |r| r.end);
        if stream.len() as u64 != total {
            return false;
        }
        let mut checker = Checker::new(regions, 0, 1);
        let mut offset = 0;
        for chunk in stream.chunks(piece.max(1)) {
            if !checker.feed(offset, chunk) {
                return false;
            }
            offset += chunk.len() as u64;
        }
        checker.finished()
    }

    #[test]
    fn a_stream_is_accepted_in_pieces_of_any_size() {
        let expected = documents(&["a: 1\n", "b: 2\nc: 3\n", ""]);
        let stream = b"---\na: 1\n---\nb: 2\nc: 3\n---\n";
        for piece in 1..stream.len() + 1 {
            assert!(check(&expected, stream, piece), "pieces of {piece}");
        }
    }

    #[test]
    fn altered_missing_or_extra_bytes_are_refused() {
        let expected = documents(&["a: 1\n", "b: 2\n"]);
        for stream in [
            &b"---\na: 1\n---\nb: 3\n"[..],
            b"---\na: 1\n---\nb: 2",
            b"---\na: 1\n---\nb: 2\n---\n",
            b"--+\na: 1\n---\nb: 2\n",
            b"---\na: 1\n---+b: 2\n",
            b"---\na: 1\n",
        ] {
            for piece in [1, 3, 64] {
                assert!(!check(&expected, stream, piece), "{:?}", String::from_utf8_lossy(stream));
            }
        }
    }

    #[test]
    fn a_stream_of_many_chunks_is_written_whole_or_its_entry_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let texts: Vec<String> =
            (0..64).map(|i| format!("n: {i}\n{}\n", "x".repeat(40_000))).collect();
        check_written_whole_or_removed(&dir, &texts, 10 * CHUNK);
        // Large enough for two threads to share the hashing: a change in a document either
        // thread hashes is found.
        let texts: Vec<String> =
            (0..300).map(|i| format!("n: {i}\n{}\n", "x".repeat(40_000))).collect();
        check_written_whole_or_removed(&dir, &texts, SHARED_FROM as usize);
    }

    fn check_written_whole_or_removed(dir: &tempfile::TempDir, texts: &[String], least: usize) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let stream: String = texts.iter().map(|t| format!("---\n{t}")).collect();
        assert!(stream.len() > least);
        let path = dir.path().join("stream");
        let second = texts[0].len() + 4 + 10;
        for (damage, ok) in [
            (None, true),
            (Some(10), false),
            (Some(second), false),
            (Some(stream.len() - 2), false),
        ] {
            let mut bytes = b"header\n".to_vec();
            bytes.extend_from_slice(stream.as_bytes());
            if let Some(at) = damage {
                bytes[7 + at] ^= 1;
            }
            std::fs::write(&path, &bytes).expect("write");
            let file = File::open(&path).expect("open");
            let cached = CachedStream::new(file, path.clone(), 7, documents(&refs));
            let mut out = Vec::new();
            let result = cached.write_checked(&mut out);
            assert_eq!(result.is_ok(), ok, "damage at {damage:?}");
            if ok {
                assert_eq!(out, stream.as_bytes());
            } else {
                assert!(!path.exists(), "a damaged entry is removed");
            }
        }
    }
}
