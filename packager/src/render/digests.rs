//! Image checks on rendered objects: `--resolve-digests` pins images given by tag;
//! `--require-digests` refuses any container image that is not pinned.

use serde_json::Value;

use super::{Content, RenderError, RenderedObject};
use crate::access::Access;
use crate::cli::ArtifactArgs;
use crate::images::{ImageName, ImageRef, images};

/// `--resolve-digests` then `--require-digests`, as `inputs` asks; returns how many images
/// were pinned. Objects kept as values for pinning stay values until written.
pub async fn check_images(
    objects: &mut [RenderedObject],
    inputs: &ArtifactArgs,
    access: &Access,
) -> Result<usize, RenderError> {
    let pinned = if inputs.resolve_digests { pin_images(objects, access).await? } else { 0 };
    if inputs.require_digests {
        require_pinned(objects)?;
    }
    Ok(pinned)
}

/// Fails listing every container image (file and container) not pinned by digest.
pub fn require_pinned(objects: &[RenderedObject]) -> Result<(), RenderError> {
    let mut unpinned = Vec::new();
    for object in objects {
        for image in object.images.iter().filter(|i| !i.is_pinned()) {
            unpinned.push(format!("{} {}: {}", object.path, image.container, image.image));
        }
    }
    if unpinned.is_empty() {
        return Ok(());
    }
    Err(RenderError::Unpinned { unpinned })
}

/// Replaces every container image given by tag with `image@sha256:…` looked up in its
/// registry, in the objects kept as values (see [`super::Keep::Unpinned`]). Every tag that
/// cannot be resolved is reported.
pub async fn pin_images(
    objects: &mut [RenderedObject],
    access: &Access,
) -> Result<usize, RenderError> {
    let mut problems = Vec::new();
    let mut pinned = 0;
    for object in objects.iter_mut() {
        let Content::Value(value) = &mut object.content else { continue };
        for ImageRef { container, image } in object.images.iter().filter(|i| !i.is_pinned()) {
            match lookup(image, access).await {
                Ok(resolved) => {
                    replace_image(value, container, image, &resolved);
                    pinned += 1;
                }
                Err(problem) => problems.push(format!("{} {container}: {problem}", object.path)),
            }
        }
        object.images = images(value);
    }
    if !problems.is_empty() {
        return Err(RenderError::Pinning { problems });
    }
    Ok(pinned)
}

async fn lookup(image: &str, access: &Access) -> Result<String, String> {
    let name =
        ImageName::parse(image).ok_or_else(|| format!("`{image}` is not an image reference"))?;
    let tag = name.tag.as_deref().unwrap_or("latest");
    let written = image.split('@').next().unwrap_or(image);
    let written = written.strip_suffix(&format!(":{tag}")).unwrap_or(written);
    let store = access.open(&name.location()).map_err(|e| e.to_string())?;
    match store.resolve_tag(tag).await {
        Ok(Some(digest)) => Ok(format!("{written}@{digest}")),
        Ok(None) => Err(format!("tag `{tag}` of {written} does not exist")),
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
