//! `forge-cmp generate`: pointers → verified releases → one manifest stream.

use std::path::Path;
use std::sync::Arc;

use forge_release::Digest;
use forge_release::image::ReleaseImage;
use forge_release::reference::ProjectLocation;
use forge_release::tarball::Limits;
use forge_release::verify::{self, VerifiedRelease};
use forge_store::Store;
use forge_store::registry::RegistryOptions;

use crate::cache::Cache;
use crate::discover;
use crate::emit::{self, Rendered, Scanned};
use crate::error::CmpError;
use crate::pointer::LoadedPointer;
use crate::settings::Settings;
use crate::trust::SignatureRule;
use crate::unpacking::{self, Unpacking};

/// The output of `generate`, and the cache writes still under way.
#[derive(Debug, Default)]
pub struct Generated {
    /// Each release's rendered objects, in pointer order: together, the output.
    pub releases: Vec<Arc<Rendered>>,
    /// Cache writes, made while the output is written: join them before exiting, so that no
    /// temp file is left behind.
    pub cache_writes: Vec<CacheWrite>,
}

impl Generated {
    /// Writes the whole output to `out`.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> Result<(), CmpError> {
        self.releases.iter().try_for_each(|r| r.body.write_to(out))
    }

    /// Waits for the cache writes.
    pub fn finish(self) {
        for write in self.cache_writes {
            let _ = write.join();
        }
    }
}

/// A thread writing to the cache; true when it wrote all it had to.
pub type CacheWrite = std::thread::JoinHandle<bool>;

/// A pointer its project may use, with that project's registry settings and signature rule.
type Admitted<'s> = (LoadedPointer, RegistryOptions, Option<&'s SignatureRule>);

/// The app's pointers, each with the registry settings its Argo CD project may use; checked
/// before any cache or registry access.
fn admitted<'s>(app_dir: &Path, settings: &'s Settings) -> Result<Vec<Admitted<'s>>, CmpError> {
    let pointers =
        discover::pointers(app_dir, settings.pointer_file.as_deref(), &settings.default_root)?;
    pointers
        .into_iter()
        .map(|pointer| {
            let rule = settings
                .tenancy
                .admit(settings.project.as_deref(), &pointer.location.project)
                .map_err(|reason| CmpError::NotAllowed { path: pointer.path.clone(), reason })?;
            let mut options = settings.registry.clone();
            options.auth_files.extend(rule.auth_file.clone());
            Ok((pointer, options, rule.signatures.as_ref()))
        })
        .collect()
}

