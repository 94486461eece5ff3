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
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_release::tarball::Limits;
use forge_store::copy::copy_release;
use forge_store::images::copy_image;
use forge_store::{LayoutStore, Store, release_index};
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
        if head.metadata.images.is_empty() {
            output.warn(
                "the release records no container images (it runs none, or it was made before forge-pack kept an image inventory): none carried",
            );
        }
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
    let canonical = ImageName { tag: name.tag.clone().or(resolved_from.clone()), ..name };
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

/// A release an archive holds, read and checked, and where it goes.
struct PlannedRelease {
    digest: Digest,
    manifest: forge_release::manifest::Manifest,
    number: String,
    location: ProjectLocation,
    to: Store,
    tags: Vec<String>,
}

/// A container image an archive carries for its releases, and the tag to give it (only
/// for an image the objects name by tag; a pinned image needs none).
struct PlannedImage {
    image: ImageName,
    digest: Digest,
    tag: Option<String>,
}

/// Runs `import`: everything in the archive is read and checked against the releases it
/// holds before anything is written; then images, then releases.
pub async fn import(args: &ImportArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let root = StoreRoot::parse(&args.destination)?;
    let dir = tempfile::tempdir().map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
    read_tar(&args.archive, dir.path())?;
    let layout = LayoutStore::new(dir.path());
    let from = Store::Layout(layout.clone());
    let (releases, runs) = plan_releases(&layout, &from, &root, &access, &args.archive).await?;
    let images = plan_images(&layout, &root, &releases, &runs, &args.archive)?;
    let mut mirrored = Vec::new();
    for planned in &images {
        mirrored.push(mirror_image(&from, &root, planned, &access, output).await?);
    }
    let mut reports = Vec::new();
    for planned in releases {
        let copied = copy_release(&from, &planned.to, &planned.digest, &planned.tags)
            .await
            .map_err(Error::Copy)?;
        for warning in &copied.warnings {
            output.warn(warning);
        }
        // Only the tags it added are known to name it there (the others list from their tags).
        let entries: Vec<_> = forge_release::index::Entry::of_release(
            &planned.digest,
            &planned.manifest,
            &copied.tags_added,
        )
        .into_iter()
        .collect();
        if let Err(error) = release_index::record(&planned.to, &entries).await {
            output.warn(&format!(
                "the release index of {} was not updated: {error}",
                planned.location
            ));
        }
        reports.push(Imported {
            image: planned.location.to_string(),
            number: planned.number,
            copied,
        });
    }
    if output.json() {
        output.print_json(&serde_json::json!({ "releases": reports, "images": mirrored }))?;
    } else {
        for r in &reports {
            output.print(&format!(
                "imported release {} as {}@{}\n",
                r.number, r.image, r.copied.digest
            ))?;
        }
        for i in &mirrored {
            output.print(&format!("imported image {} as {}\n", i.image, i.mirror))?;
        }
    }
    Ok(exit::OK)
}

/// The archive's releases (each named by its commit tag), verified, with a destination
/// named after a valid repository and project, none colliding with another release there;
/// and the images their objects run.
async fn plan_releases(
    layout: &LayoutStore,
    from: &Store,
    root: &StoreRoot,
    access: &Access,
    archive: &Path,
) -> Result<(Vec<PlannedRelease>, Vec<String>), Error> {
    let mut releases = Vec::new();
    let mut runs = Vec::new();
    for (_, digest) in layout.list_tags()?.into_iter().filter(|(t, _)| is_commit_sha(t)) {
        // The whole release verified (every blob against its digest, the resources against
        // the metadata) before anything is written anywhere.
        let head = from.fetch_release(&digest, &Limits::default()).await?.head;
        let (repository, project) =
            (&head.metadata.release.repository, &head.metadata.release.project);
        let valid = repository.split('/').all(crate::config::is_path_component)
            && crate::config::is_path_component(project);
        if !valid {
            return Err(Error::usage(format!(
                "{} holds release {digest} of `{repository}/{project}`, which is not a repository path",
                archive.display()
            )));
        }
        let location =
            ProjectLocation::InRoot { root: root.clone(), path: format!("{repository}/{project}") };
        let to = access.open_release(&location)?;
        let number = head.metadata.release.number.to_string();
        for tag in [&number, &head.metadata.source.commit] {
            if let Some(existing) = to.resolve_tag(tag).await?
                && existing != digest
            {
                return Err(Error::Copy(forge_store::copy::CopyError::Conflict {
                    location: to.location(),
                    tag: tag.clone(),
                    existing,
                    digest,
                }));
            }
        }
        // Only the names the release was made with travel (its number, commit and aliases),
        // whatever else the archive's index points at it.
        let tags = list::tags_of(from, &digest, &head.manifest).await?;
        runs.extend(head.metadata.images.iter().map(|i| i.image.clone()));
        releases.push(PlannedRelease {
            digest,
            manifest: head.manifest,
            number,
            location,
            to,
            tags,
        });
    }
    if releases.is_empty() {
        return Err(Error::usage(format!("{} holds no release", archive.display())));
    }
    Ok((releases, runs))
}

