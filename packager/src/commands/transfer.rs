//! `forge-pack export` / `import`: a release as one OCI image-layout tarball, for a site
//! without network access. Export copies the release (with its tags) into a layout and tars
//! it deterministically; import reads only the layout's own files (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`), verifies every digest as it copies each release into
//! the destination under `<destination>/<repository>/<project>`, and preserves digests; run
//! again it uploads nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use forge_release::aliases::is_commit_sha;
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::copy::copy_release;
use forge_store::{LayoutStore, Store, release_index};
use serde::Serialize;

use crate::access::Access;
use crate::cli::{ExportArgs, GlobalArgs, ImportArgs};
use crate::commands::list;
use crate::error::{Error, exit};
use crate::fsutil::LocalError;
use crate::output::Output;

/// The largest file an archive may hold (a release layer is bounded far below this).
const MAX_ENTRY_BYTES: u64 = 1 << 30;

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
    let bytes = resolved.store.fetch_manifest(&resolved.digest).await?;
    let manifest = Manifest::parse_release(&bytes, Some(&resolved.digest))?;
    let tags = list::tags_of(&resolved.store, &resolved.digest, &manifest).await?;
    let dir = tempfile::tempdir().map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
    let layout = Store::Layout(LayoutStore::new(dir.path()));
    copy_release(&resolved.store, &layout, &resolved.digest, &tags).await.map_err(Error::Copy)?;
    write_tar(dir.path(), &args.out)?;
    output.note(&format!("exported {} to {}", resolved.digest, args.out.display()));
    if output.json() {
        output.print_json(&serde_json::json!({
            "digest": resolved.digest.to_string(),
            "archive": args.out,
            "tags": tags,
        }))?;
    }
    Ok(exit::OK)
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
        let bytes = std::fs::read(dir.join(file)).map_err(io(&dir.join(file)))?;
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, file, bytes.as_slice()).map_err(io(out))?;
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
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_ENTRY_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        let target = dir.join(&path);
        std::fs::write(&target, bytes).map_err(|e| LocalError::io(&target, e))?;
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
    let from = Store::Layout(layout);
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
        // Only the tags it added are known to name it there (the others list from their tags).
        let entries: Vec<_> =
            forge_release::index::Entry::of_release(digest, &manifest, &copied.tags_added)
                .into_iter()
                .collect();
        if let Err(error) = release_index::record(&to, &entries).await {
            output.warn(&format!("the release index of {location} was not updated: {error}"));
        }
        let number = manifest.annotation(annotations::FORGE_NUMBER).unwrap_or_default().to_owned();
        reports.push(Imported { image: location.to_string(), number, copied });
    }
    if reports.is_empty() {
        return Err(Error::usage(format!("{} holds no release", args.archive.display())));
    }
    if output.json() {
        output.print_json(&reports)?;
    } else {
        for r in &reports {
            output.print(&format!(
                "imported release {} as {}@{}\n",
                r.number, r.image, r.copied.digest
            ))?;
        }
    }
    Ok(exit::OK)
}
