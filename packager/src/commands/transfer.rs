//! `forge-pack export` / `import`: a release as one OCI image-layout tarball, for a site
//! without network access. Export copies the release (with its tags, signatures and
//! attestations, and with `--images` every container image its objects run) into a layout
//! and tars it deterministically; import reads only the layout's own files (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`), verifies every digest as it copies each release into
//! `<destination>/<repository>/<project>` and each image into
//! `<destination>/<host>/<path>`, and preserves digests; run again it uploads nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::aliases::is_commit_sha;
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::copy::copy_release;
use forge_store::images::copy_image;
use forge_store::{LayoutStore, Store};
use serde::Serialize;

use crate::access::Access;
use crate::cli::{ExportArgs, GlobalArgs, ImportArgs};
use crate::commands::list;
use crate::error::{Error, exit};
use crate::fsutil::LocalError;
use crate::images::ImageName;
use crate::output::Output;

/// The largest file an archive may hold: a carried image's layer (a release's are far
/// smaller).
const MAX_ENTRY_BYTES: u64 = forge_store::images::MAX_LAYER_BYTES;

/// A container image an export carries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CarriedImage {
    /// The reference as the release's objects write it.
    image: String,
    /// Its digest (the pinned one, or what its tag named at export).
    digest: String,
    /// The tag it was resolved from, when the objects name it by tag only.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_from: Option<String>,
}

/// Where import put a container image.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MirroredImage {
    /// The image as the release names it (`host/path[:tag]`).
    image: String,
    /// Where it is now, by digest.
    mirror: String,
    blobs_uploaded: usize,
    bytes_uploaded: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Imported {
    image: String,
    number: String,
    #[serde(flatten)]
    copied: forge_store::copy::Copied,
}

/// Runs `export`.
pub async fn export(args: &ExportArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let resolved = access.resolve(&args.reference).await?;
    let head = resolved.store.fetch_head(&resolved.digest).await?;
    let tags = list::tags_of(&resolved.store, &resolved.digest, &head.manifest).await?;
    let dir = tempfile::tempdir().map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
    let layout = LayoutStore::new(dir.path());
    let into = Store::Layout(layout.clone());
    let copied =
        copy_release(&resolved.store, &into, &resolved.digest, &tags).await.map_err(Error::Copy)?;
    let mut images = Vec::new();
    if args.images {
        for image in &head.metadata.images {
            images.push(carry_image(&image.image, &access, &layout, output).await?);
        }
    }
    write_tar(dir.path(), &args.out)?;
    output.note(&format!(
        "exported {} ({} signature{}, {} image{}) to {}",
        resolved.digest,
        copied.signatures,
        if copied.signatures == 1 { "" } else { "s" },
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        args.out.display()
    ));
    if output.json() {
        output.print_json(&serde_json::json!({
            "digest": resolved.digest.to_string(),
            "archive": args.out,
            "tags": tags,
            "signatures": copied.signatures,
            "images": images,
        }))?;
    }
    Ok(exit::OK)
}

/// Copies the container image `image` into the layout by digest, resolving a tag first, and
/// records it under its full name and tag.
async fn carry_image(
    image: &str,
    access: &Access,
    layout: &LayoutStore,
    output: &Output,
) -> Result<CarriedImage, Error> {
    let name = ImageName::parse(image).ok_or_else(|| {
        Error::usage(format!("the release runs `{image}`, which is not an image reference"))
    })?;
    let from = access.open(&name.location())?;
    let (digest, resolved_from) = match &name.digest {
        Some(digest) => (digest.clone(), None),
        None => {
            let tag = name.tag.clone().unwrap_or_else(|| "latest".into());
            let digest = from.resolve_tag(&tag).await?.ok_or_else(|| {
                Error::usage(format!(
                    "the release runs `{image}`, but {} has no tag `{tag}`",
                    from.location()
                ))
            })?;
            (digest, Some(tag))
        }
    };
    let spinner = output.spinner(&format!("copying {image}"));
    let copied = copy_image(&from, &Store::Layout(layout.clone()), &digest).await;
    spinner.finish_and_clear();
    let copied = copied?;
    let canonical = ImageName { tag: name.tag.clone().or(resolved_from.clone()), ..name.clone() };
    layout.name_image(
        &format!("{}@{digest}", canonical.canonical()),
        &digest,
        copied.media_type,
    )?;
    Ok(CarriedImage { image: image.to_owned(), digest: digest.to_string(), resolved_from })
}

/// Tars a layout directory: its files in name order, with fixed metadata, so the same release
/// exports to the same bytes.
fn write_tar(dir: &Path, out: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e| LocalError::io(path, e)
    };
    let mut files = vec![PathBuf::from("oci-layout"), PathBuf::from("index.json")];
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(dir.join("blobs/sha256"))
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| PathBuf::from("blobs/sha256").join(e.file_name())))
        .collect();
    blobs.sort();
    files.extend(blobs);
    let temp =
        tempfile::NamedTempFile::new_in(out.parent().unwrap_or(Path::new("."))).map_err(io(out))?;
    let mut builder = tar::Builder::new(temp);
    for file in &files {
        // Streamed: a carried image's layers may be large.
        let source = std::fs::File::open(dir.join(file)).map_err(io(&dir.join(file)))?;
        let size = source.metadata().map_err(io(&dir.join(file)))?.len();
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, file, source).map_err(io(out))?;
    }
    let temp = builder.into_inner().map_err(io(out))?;
    temp.persist(out).map_err(|e| LocalError::io(out, e.error))?;
    Ok(())
}

