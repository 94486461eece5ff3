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

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use forge_release::Digest;
use forge_release::digest::HashingWriter;

use crate::emit::SEPARATOR;

/// Bytes read and written at a time.
const CHUNK: usize = 128 << 10;

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
        let mut checker = Checker::new(&self.documents);
        let mut buffer = vec![0; CHUNK];
        let (mut offset, end) = (self.start, self.start + self.len());
        while offset < end {
            let want = CHUNK.min((end - offset) as usize);
            let read = match self.file.read_at(&mut buffer[..want], offset) {
                Ok(0) | Err(_) => return Err(self.damaged()),
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            if !checker.feed(chunk) {
                return Err(self.damaged());
            }
            out.write_all(chunk).map_err(StreamError::Write)?;
            offset += read as u64;
        }
        if checker.finished() { Ok(()) } else { Err(self.damaged()) }
    }

    fn damaged(&self) -> StreamError {
        let _ = std::fs::remove_file(&self.path);
        StreamError::Damaged { path: self.path.clone() }
    }
}

/// Follows a stream of `---` lines and documents fed in arbitrary pieces, hashing each
/// document and comparing it with its expected digest as it ends.
struct Checker<'a> {
    documents: &'a [(usize, Digest)],
    index: usize,
    /// Bytes of the current `---` line seen so far.
    separator: usize,
    /// Bytes of the current document still to come.
    remaining: usize,
    hasher: HashingWriter<io::Sink>,
}

impl<'a> Checker<'a> {
    fn new(documents: &'a [(usize, Digest)]) -> Self {
        Checker {
            documents,
            index: 0,
            separator: 0,
            remaining: 0,
            hasher: HashingWriter::new(io::sink()),
        }
    }

    /// Takes the next piece of the stream; false as soon as it departs from what is expected.
    fn feed(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            let Some((size, _)) = self.documents.get(self.index) else { return false };
            if self.separator < SEPARATOR.len() {
                let n = (SEPARATOR.len() - self.separator).min(chunk.len());
                if chunk[..n] != SEPARATOR[self.separator..self.separator + n] {
                    return false;
                }
                self.separator += n;
                chunk = &chunk[n..];
                if self.separator == SEPARATOR.len() {
                    self.remaining = *size;
                    if self.remaining == 0 && !self.end_document() {
                        return false;
                    }
                }
                continue;
            }
            let n = self.remaining.min(chunk.len());
            let _ = self.hasher.write_all(&chunk[..n]);
            self.remaining -= n;
            chunk = &chunk[n..];
            if self.remaining == 0 && !self.end_document() {
                return false;
            }
        }
        true
    }

    fn end_document(&mut self) -> bool {
        let hasher = std::mem::replace(&mut self.hasher, HashingWriter::new(io::sink()));
        let (_, digest, _) = hasher.finish();
        let matches = digest == self.documents[self.index].1;
        self.index += 1;
        self.separator = 0;
        matches
    }

    fn finished(&self) -> bool {
        self.index == self.documents.len() && self.separator == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(texts: &[&str]) -> Vec<(usize, Digest)> {
        texts.iter().map(|t| (t.len(), Digest::of(t.as_bytes()))).collect()
    }

    fn check(expected: &[(usize, Digest)], stream: &[u8], piece: usize) -> bool {
        let mut checker = Checker::new(expected);
        stream.chunks(piece.max(1)).all(|chunk| checker.feed(chunk)) && checker.finished()
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
            b"---\na: 1\n",
        ] {
            for piece in [1, 3, 64] {
                assert!(!check(&expected, stream, piece), "{:?}", String::from_utf8_lossy(stream));
            }
        }
    }
}
