//! `forge-cmp generate`: pointers → verified releases → one manifest stream.

use std::collections::BTreeMap;
use std::path::Path;

use forge_release::reference::ProjectLocation;
use forge_release::store::Store;
use forge_release::tarball::Limits;
use forge_release::verify::VerifiedRelease;

use crate::cache::Cache;
use crate::discover;
use crate::emit;
use crate::error::CmpError;
use crate::pointer::LoadedPointer;
use crate::settings::Settings;

/// Renders the app in `app_dir`: the whole output, or an error (never partial output).
pub async fn generate(app_dir: &Path, settings: &Settings) -> Result<String, CmpError> {
    let work = async {
        let pointers =
            discover::pointers(app_dir, settings.pointer_file.as_deref(), &settings.default_root)?;
        let cache = Cache::new(&settings.cache_dir);
        let limits = Limits::default();
        let mut out = String::new();
        let mut seen = BTreeMap::new();
        for pointer in &pointers {
            let release = fetch(pointer, settings, &cache, &limits).await?;
            emit::objects(&release, pointer, settings.annotate, &mut seen, &mut out)?;
        }
        Ok(out)
    };
    tokio::time::timeout(settings.timeout, work)
        .await
        .unwrap_or(Err(CmpError::Timeout { seconds: settings.timeout.as_secs() }))
}

/// The verified release a pointer names: from the cache when possible, else from its store
/// (and then cached).
async fn fetch(
    pointer: &LoadedPointer,
    settings: &Settings,
    cache: &Cache,
    limits: &Limits,
) -> Result<VerifiedRelease, CmpError> {
    let image = pointer.location.project.to_string();
    let commit = &pointer.pointer.spec.commit;
    let pinned = pointer.pointer.spec.digest.clone();
    let store_error = |source| CmpError::Store { image: image.clone(), source };

    let known = match &pinned {
        Some(digest) => Some(digest.clone()),
        None => cache.digest_for(&image, commit).await,
    };
    if let Some(digest) = &known
        && let Some(raw) = cache.get(digest, limits).await
        && let Ok(release) = raw.verify(limits)
    {
        check_identity(&release, pointer)?;
        return Ok(release);
    }

    let store = Store::open(&pointer.location.project, &settings.registry).map_err(store_error)?;
    let tagged = store.resolve_tag(commit).await.map_err(store_error)?;
    let digest = match (pinned, tagged) {
        (Some(pin), Some(tag)) if pin != tag => {
            return Err(CmpError::PinMismatch {
                image,
                pinned: pin,
                what: format!("the release tagged {commit}, which is {tag}"),
            });
        }
        (Some(pin), _) => pin,
        (None, Some(tag)) => tag,
        (None, None) => return Err(CmpError::ReleaseNotFound { image, commit: commit.clone() }),
    };
    let raw = store.fetch_raw(&digest, limits).await.map_err(store_error)?;
    let release = raw.verify(limits).map_err(store_error)?;
    check_identity(&release, pointer)?;
    if let Err(e) = cache.put(&image, commit, &raw).await {
        // A cache that cannot be written costs speed, not correctness.
        eprintln!("forge-cmp: warning: {e}");
    }
    Ok(release)
}

/// The release must be the pointer's commit and project, whatever digest led to it.
fn check_identity(release: &VerifiedRelease, pointer: &LoadedPointer) -> Result<(), CmpError> {
    let config = &release.head.config;
    let image = pointer.location.project.to_string();
    let mismatch = |what: String| CmpError::PinMismatch {
        image: image.clone(),
        pinned: release.head.digest.clone(),
        what,
    };
    if config.commit != pointer.pointer.spec.commit {
        return Err(mismatch(format!("spec.commit: the release is commit {}", config.commit)));
    }
    if let ProjectLocation::InRoot { path, .. } = &pointer.location.project {
        let expected = format!("{}/{}", config.repository, config.project);
        if !path.ends_with(&expected) {
            return Err(mismatch(format!("spec.image: the release is {expected}")));
        }
    }
    Ok(())
}
