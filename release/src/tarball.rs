//! Reading a resources layer safely: size and count limits, and nothing but plain,
//! well-named, unique files.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Component, Path};

use flate2::read::GzDecoder;

use crate::digest::{Digest, HashingReader};
use crate::error::FormatError;

/// Bounds on what a release may contain; a release over them is refused, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest compressed resources layer, in bytes.
    pub max_layer_bytes: u64,
    /// Largest total uncompressed tar, in bytes.
    pub max_unpacked_bytes: u64,
    /// Most files.
    pub max_files: u64,
    /// Largest config blob.
    pub max_config_bytes: u64,
    /// Largest metadata blob (a 20,000-object release's is about 6 MB).
    pub max_metadata_bytes: u64,
}

impl Default for Limits {
    /// Generous for real releases (Argo CD caps one generate's output at 100 MiB) while
    /// stopping decompression bombs early.
    fn default() -> Self {
        Limits {
            max_layer_bytes: 64 << 20,
            max_unpacked_bytes: 256 << 20,
            max_files: 20_000,
            max_config_bytes: 1 << 20,
            max_metadata_bytes: 64 << 20,
        }
    }
}

/// A file read from the resources layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    /// Path inside the tarball.
    pub path: String,
    /// Content.
    pub content: Vec<u8>,
    /// Digest of the content.
    pub sha256: Digest,
}

/// The files of a resources layer and the digest of the uncompressed tar.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Files in tarball order.
    pub files: Vec<TarFile>,
    /// Digest of the uncompressed tar stream.
    pub tar_sha256: Digest,
}

/// Decompresses and reads `layer`, enforcing `limits` and the safety rules.
pub fn unpack(layer: &[u8], limits: &Limits) -> Result<Unpacked, FormatError> {
    unpack_inspecting(layer, limits, |_| ()).map(|(unpacked, _)| unpacked)
}

/// Like [`unpack`], also handing each file to `inspect` as soon as it is read; returns what
/// `inspect` made of each file, in file order.
///
/// Two threads share the work: a spawned one inflates the layer and hashes the tar stream,
/// the caller's reads the tar, hashes each file and runs `inspect`. On a cold
/// `forge-cmp generate` these halves take about as long as each other.
pub fn unpack_inspecting<R>(
    layer: &[u8],
    limits: &Limits,
    inspect: impl FnMut(&TarFile) -> R,
) -> Result<(Unpacked, Vec<R>), FormatError> {
    if layer.len() as u64 > limits.max_layer_bytes {
        return Err(FormatError::LimitExceeded {
            what: "compressed bytes",
            limit: limits.max_layer_bytes,
        });
    }
    const CHUNK: usize = 256 << 10;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    std::thread::scope(|scope| {
        let inflater = scope.spawn(move || -> io::Result<(Digest, u64)> {
            // One byte over the limit is enough to know it was exceeded.
            let bounded = GzDecoder::new(layer).take(limits.max_unpacked_bytes + 1);
            let mut reader = HashingReader::new(bounded);
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                let read = (&mut reader).take(CHUNK as u64).read_to_end(&mut chunk)?;
                // A closed channel means the tar reader has failed; its error is reported.
                if read == 0 || sender.send(chunk).is_err() {
                    break;
                }
            }
            Ok(reader.finish())
        });
        let read = read_tar(ChannelReader { receiver, chunk: Vec::new(), at: 0 }, limits, inspect);
        // The inflater's failure explains a truncated tar, so it is reported first.
        match inflater.join().expect("inflating does not panic") {
            Ok((_, total)) if total > limits.max_unpacked_bytes => Err(over_size(limits)),
            Err(e) => Err(FormatError::CorruptTarball(e)),
            Ok((tar_sha256, _)) => {
                read.map(|(files, inspected)| (Unpacked { files, tar_sha256 }, inspected))
            }
        }
    })
}

/// The inflated stream, chunk by chunk as the inflater sends it.
struct ChannelReader {
    receiver: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                // The inflater is done (or failed, which it reports itself).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads the files of an inflated tar stream, checking every entry.
fn read_tar<R>(
    stream: ChannelReader,
    limits: &Limits,
    mut inspect: impl FnMut(&TarFile) -> R,
) -> Result<(Vec<TarFile>, Vec<R>), FormatError> {
    let mut archive = tar::Archive::new(stream);
    let mut files = Vec::new();
    let mut inspected = Vec::new();
    let mut seen = BTreeSet::new();
    let mut declared: u64 = 0;
    for entry in archive.entries().map_err(FormatError::CorruptTarball)? {
        let mut entry = entry.map_err(FormatError::CorruptTarball)?;
        if files.len() as u64 >= limits.max_files {
            return Err(FormatError::LimitExceeded { what: "files", limit: limits.max_files });
        }
        let path = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            FormatError::UnsafeTarball {
                path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                reason: "path is not UTF-8".into(),
            }
        })?;
        check_entry(&path, entry.header().entry_type())?;
        if !seen.insert(path.clone()) {
            return Err(FormatError::UnsafeTarball { path, reason: "duplicate path".into() });
        }
        // Refuse by declared size before inflating anything; the inflater's bound is the
        // backstop for headers that lie.
        declared = declared.saturating_add(entry.size());
        if declared > limits.max_unpacked_bytes {
            return Err(over_size(limits));
        }
        let mut content =
            Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 20));
        entry.read_to_end(&mut content).map_err(FormatError::CorruptTarball)?;
        let file = TarFile { path, sha256: Digest::of(&content), content };
        inspected.push(inspect(&file));
        files.push(file);
    }
    // Drain the end-of-archive padding so the inflater hashes the whole tar stream.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(FormatError::CorruptTarball)?;
    Ok((files, inspected))
}

fn over_size(limits: &Limits) -> FormatError {
    FormatError::LimitExceeded { what: "uncompressed bytes", limit: limits.max_unpacked_bytes }
}

fn check_entry(path: &str, kind: tar::EntryType) -> Result<(), FormatError> {
    let unsafe_entry = |reason: &str| {
        Err(FormatError::UnsafeTarball { path: path.to_owned(), reason: reason.into() })
    };
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => {}
        tar::EntryType::Symlink => return unsafe_entry("symbolic links are not allowed"),
        tar::EntryType::Link => return unsafe_entry("hard links are not allowed"),
        tar::EntryType::Char | tar::EntryType::Block => {
            return unsafe_entry("device files are not allowed");
        }
        tar::EntryType::Fifo => return unsafe_entry("FIFOs are not allowed"),
        tar::EntryType::Directory => return unsafe_entry("directory entries are not allowed"),
        _ => return unsafe_entry("only regular files are allowed"),
    }
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return unsafe_entry("path must be relative, with `/` separators");
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return unsafe_entry("path contains `..`"),
            _ => return unsafe_entry("path must be a plain relative path"),
        }
    }
    if path.split('/').any(|part| part.is_empty() || part == ".") {
        return unsafe_entry("path has empty or `.` components");
    }
    if !path.ends_with(".yaml") {
        return unsafe_entry("only .yaml files are allowed");
    }
    Ok(())
}