/// Refuses an object two releases (or one, twice) both hold, naming the images. Borrowed
/// keys in a fast hash: a release may hold tens of thousands of objects, and this runs on
/// the warm path.
fn check_unique(generated: &Generated, pointers: &[Admitted<'_>]) -> Result<(), CmpError> {
    let mut seen: foldhash::HashMap<&forge_release::objects::ObjectId, usize> =
        foldhash::HashMap::default();
    for (index, rendered) in generated.releases.iter().enumerate() {
        for object in &rendered.objects {
            if let Some(first) = seen.insert(object, index) {
                return Err(CmpError::DuplicateObject {
                    object: object.to_string(),
                    first: pointers[first].0.location.project.to_string(),
                    second: pointers[index].0.location.project.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The app's output when every release is in the cache, rendered (no async runtime, no
/// network); `None` when any is not.
pub fn generate_warm(app_dir: &Path, settings: &Settings) -> Result<Option<Generated>, CmpError> {
    let pointers = admitted(app_dir, settings)?;
    let cache = Cache::new(settings);
    let mut generated = Generated::default();
    let several = pointers.len() > 1;
    for (pointer, _, signatures) in &pointers {
        let Some(rendered) = warm(pointer, settings, &cache, *signatures, several)? else {
            return Ok(None);
        };
        generated.releases.push(Arc::new(rendered));
    }
    check_unique(&generated, &pointers)?;
    Ok(Some(generated))
}

/// Renders the app in `app_dir`: the whole output, or an error (never partial output).
pub async fn generate(app_dir: &Path, settings: &Settings) -> Result<Generated, CmpError> {
    let mut generated = Generated::default();
    let work = async {
        let pointers = admitted(app_dir, settings)?;
        let cache = Cache::new(settings);
        let limits = Limits::default();
        let several = pointers.len() > 1;
        for (pointer, registry, signatures) in &pointers {
            let rendered = rendered_release(
                pointer,
                settings,
                (registry, *signatures, several),
                &cache,
                &limits,
                &mut generated.cache_writes,
            )
            .await?;
            generated.releases.push(rendered);
        }
        check_unique(&generated, &pointers)
    };
    let finished = tokio::time::timeout(settings.timeout, work)
        .await
        .unwrap_or(Err(CmpError::Timeout { seconds: settings.timeout.as_secs() }));
    match finished {
        Ok(()) => Ok(generated),
        Err(error) => {
            generated.finish();
            Err(error)
        }
    }
}

/// The digest whose cached copy may stand for the pointer's release: the one remembered for
/// its image and commit, which only a fetch from that image's own store (with that project's
/// credentials) records, and which a pin must agree with. A digest alone is not enough: the
/// cache is shared by every project, and another project's release must not be served to an
/// Application that names it under an image its registry would refuse.
fn cached_digest(pointer: &LoadedPointer, cache: &Cache) -> Option<Digest> {
    let image = pointer.location.project.to_string();
    let remembered = cache.digest_for(&image, &pointer.pointer.spec.commit)?;
    match &pointer.pointer.spec.digest {
        Some(pin) if *pin != remembered => None,
        _ => Some(remembered),
    }
}

/// The output rendered earlier for a pointer, if the cache has it (only plain output is
/// kept rendered: annotated output is made again from the release); its objects listed when
/// the Application has `several` releases.
fn warm(
    pointer: &LoadedPointer,
    settings: &Settings,
    cache: &Cache,
    signatures: Option<&SignatureRule>,
    several: bool,
) -> Result<Option<Rendered>, CmpError> {
    if settings.annotate {
        return Ok(None);
    }
    let Some(digest) = cached_digest(pointer, cache) else { return Ok(None) };
    // Signed by a key trusted now (the keys may have changed since): else checked afresh.
    if signatures.is_some_and(|rule| !rule.satisfied_by(&cache.signed_by(&digest))) {
        return Ok(None);
    }
    let Some(rendered) = cache.rendered(&digest, several) else { return Ok(None) };
    check_identity(pointer, &digest, &rendered.commit, &rendered.name)?;
    Ok(Some(rendered))
}

/// The output for a pointer's release: rendered earlier (checked as it is written) when the
/// cache has it for this image, else rendered from the verified release and remembered, with
/// the release if it was fetched, on threads of their own (added to `cache_writes`): the
/// output does not wait for the cache.
async fn rendered_release(
    pointer: &LoadedPointer,
    settings: &Settings,
    (registry, signatures, several): (&RegistryOptions, Option<&SignatureRule>, bool),
    cache: &Cache,
    limits: &Limits,
    cache_writes: &mut Vec<CacheWrite>,
) -> Result<Arc<Rendered>, CmpError> {
    if let Some(rendered) = warm(pointer, settings, cache, signatures, several)? {
        return Ok(Arc::new(rendered));
    }
    let image = pointer.location.project.to_string();
    let known = cached_digest(pointer, cache);
    let (release, scanned, blobs_written, checked) = fetch(
        pointer,
        known.as_ref(),
        settings,
        (registry, signatures),
        cache,
        limits,
        cache_writes,
    )
    .await?;
    let digest = release.head.digest.clone();
    if let Some(rule) = signatures {
        let signed_by = match checked {
            Some(signed_by) => Ok(signed_by),
            None => check_signatures(rule, pointer, registry, &digest).await,
        };
        match signed_by {
            Ok(signed_by) if !signed_by.is_empty() => {
                cache.remember_signed(&digest, &signed_by).inspect_err(warn_cache).ok();
            }
            Ok(_) => {}
            Err(error) => {
                cache_writes.push(std::thread::spawn(move || blobs_written.stored()));
                return Err(error);
            }
        }
    }
    let rendered = Arc::new(emit::render(release, &scanned, settings.annotate)?);
    let cache = cache.clone();
    let commit = pointer.pointer.spec.commit.clone();
    let remembered = rendered.clone();
    cache_writes.push(std::thread::spawn(move || {
        // A release is named only once its blobs are all there.
        let blobs_stored = blobs_written.stored();
        let write = || {
            let remembered_release =
                if blobs_stored { cache.remember(&image, &commit, &digest) } else { Ok(()) };
            remembered_release.and_then(|()| cache.put_rendered(&digest, &remembered))
        };
        let needed = remembered.body.len();
        let written = with_room(&cache, needed, write);
        // Whether or not the writes went through: a full disk is when eviction matters most.
        let evicted = cache.evict();
        written.and(evicted).inspect_err(warn_cache).is_ok()
    }));
    Ok(rendered)
}

/// Checks the release's signatures against the project's trusted keys (before anything is
/// rendered): the trusted keys that signed it.
async fn check_signatures(
    rule: &SignatureRule,
    pointer: &LoadedPointer,
    registry: &RegistryOptions,
    digest: &Digest,
) -> Result<Vec<String>, CmpError> {
    let image = pointer.location.project.to_string();
    let store = Store::open(&pointer.location.project, registry)
        .map_err(|source| CmpError::Store { image: image.clone(), source })?;
    rule.check(&store, &image, digest).await
}

/// A verified release, what [`emit::scan`] found in its files, where its blobs stand, and the
/// trusted keys that signed it if they were checked while it was fetched.
type Fetched = (VerifiedRelease, Vec<Scanned>, Blobs, Option<Vec<String>>);

/// Where a release's blobs stand in the cache once it is verified.
#[derive(Debug)]
enum Blobs {
    /// They were there already.
    Cached,
    /// A thread is writing them (true when it wrote them all).
    Writing(CacheWrite),
}

impl Blobs {
    fn stored(self) -> bool {
        match self {
            Blobs::Cached => true,
            Blobs::Writing(thread) => thread.join().unwrap_or(false),
        }
    }
}

/// Runs `write`; if it fails (a full disk, say), frees `needed` bytes of the oldest entries
/// and runs it once more.
fn with_room(
    cache: &Cache,
    needed: u64,
    write: impl Fn() -> Result<(), CmpError>,
) -> Result<(), CmpError> {
    write().or_else(|_| cache.make_room(needed).and_then(|()| write()))
}

/// A cache that cannot be written costs speed, not correctness: a warning, not an error.
fn warn_cache(error: &CmpError) {
    eprintln!("forge-cmp: warning: {error}");
}

/// The verified release a pointer names, and what [`emit::scan`] found in each file (unless
/// annotating, which parses every file): from the cache when `known` (see [`cached_digest`])
/// is there intact, else from its store, whose manifest says which release it is (its blobs
/// still come from the cache when it has them). A release fetched from its store is written
/// to the cache while it is verified, on a thread; should verifying fail, that thread goes to
/// `cache_writes`.
async fn fetch(
    pointer: &LoadedPointer,
    known: Option<&Digest>,
    settings: &Settings,
    (registry, signatures): (&RegistryOptions, Option<&SignatureRule>),
    cache: &Cache,
    limits: &Limits,
    cache_writes: &mut Vec<CacheWrite>,
) -> Result<Fetched, CmpError> {
    let verify = |raw: &ReleaseImage| {
        raw.verify_inspecting(limits, |file| unpacking::scan(file, settings.annotate))
    };
    let image = pointer.location.project.to_string();
    let commit = &pointer.pointer.spec.commit;
    let pinned = pointer.pointer.spec.digest.clone();
    let store_error = |source| CmpError::Store { image: image.clone(), source };

    if let Some(digest) = known
        && let Some(raw) = cache.get(digest, limits).await
        && let Ok((release, scanned)) = verify(&raw)
    {
        check_release(&release, pointer)?;
        return Ok((release, scanned, Blobs::Cached, None));
    }

    let store = Store::open(&pointer.location.project, registry).map_err(store_error)?;
    // The manifest itself rather than only its digest: when the tag names the release, its
    // blobs follow without fetching the manifest again.
    let tagged = store.fetch_manifest_by_tag(commit).await.map_err(store_error)?;
    let (digest, manifest) = match (pinned, tagged) {
        (Some(pin), Some((_, tag))) if pin != tag => {
            return Err(CmpError::PinMismatch {
                image,
                pinned: pin,
                what: format!("the release tagged {commit}, which is {tag}"),
            });
        }
        (Some(pin), tagged) => (pin, tagged.map(|(bytes, _)| bytes)),
        (None, Some((bytes, tag))) => (tag, Some(bytes)),
        (None, None) => return Err(CmpError::ReleaseNotFound { image, commit: commit.clone() }),
    };
    let manifest = match manifest {
        Some(bytes) => bytes,
        None => store.fetch_manifest(&digest).await.map_err(store_error)?,
    };
    // The store has this release under this image: the cache's copy of its blobs will do.
    if let Some(raw) = cache.get(&digest, limits).await
        && let Ok((release, scanned)) = verify(&raw)
    {
        check_release(&release, pointer)?;
        return Ok((release, scanned, Blobs::Cached, None));
    }
    // The signatures are checked while the blobs come in. The layer is unpacked (on threads
    // of its own) as soon as it is in, unless a signature rule applies: then not before the
    // signatures are found good, so that nothing unsigned is read.
    let annotate = settings.annotate;
    let early = signatures.is_none();
    let unpack =
        |layer: &bytes::Bytes| early.then(|| Unpacking::start(layer.clone(), *limits, annotate));
    let blobs = store.fetch_blobs_with(manifest, &digest, limits, unpack);
    let (fetched, checked) = match signatures {
        Some(rule) => {
            let (fetched, signed_by) = tokio::join!(blobs, rule.check(&store, &image, &digest));
            (fetched, Some(signed_by?))
        }
        None => (blobs.await, None),
    };
    let (raw, unpacking) = fetched.map_err(store_error)?;
    // Stopped, should the release be refused before its files are needed.
    let unpacking =
        unpacking.unwrap_or_else(|| Unpacking::start(raw.resources.clone(), *limits, annotate));
    let raw = Arc::new(raw);
    let blobs_written = {
        let (cache, raw) = (cache.clone(), Arc::clone(&raw));
        std::thread::spawn(move || {
            let needed = raw.blobs().iter().map(|(_, b)| b.len() as u64).sum::<u64>()
                + raw.manifest_bytes.len() as u64;
            with_room(&cache, needed, || cache.put_blobs(&raw)).inspect_err(warn_cache).is_ok()
        })
    };
    // The layer's bytes were checked against their digest as they came in.
    let verified = raw
        .verify_head()
        .and_then(|head| {
            let (unpacked, scanned) = unpacking.finish()?;
            Ok((verify::check_files(head, unpacked)?, scanned))
        })
        .map_err(|e| store_error(e.into()))
        .and_then(|(release, scanned)| {
            check_release(&release, pointer)?;
            Ok((release, scanned))
        });
    match verified {
        Ok((release, scanned)) => Ok((release, scanned, Blobs::Writing(blobs_written), checked)),
        Err(error) => {
            cache_writes.push(blobs_written);
            Err(error)
        }
    }
}

fn check_release(release: &VerifiedRelease, pointer: &LoadedPointer) -> Result<(), CmpError> {
    let config = &release.head.config;
    check_identity(
        pointer,
        &release.head.digest,
        &config.commit,
        &format!("{}/{}", config.repository, config.project),
    )
}

/// The release must be the pointer's commit and project, whatever digest led to it.
fn check_identity(
    pointer: &LoadedPointer,
    digest: &Digest,
    commit: &str,
    name: &str,
) -> Result<(), CmpError> {
    let image = pointer.location.project.to_string();
    let mismatch =
        |what: String| CmpError::PinMismatch { image: image.clone(), pinned: digest.clone(), what };
    if commit != pointer.pointer.spec.commit {
        return Err(mismatch(format!("spec.commit: the release is commit {commit}")));
    }
    // A release is its metadata (repository, project, commit): a mirror may keep it under
    // another path the project's rule allows, but under its project's name, so that a rule's
    // prefix cannot be made to serve another project's release copied beneath it. A pointer
    // that records the identity must get exactly that.
    let project = name.rsplit('/').next().unwrap_or(name);
    if let ProjectLocation::InRoot { path, .. } = &pointer.location.project
        && path.rsplit('/').next() != Some(project)
    {
        return Err(mismatch(format!(
            "spec.image: the release is {name}, whose project is not {path}'s last name"
        )));
    }
    if let Some(identity) = pointer.pointer.identity()
        && identity != name
    {
        return Err(mismatch(format!(
            "metadata.annotations[forge.dev/release] {identity}: the release is {name}"
        )));
    }
    Ok(())
}
