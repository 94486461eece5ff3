//! Image digests: `--resolve-digests` pins images given by tag; `--require-digests` refuses
//! any container image that is not pinned.

use forge_release::objects::ResourceFile;
use forge_release::reference::{ProjectLocation, StoreRoot, split_registry_host};
use serde_json::Value;

use crate::access::Access;
use crate::error::Error;
use crate::images::{ImageRef, images};

/// Fails listing every container image (file and container) not pinned by digest.
pub fn require_pinned(files: &[ResourceFile]) -> Result<(), Error> {
    let mut unpinned = Vec::new();
    for file in files {
        for image in images(&parse(file)?).into_iter().filter(|i| !i.is_pinned()) {
            unpinned.push(format!("{} {}: {}", file.path, image.container, image.image));
        }
    }
    if unpinned.is_empty() {
        return Ok(());
    }
    Err(Error::input(format!(
        "--require-digests: {} container image{} not pinned by digest:\n  {}",
        unpinned.len(),
        if unpinned.len() == 1 { " is" } else { "s are" },
        unpinned.join("\n  ")
    ))
    .with_hint("reference images as @artifact(\"<name>.ref\"), or pass --resolve-digests"))
}

/// Replaces every container image given by tag with `image@sha256:…` looked up in its
/// registry. Every tag that cannot be resolved is reported.
pub async fn pin_images(files: &mut [ResourceFile], access: &Access) -> Result<usize, Error> {
    let mut problems = Vec::new();
    let mut pinned = 0;
    for file in files.iter_mut() {
        let mut value = parse(file)?;
        let mut changed = false;
        for ImageRef { container, image } in images(&value).into_iter().filter(|i| !i.is_pinned()) {
            match lookup(&image, access).await {
                Ok(resolved) => {
                    replace_image(&mut value, &container, &image, &resolved);
                    changed = true;
                    pinned += 1;
                }
                Err(problem) => problems.push(format!("{} {container}: {problem}", file.path)),
            }
        }
        if changed {
            let yaml = forge_release::yaml::to_string(&value)
                .map_err(|e| Error::input(format!("{}: {e}", file.path)))?;
            file.content = yaml.into_bytes();
        }
    }
    if !problems.is_empty() {
        return Err(Error::new(
            crate::error::exit::NOT_FOUND,
            format!("--resolve-digests failed:\n  {}", problems.join("\n  ")),
        ));
    }
    Ok(pinned)
}

async fn lookup(image: &str, access: &Access) -> Result<String, String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match without_digest[last_slash..].rfind(':') {
        Some(i) => (&without_digest[..last_slash + i], &without_digest[last_slash + i + 1..]),
        None => (without_digest, "latest"),
    };
    // Docker Hub is the registry of names without a host; official images live in `library/`.
    let (host, path) = match split_registry_host(name) {
        Some((host, path)) => (host.to_owned(), path.to_owned()),
        None if name.contains('/') => ("registry-1.docker.io".to_owned(), name.to_owned()),
        None => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
    };
    let location = ProjectLocation::InRoot { root: StoreRoot::Registry(host), path };
    let store = access.open(&location).map_err(|e| e.message)?;
    match store.resolve_tag(tag).await {
        Ok(Some(digest)) => Ok(format!("{name}@{digest}")),
        Ok(None) => Err(format!("tag `{tag}` of {name} does not exist")),
        Err(e) => Err(format!("cannot resolve {image}: {e}")),
    }
}

fn replace_image(value: &mut Value, container: &str, from: &str, to: &str) {
    let (list, name) = container.split_once('/').unwrap_or(("containers", container));
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == list
                    && let Value::Array(items) = child
                {
                    for item in items {
                        if item.get("name").and_then(Value::as_str) == Some(name)
                            && item.get("image").and_then(Value::as_str) == Some(from)
                        {
                            item["image"] = Value::String(to.to_owned());
                        }
                    }
                } else {
                    replace_image(child, container, from, to);
                }
            }
        }
        Value::Array(items) => {
            items.iter_mut().for_each(|item| replace_image(item, container, from, to))
        }
        _ => {}
    }
}

fn parse(file: &ResourceFile) -> Result<Value, Error> {
    forge_release::yaml::from_str(&String::from_utf8_lossy(&file.content))
        .map_err(|e| Error::input(format!("{}: {e}", file.path)))
}
