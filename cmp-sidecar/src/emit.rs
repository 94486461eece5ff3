//! Writing objects for Argo CD: one YAML stream, each object after a `---` line.
//!
//! A verified file that [`plain_yaml`] can read line by line — every file forge-pack writes —
//! is passed on byte for byte: it is one document that YAML 1.1 (Argo CD) and 1.2 read alike,
//! and what Argo CD gets is exactly what was pushed. Any other file, and every object when
//! annotations are added, is parsed and written as one line of JSON, which no YAML version
//! reads two ways.

use std::collections::BTreeMap;
use std::io::Write;

use forge_release::Digest;
use forge_release::metadata::ObjectInfo;
use forge_release::objects::ObjectId;
use forge_release::tarball::TarFile;
use forge_release::verify::VerifiedRelease;
use serde_json::Value;

use crate::cached_stream::{CachedStream, StreamError};
use crate::error::CmpError;
use crate::plain_yaml;

/// Annotation keys added with `annotate`.
pub mod annotations {
    /// Canonical release id.
    pub const RELEASE: &str = "forge.dev/release";
    /// Release number.
    pub const NUMBER: &str = "forge.dev/release-number";
    /// Commit SHA.
    pub const COMMIT: &str = "forge.dev/commit";
    /// Manifest digest.
    pub const DIGEST: &str = "forge.dev/release-digest";
}

/// A release rendered for Argo CD: its part of the output and what is in it.
#[derive(Debug)]
pub struct Rendered {
    /// Commit of the release.
    pub commit: String,
    /// `<repository>/<project>` of the release.
    pub name: String,
    /// Each object, in output order.
    pub objects: Vec<ObjectId>,
    /// Whether every document is its released file byte for byte.
    pub verbatim: bool,
    /// The output.
    pub body: Body,
}

/// Output: objects as documents, or a stream in the cache, checked as it is written.
#[derive(Debug)]
pub enum Body {
    /// One per object, each written after a `---` line.
    Documents(Vec<Document>),
    /// A whole YAML stream in the cache, `---` lines included.
    Cached(Box<CachedStream>),
}

/// One object as written: text ending in a newline, and the digest of that text (for a file
/// passed on as it is, the digest already verified against the release's metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The text.
    pub text: Vec<u8>,
    /// Its digest.
    pub sha256: Digest,
}

impl Document {
    fn new(mut text: Vec<u8>, sha256: Option<Digest>) -> Self {
        match sha256 {
            Some(sha256) if text.ends_with(b"\n") => Document { text, sha256 },
            _ => {
                if !text.ends_with(b"\n") {
                    text.push(b'\n');
                }
                Document { sha256: Digest::of(&text), text }
            }
        }
    }
}

/// The line that opens every document.
pub const SEPARATOR: &[u8] = b"---\n";

impl Body {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Documents(documents) => {
                documents.iter().map(|d| (SEPARATOR.len() + d.text.len()) as u64).sum()
            }
            Body::Cached(stream) => stream.len(),
        }
    }

    /// Whether it holds no objects.
    pub fn is_empty(&self) -> bool {
        match self {
            Body::Documents(documents) => documents.is_empty(),
            Body::Cached(stream) => stream.is_empty(),
        }
    }

    /// Writes it to `out`: a cached stream is checked as it goes (see [`CachedStream`]).
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), CmpError> {
        match self {
            Body::Documents(documents) => documents
                .iter()
                .try_for_each(|d| out.write_all(SEPARATOR).and_then(|()| out.write_all(&d.text)))
                .map_err(CmpError::Output),
            Body::Cached(stream) => stream.write_checked(out).map_err(|e| match e {
                StreamError::Write(e) => CmpError::Output(e),
                StreamError::Damaged { path } => CmpError::CacheDamaged { path },
            }),
        }
    }
}

/// What [`scan`] found in a file: its identity, when the file is plain YAML.
pub type Scanned = Option<ObjectId>;

/// Reads a file's identity line by line (see [`plain_yaml`]), meant to run on each file as it
/// is unpacked ([`forge_release::image::ReleaseImage::verify_inspecting`]).
pub fn scan(file: &TarFile) -> Scanned {
    std::str::from_utf8(&file.content).ok().and_then(plain_yaml::identity)
}

/// How a file is written.
enum Rendering {
    /// As it is.
    Verbatim,
    /// As this JSON.
    Json(String),
}