/// Unpacks only a layout's own files, each bounded, into `dir`.
fn read_tar(archive: &Path, dir: &Path) -> Result<(), Error> {
    let bad = |reason: String| {
        Error::usage(format!("{} is not a forge-pack export: {reason}", archive.display()))
    };
    let file = std::fs::File::open(archive).map_err(|e| LocalError::io(archive, e))?;
    let mut entries = tar::Archive::new(file);
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| LocalError::io(dir, e))?;
    for entry in entries.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.to_string_lossy().into_owned();
        let allowed = path == "oci-layout"
            || path == "index.json"
            || path.strip_prefix("blobs/sha256/").is_some_and(|hex| {
                hex.len() == 64
                    && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
        if !allowed || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("unexpected entry `{path}`")));
        }
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(bad(format!("`{path}` is larger than any release file")));
        }
        // Streamed to disk; every blob is hashed when import reads it back.
        let target = dir.join(&path);
        let mut file = std::fs::File::create(&target).map_err(|e| LocalError::io(&target, e))?;
        std::io::copy(&mut (&mut entry).take(MAX_ENTRY_BYTES), &mut file)
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// Runs `import`.
pub async fn import(args: &ImportArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let root = StoreRoot::parse(&args.destination)?;
    let dir = tempfile::tempdir().map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
    read_tar(&args.archive, dir.path())?;
    let layout = LayoutStore::new(dir.path());
    let tags = layout.list_tags()?;
    let carried = layout.images()?;
    let from = Store::Layout(layout);
    // Images first: a release lands once what it runs is there.
    let mut images = Vec::new();
    for (name, digest, _) in &carried {
        images.push(mirror_image(&from, &root, name, digest, &access, output).await?);
    }
    let mut reports = Vec::new();
    for (commit, digest) in tags.iter().filter(|(t, _)| is_commit_sha(t)) {
        // Every byte is verified as it is read (digests and sizes), before it is uploaded.
        let bytes = from.fetch_manifest(digest).await?;
        let manifest = Manifest::parse_release(&bytes, Some(digest))?;
        let repository = manifest.annotation(annotations::FORGE_REPOSITORY).unwrap_or_default();
        let project = manifest.annotation(annotations::FORGE_PROJECT).unwrap_or_default();
        let location =
            ProjectLocation::InRoot { root: root.clone(), path: format!("{repository}/{project}") };
        let to = access.open_release(&location)?;
        let names: Vec<String> = tags
            .iter()
            .filter(|(tag, d)| d == digest && tag != commit)
            .map(|(tag, _)| tag.clone())
            .chain([commit.clone()])
            .collect();
        let copied = copy_release(&from, &to, digest, &names).await.map_err(Error::Copy)?;
        let number = manifest.annotation(annotations::FORGE_NUMBER).unwrap_or_default().to_owned();
        reports.push(Imported { image: location.to_string(), number, copied });
    }
    if reports.is_empty() {
        return Err(Error::usage(format!("{} holds no release", args.archive.display())));
    }
    if output.json() {
        output.print_json(&serde_json::json!({ "releases": reports, "images": images }))?;
    } else {
        for r in &reports {
            output.print(&format!(
                "imported release {} as {}@{}\n",
                r.number, r.image, r.copied.digest
            ))?;
        }
        for i in &images {
            output.print(&format!("imported image {} as {}\n", i.image, i.mirror))?;
        }
    }
    Ok(exit::OK)
}

/// Copies a carried image to `<root>/<host>/<path>`, under its tag too when it has one.
async fn mirror_image(
    from: &Store,
    root: &StoreRoot,
    name: &str,
    digest: &Digest,
    access: &Access,
    output: &Output,
) -> Result<MirroredImage, Error> {
    let bad = || {
        Error::usage(format!(
            "the archive carries an image named `{name}`, which is not an image reference by digest"
        ))
    };
    let image = ImageName::parse(name).ok_or_else(bad)?;
    if image.digest.as_ref() != Some(digest) {
        return Err(bad());
    }
    let location = ProjectLocation::InRoot { root: root.clone(), path: image.mirror_path() };
    let to = access.open_release(&location)?;
    let spinner = output.spinner(&format!("copying {}", image.canonical()));
    let copied = copy_image(from, &to, digest).await;
    spinner.finish_and_clear();
    let copied = copied?;
    if let Some(tag) = &image.tag {
        let bytes = from.fetch_any_manifest(digest).await?;
        to.put_manifest_as(tag, &bytes, copied.media_type).await?;
    }
    Ok(MirroredImage {
        image: image.canonical(),
        mirror: format!("{location}@{digest}"),
        blobs_uploaded: copied.blobs_uploaded,
        bytes_uploaded: copied.bytes_uploaded,
    })
}