/// The archive's images, each one a release in it runs (by its pinned digest, or by the tag
/// it names, resolved at export), and none where a release of the archive goes.
fn plan_images(
    layout: &LayoutStore,
    root: &StoreRoot,
    releases: &[PlannedRelease],
    runs: &[String],
    archive: &Path,
) -> Result<Vec<PlannedImage>, Error> {
    let refused = |reason: String| {
        Error::usage_hint(
            format!("{}: {reason}", archive.display()),
            "export the release again: `forge-pack export <release> --images --out <file>`",
        )
    };
    let runs: Vec<ImageName> = runs.iter().filter_map(|r| ImageName::parse(r)).collect();
    let mut planned = Vec::new();
    for (name, digest, _) in layout.images()? {
        let image = ImageName::parse(&name).ok_or_else(|| {
            refused(format!("it carries an image named `{name}`, which is not an image reference"))
        })?;
        if image.digest.as_ref() != Some(&digest) {
            return Err(refused(format!(
                "its image entry `{name}` names another digest than its entry's, {digest}"
            )));
        }
        let same_repository = |r: &&ImageName| r.host == image.host && r.path == image.path;
        let pinned =
            runs.iter().filter(same_repository).any(|r| r.digest.as_ref() == Some(&digest));
        let by_tag = runs.iter().filter(same_repository).any(|r| {
            r.digest.is_none()
                && r.tag.as_deref().unwrap_or("latest") == image.tag.as_deref().unwrap_or("latest")
        });
        if !pinned && !by_tag {
            return Err(refused(format!(
                "it carries {}@{digest}, which none of its releases runs",
                image.canonical()
            )));
        }
        let mirror = image.mirror_path();
        if releases
            .iter()
            .any(|r| matches!(&r.location, ProjectLocation::InRoot { path, .. } if *path == mirror))
        {
            return Err(refused(format!(
                "its image {} would land where a release goes, {root}/{mirror}",
                image.canonical()
            )));
        }
        let tag =
            if pinned { None } else { Some(image.tag.clone().unwrap_or_else(|| "latest".into())) };
        planned.push(PlannedImage { image, digest, tag });
    }
    Ok(planned)
}

/// Copies a carried image to `<root>/<host>/<path>` by digest; an image the objects name by
/// tag gets that tag too, unless it already names another image there (then it is left,
/// with a warning: the release's objects would pull what the site has under it).
async fn mirror_image(
    from: &Store,
    root: &StoreRoot,
    planned: &PlannedImage,
    access: &Access,
    output: &Output,
) -> Result<MirroredImage, Error> {
    let PlannedImage { image, digest, tag } = planned;
    let location = ProjectLocation::InRoot { root: root.clone(), path: image.mirror_path() };
    let to = access.open_release(&location)?;
    let spinner = output.spinner(&format!("copying {}", image.canonical()));
    let copied = copy_image(from, &to, digest).await;
    spinner.finish_and_clear();
    let copied = copied?;
    if let Some(tag) = tag {
        match to.resolve_tag(tag).await? {
            Some(existing) if existing != *digest => output.warn(&format!(
                "{location}:{tag} names {existing} at the destination, not {digest}; the tag is left as it is"
            )),
            Some(_) => {}
            None => {
                let bytes = from.fetch_manifest(digest).await?;
                to.put_manifest_as(tag, &bytes, copied.media_type).await?;
            }
        }
    }
    Ok(MirroredImage {
        image: image.canonical(),
        mirror: format!("{location}@{digest}"),
        blobs_uploaded: copied.blobs_uploaded,
        bytes_uploaded: copied.bytes_uploaded,
    })
}
