//! Reading a resources layer safely: size and count limits, and nothing but plain,
//! well-named, unique files.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use flate2::bufread::GzDecoder;

use crate::digest::Digest;
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

/// The files of a resources layer.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Files in tarball order.
    pub files: Vec<TarFile>,
}

/// Decompresses and reads `layer`, enforcing `limits` and the safety rules.
pub fn unpack(layer: &[u8], limits: &Limits) -> Result<Unpacked, FormatError> {
    unpack_inspecting(layer, limits, |_| ()).map(|(unpacked, _)| unpacked)
}

/// Like [`unpack`], also handing each file to `inspect` as soon as it is read; returns what
/// `inspect` made of each file, in file order.
///
/// Two threads share the work: a spawned one inflates the layer, reads its entries and hashes
/// about a third of the bytes; the caller's hashes the other files and runs `inspect` (which
/// need not be `Send`) on each. On a cold `forge-cmp generate` (where `inspect` reads each
/// file line by line) these shares take about as long as each other. Files are inflated
/// straight into buffers of their size. The tar stream itself is not hashed: the layer was
/// checked against its digest, and inflating it gives one stream only.
pub fn unpack_inspecting<R>(
    layer: &[u8],
    limits: &Limits,
    inspect: impl FnMut(&TarFile) -> R,
) -> Result<(Unpacked, Vec<R>), FormatError> {
    unpack_until(layer, limits, &AtomicBool::new(false), inspect)
}

/// [`unpack_inspecting`] that gives up at the next file once `stop` is set (by a caller that
/// no longer wants the files: the release was refused on other grounds).
pub fn unpack_until<R>(
    layer: &[u8],
    limits: &Limits,
    stop: &AtomicBool,
    mut inspect: impl FnMut(&TarFile) -> R,
) -> Result<(Unpacked, Vec<R>), FormatError> {
    if layer.len() as u64 > limits.max_layer_bytes {
        return Err(FormatError::LimitExceeded {
            what: "compressed bytes",
            limit: limits.max_layer_bytes,
        });
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel::<ReadFile>(64);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_layer(layer, limits, sender));
        let mut files = Vec::new();
        let mut inspected = Vec::new();
        // Ends when the reader is done or has failed; its result says which.
        for (path, content, sha256) in receiver {
            // Returning drops the receiver, which stops the reader at its next file.
            if stop.load(Ordering::Relaxed) {
                return Err(FormatError::NotARelease { reason: "unpacking was stopped".into() });
            }
            let sha256 = sha256.unwrap_or_else(|| Digest::of(&content));
            let file = TarFile { path, sha256, content };
            inspected.push(inspect(&file));
            files.push(file);
        }
        reader.join().expect("reading a layer does not panic")?;
        Ok((Unpacked { files }, inspected))
    })
}

/// A file as the layer reader sends it: path, content, and its digest if the reader took it.
type ReadFile = (String, Vec<u8>, Option<Digest>);

/// Inflates `layer`, checking every entry, and sends each file to `files`, hashing about a
/// third of the bytes itself (the receiver hashes the rest, beside its own work on each file).
fn read_layer(
    layer: &[u8],
    limits: &Limits,
    files: std::sync::mpsc::SyncSender<ReadFile>,
) -> Result<(), FormatError> {
    // One byte over the limit is enough to know it was exceeded.
    let mut bounded = GzDecoder::new(layer).take(limits.max_unpacked_bytes + 1);
    let read = read_tar(&mut bounded, limits, files);
    if bounded.limit() == 0 {
        return Err(over_size(limits));
    }
    read?;
    // Other readers of a layer (tar, Go, containerd) go on to a second gzip member: whatever
    // one holds would be files forge-pack never checked.
    if !bounded.get_ref().get_ref().is_empty() {
        return Err(FormatError::UnsafeTarball {
            path: "resources.tar.gz".into(),
            reason: "data after the end of the gzip stream".into(),
        });
    }
    Ok(())
}

/// Reads the files of an inflated tar stream, checking every entry, and sends each to `files`
/// (a closed channel ends the reading: the receiver has given up).
fn read_tar(
    stream: impl Read,
    limits: &Limits,
    files: std::sync::mpsc::SyncSender<ReadFile>,
) -> Result<(), FormatError> {
    let mut archive = tar::Archive::new(stream);
    let (mut bytes, mut hashed) = (0u64, 0u64);
    let mut seen = BTreeSet::new();
    let mut declared: u64 = 0;
    let entries = archive.entries().map_err(FormatError::CorruptTarball)?;
    for (count, entry) in (0_u64..).zip(entries) {
        let mut entry = entry.map_err(FormatError::CorruptTarball)?;
        if count >= limits.max_files {
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
        // Zeroed by the allocator (fresh pages, no pass over them) and filled by inflating
        // straight into it: the declared size is bounded above, and a header that claims more
        // than the stream holds ends in an error.
        let mut content = vec![0; usize::try_from(entry.size()).map_err(|_| over_size(limits))?];
        entry.read_exact(&mut content).map_err(FormatError::CorruptTarball)?;
        bytes += content.len() as u64;
        let sha256 = (hashed * 3 < bytes).then(|| {
            hashed += content.len() as u64;
            Digest::of(&content)
        });
        if files.send((path, content, sha256)).is_err() {
            return Ok(());
        }
    }
    // Inflate to the end of the stream, where gzip's own check is. What follows the end of the
    // archive is padding: anything but zeros would be entries other readers may find.
    let mut rest = archive.into_inner();
    let mut padding = [0; 4096];
    loop {
        let read = rest.read(&mut padding).map_err(FormatError::CorruptTarball)?;
        if read == 0 {
            return Ok(());
        }
        if padding[..read].iter().any(|b| *b != 0) {
            return Err(FormatError::UnsafeTarball {
                path: "resources.tar".into(),
                reason: "data after the end of the archive".into(),
            });
        }
    }
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
