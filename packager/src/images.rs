//! Container images referenced by Kubernetes objects.

use serde_json::Value;

/// The keys that hold container lists in pod specs.
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// One container image reference and where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageRef {
    /// `containers/<name>`, `initContainers/<name>`, ...
    pub container: String,
    /// The image reference as written.
    pub image: String,
}

impl ImageRef {
    /// Whether the image is pinned by digest (`...@sha256:<64 hex>`).
    pub fn is_pinned(&self) -> bool {
        self.image
            .rsplit_once('@')
            .is_some_and(|(_, digest)| digest.parse::<forge_release::Digest>().is_ok())
    }
}

/// The release's image inventory: every image the objects run, once each, sorted, with the
/// objects that run it and its digest when the reference pins one.
pub fn inventory(
    objects: &[crate::render::RenderedObject],
) -> Vec<forge_release::metadata::ContainerImage> {
    let mut by_image: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for object in objects {
        for image in &object.images {
            let users = by_image.entry(image.image.as_str()).or_default();
            let id = object.id.to_string();
            if !users.contains(&id) {
                users.push(id);
            }
        }
    }
    by_image
        .into_iter()
        .map(|(image, objects)| forge_release::metadata::ContainerImage {
            image: image.to_owned(),
            digest: image
                .rsplit_once('@')
                .map(|(_, d)| d)
                .filter(|d| d.parse::<forge_release::Digest>().is_ok())
                .map(str::to_owned),
            objects,
        })
        .collect()
}

/// Every container image in `object` (pods, workload templates, cron job templates, and any
/// other pod spec nested inside), in document order.
pub fn images(object: &Value) -> Vec<ImageRef> {
    let mut found = Vec::new();
    collect(object, &mut found);
    found
}

fn collect(value: &Value, found: &mut Vec<ImageRef>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if CONTAINER_LISTS.contains(&key.as_str())
                    && let Value::Array(containers) = child
                {
                    for container in containers {
                        let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
                        if let Some(image) = container.get("image").and_then(Value::as_str) {
                            found.push(ImageRef {
                                container: format!("{key}/{name}"),
                                image: image.to_owned(),
                            });
                        }
                    }
                } else {
                    collect(child, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_images_in_every_pod_bearing_kind() {
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [{"name": "job", "image": format!("r.example.com/job@sha256:{}", "a".repeat(64))}]
        }}}}}});
        let found = images(&cron);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].container, "initContainers/init");
        assert!(!found[0].is_pinned());
        assert!(found[1].is_pinned());
        let pod = json!({"kind": "Pod", "spec": {"ephemeralContainers": [{"name": "dbg", "image": "alpine"}]}});
        assert_eq!(images(&pod)[0].container, "ephemeralContainers/dbg");
    }
}
