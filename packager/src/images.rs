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

/// A container image reference taken apart the way container runtimes read it: a first
/// component with a `.` or `:` (or `localhost`) is a registry host, anything else is on
/// Docker Hub, whose one-component names live under `library/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The registry host as nodes name it (`docker.io` for Docker Hub).
    pub host: String,
    /// The repository path.
    pub path: String,
    /// The tag, if the reference has one.
    pub tag: Option<String>,
    /// The digest, if the reference pins one.
    pub digest: Option<forge_release::Digest>,
}

impl ImageName {
    /// Takes `image` apart; `None` for what no runtime would pull.
    pub fn parse(image: &str) -> Option<ImageName> {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest.parse().ok()?)),
            None => (image, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_owned())),
            None => (name, None),
        };
        let (host, path) = match forge_release::reference::split_registry_host(name) {
            Some((host, path)) => (host.to_owned(), path.to_owned()),
            None if name.contains('/') => ("docker.io".to_owned(), name.to_owned()),
            None => ("docker.io".to_owned(), format!("library/{name}")),
        };
        let valid = is_host(&host)
            && path.split('/').all(crate::config::is_path_component)
            && tag.as_deref().is_none_or(is_tag);
        valid.then_some(ImageName { host, path, tag, digest })
    }

    /// The host to connect to (Docker Hub's API is not at `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.host == "docker.io" { "registry-1.docker.io" } else { &self.host }
    }

    /// Its repository, for opening a store.
    pub fn location(&self) -> forge_release::reference::ProjectLocation {
        forge_release::reference::ProjectLocation::InRoot {
            root: forge_release::reference::StoreRoot::Registry(self.api_host().to_owned()),
            path: self.path.clone(),
        }
    }

    /// Where a mirror keeps it: `<host>/<path>`, the host's `:` (a port) as `_`, so that a
    /// registry mirror configured per upstream host (containerd's `hosts.toml` with
    /// `override_path`, CRI-O's `registries.conf`) finds it under `<mirror>/<prefix>/<host>`.
    pub fn mirror_path(&self) -> String {
        format!("{}/{}", self.host.replace(':', "_"), self.path)
    }

    /// `host/path[:tag]`, fully spelled out.
    pub fn canonical(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}/{}:{tag}", self.host, self.path),
            None => format!("{}/{}", self.host, self.path),
        }
    }
}

/// A registry host: DNS labels or an IPv4 address, with an optional port.
fn is_host(host: &str) -> bool {
    let (name, port) = host.split_once(':').unwrap_or((host, "1"));
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.split('.').all(label)
        && !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= 128
        && tag.bytes().next().is_some_and(ok)
        && tag.bytes().all(|b| ok(b) || b == b'.' || b == b'-')
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
    fn image_names_are_read_as_runtimes_read_them() {
        let hub = ImageName::parse("nginx:1.25").expect("valid");
        assert_eq!((hub.host.as_str(), hub.path.as_str()), ("docker.io", "library/nginx"));
        assert_eq!(hub.tag.as_deref(), Some("1.25"));
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        let org = ImageName::parse("bitnami/redis").expect("valid");
        assert_eq!((org.path.as_str(), org.tag), ("bitnami/redis", None));
        let digest = format!("sha256:{}", "a".repeat(64));
        let local =
            ImageName::parse(&format!("localhost:5000/team/api:v1@{digest}")).expect("valid");
        assert_eq!(local.host, "localhost:5000");
        assert_eq!(local.digest.as_ref().map(|d| d.to_string()), Some(digest));
        assert_eq!(local.mirror_path(), "localhost_5000/team/api");
        assert_eq!(local.canonical(), "localhost:5000/team/api:v1");
        assert!(ImageName::parse("repo@sha256:short").is_none());
        assert!(ImageName::parse("bad name").is_none());
        // Nothing that could climb out of, or escape, the repository it is mirrored to.
        for hostile in [
            "example.com/../admin/x",
            "example.com/a/./b",
            "example.com/a//b",
            "example.com/a/b?x=1",
            "example.com/A/b",
            "example.com/a/b:../../x",
            "exa_mple.com/a/b",
            "example.com:99999x/a",
        ] {
            assert!(ImageName::parse(hostile).is_none(), "{hostile}");
        }
        assert!(ImageName::parse("quay.io/a__b/c-d--e.f:v1.2_3").is_some());
    }

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