/// Renders every object of `release`, checking each against its metadata entry. `scanned`
/// holds what [`scan`] found in each file (or nothing, when annotating). Files that were not
/// plain are parsed on all cores: parsing is the bulk of a cold generate where it is needed.
/// Files passed on as they are move into the output, uncopied.
pub fn render(
    release: VerifiedRelease,
    scanned: &[Scanned],
    annotate: bool,
) -> Result<Rendered, CmpError> {
    let renderings = renderings(&release, scanned, annotate)?;
    let config = &release.head.config;
    let (commit, name) =
        (config.commit.clone(), format!("{}/{}", config.repository, config.project));
    let mut objects = Vec::with_capacity(renderings.len());
    let mut documents = Vec::with_capacity(renderings.len());
    let verbatim = renderings.iter().all(|(_, r)| matches!(r, Rendering::Verbatim));
    for ((key, rendering), file) in renderings.into_iter().zip(release.files) {
        objects.push(key);
        documents.push(match rendering {
            Rendering::Verbatim => Document::new(file.content, Some(file.sha256)),
            Rendering::Json(line) => Document::new(line.into_bytes(), None),
        });
    }
    Ok(Rendered { commit, name, objects, verbatim, body: Body::Documents(documents) })
}

/// The object key of each file of `release` and how it is written.
fn renderings(
    release: &VerifiedRelease,
    scanned: &[Scanned],
    annotate: bool,
) -> Result<Vec<(ObjectId, Rendering)>, CmpError> {
    let metadata = &release.head.metadata;
    let by_path: BTreeMap<&str, &ObjectInfo> =
        metadata.resources.objects.iter().map(|o| (o.path.as_str(), o)).collect();
    let bad = |reason: String| CmpError::BadObject { digest: release.head.digest.clone(), reason };
    let render_file =
        |(file, scanned): (&TarFile, &Scanned)| -> Result<(ObjectId, Rendering), String> {
            let info = by_path
                .get(file.path.as_str())
                .ok_or_else(|| format!("{} is not in the metadata", file.path))?;
            if let Some(identity) = scanned {
                check_identity(identity, info)
                    .map_err(|reason| format!("{}: {reason}", file.path))?;
                return Ok((info.id.clone(), Rendering::Verbatim));
            }
            let mut object = forge_release::objects::read_object(&file.content)
                .map_err(|reason| format!("{}: {reason}", file.path))?;
            ObjectId::of(&object)
                .and_then(|identity| check_identity(&identity, info))
                .map_err(|reason| format!("{}: {reason}", file.path))?;
            if annotate {
                add_annotations(&mut object, release);
            }
            let line = serde_json::to_string(&object).map_err(|e| e.to_string())?;
            Ok((info.id.clone(), Rendering::Json(line)))
        };
    // Annotating means rewriting every object, so every file is parsed.
    const UNSCANNED: &Scanned = &None;
    let pairs: Vec<(&TarFile, &Scanned)> = release
        .files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            (file, if annotate { UNSCANNED } else { scanned.get(i).unwrap_or(UNSCANNED) })
        })
        .collect();
    let results: Vec<Result<(ObjectId, Rendering), String>> = if pairs
        .iter()
        .all(|(_, s)| s.is_some())
    {
        pairs.into_iter().map(render_file).collect()
    } else {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let chunk = pairs.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = pairs
                .chunks(chunk)
                .map(|pairs| {
                    scope.spawn(move || pairs.iter().copied().map(render_file).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| {
                    w.join().unwrap_or_else(|_| vec![Err("a render thread panicked".into())])
                })
                .collect()
        })
    };
    results.into_iter().collect::<Result<_, _>>().map_err(bad)
}

/// An object's identity, as its file says, against its metadata entry.
fn check_identity(actual: &ObjectId, info: &ObjectInfo) -> Result<(), String> {
    if *actual != info.id {
        return Err(format!(
            "object {actual} ({}) does not match its metadata entry {} ({})",
            actual.api_version, info.id, info.id.api_version
        ));
    }
    Ok(())
}

fn add_annotations(object: &mut Value, release: &VerifiedRelease) {
    let info = &release.head.metadata.release;
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let notes = metadata.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if !notes.is_object() {
        *notes = Value::Object(Default::default());
    }
    if let Some(notes) = notes.as_object_mut() {
        notes.insert(annotations::RELEASE.into(), info.id.clone().into());
        notes.insert(annotations::NUMBER.into(), info.number.to_string().into());
        notes.insert(annotations::COMMIT.into(), release.head.config.commit.clone().into());
        notes.insert(annotations::DIGEST.into(), release.head.digest.to_string().into());
    }
}
