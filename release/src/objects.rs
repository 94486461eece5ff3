//! Rendered Kubernetes objects as files of a release, and the tarball path scheme.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;

/// Kinds that are cluster-scoped in Kubernetes and common add-ons; their files live under
/// `_cluster/`. Namespaced objects without a namespace live under `_default/` (Argo CD puts
/// them in the Application's destination namespace).
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// The identity of a Kubernetes object: group/kind/namespace/name (plus the version it was
/// written in). Every part of forge-pack that names an object uses this one type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

/// Why an object cannot be named as a file.
#[derive(Debug, thiserror::Error)]
#[error("object {object}: {reason}")]
pub struct InvalidObjectId {
    /// The object, as `kind/name`.
    pub object: String,
    /// What is wrong.
    pub reason: String,
}

impl ObjectId {
    /// An identity from its parts.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectId {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The identity of a Kubernetes object given as a value: a mapping with string
    /// `apiVersion`, `kind` and `metadata.name`, and an optional string `metadata.namespace`.
    /// The error says what is missing or of the wrong type.
    pub fn of(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "expected a Kubernetes object (a mapping), found {}",
                type_name(value)
            ));
        };
        let string_field = |name: &str| match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(other) => {
                Err(format!("`{name}` must be a non-empty string, found {}", type_name(other)))
            }
            None => Err(format!("missing `{name}`")),
        };
        let api_version = string_field("apiVersion")?;
        let kind = string_field("kind")?;
        let Some(Value::Object(metadata)) = map.get("metadata") else {
            return Err(format!("{kind}: missing `metadata` mapping"));
        };
        let name = match metadata.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => return Err(format!("{kind}: missing `metadata.name`")),
        };
        let namespace = match metadata.get("namespace") {
            None | Some(Value::Null) => None,
            Some(Value::String(ns)) if !ns.is_empty() => Some(ns.clone()),
            Some(other) => {
                return Err(format!(
                    "{kind}/{name}: `metadata.namespace` must be a string, found {}",
                    type_name(other)
                ));
            }
        };
        Ok(ObjectId { api_version, kind, namespace, name })
    }

    /// The API group (`core` for the legacy group).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _version)) => group,
            None => "core",
        }
    }

    /// Path of the object's file inside the resources tarball:
    /// `<namespace | _cluster | _default>/<group>.<kind>.<name>.yaml`.
    pub fn file_path(&self) -> Result<String, InvalidObjectId> {
        self.check()?;
        let dir = match &self.namespace {
            Some(namespace) => namespace.as_str(),
            None if CLUSTER_SCOPED_KINDS.contains(&self.kind.as_str()) => "_cluster",
            None => "_default",
        };
        Ok(format!("{dir}/{}.{}.{}.yaml", self.group(), self.kind, self.name))
    }

    fn check(&self) -> Result<(), InvalidObjectId> {
        let fail = |reason: String| Err(InvalidObjectId { object: self.to_string(), reason });
        if self.kind.is_empty() || !self.kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return fail(format!("kind `{}` must be alphanumeric", self.kind));
        }
        let group = self.group();
        if group.is_empty()
            || !group.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return fail(format!("apiVersion `{}` has an invalid group", self.api_version));
        }
        for (field, value) in
            [("metadata.name", Some(&self.name)), ("metadata.namespace", self.namespace.as_ref())]
        {
            let Some(value) = value else { continue };
            if value.is_empty()
                || value.len() > 253
                || value.starts_with('.')
                || value.starts_with('_')
            {
                return fail(format!("{field} `{value}` is not a valid Kubernetes name"));
            }
            if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:@".contains(&b)) {
                return fail(format!(
                    "{field} `{value}` contains characters Kubernetes does not allow"
                ));
            }
        }
        Ok(())
    }
}

/// Reads a released object file: UTF-8 text holding exactly one YAML document, read with the
/// rules every forge-pack tool reads YAML with. The error says what is wrong, not where.
pub fn read_object(content: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(content).map_err(|_| "the file is not UTF-8".to_owned())?;
    let mut documents: Vec<Value> =
        crate::yaml::from_multiple(text).map_err(|e| crate::yaml::error_summary(&e))?;
    match documents.len() {
        1 => Ok(documents.remove(0)),
        n => Err(format!("the file holds {n} documents, expected exactly one")),
    }
}

/// How a value's type is named in messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {}/{}", self.group(), self.kind, ns, self.name),
            None => write!(f, "{}/{} {}", self.group(), self.kind, self.name),
        }
    }
}

/// One rendered object: its identity and the exact YAML bytes stored in the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFile {
    /// The object's identity.
    pub id: ObjectId,
    /// Path inside the tarball.
    pub path: String,
    /// The YAML document (no leading `---`).
    pub content: Vec<u8>,
}

impl ResourceFile {
    /// Names `content` by the object's identity.
    pub fn new(id: ObjectId, content: Vec<u8>) -> Result<Self, InvalidObjectId> {
        let path = id.file_path()?;
        Ok(ResourceFile { id, path, content })
    }

    /// Digest of the file content.
    pub fn sha256(&self) -> Digest {
        Digest::of(&self.content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn paths_name_namespace_group_kind_and_name() {
        let path = |i: ObjectId| i.file_path().expect("valid id");
        assert_eq!(
            path(id("apps/v1", "Deployment", Some("web"), "api")),
            "web/apps.Deployment.api.yaml"
        );
        assert_eq!(path(id("v1", "ConfigMap", None, "cfg")), "_default/core.ConfigMap.cfg.yaml");
        assert_eq!(
            path(id("rbac.authorization.k8s.io/v1", "ClusterRole", None, "system:reader")),
            "_cluster/rbac.authorization.k8s.io.ClusterRole.system:reader.yaml"
        );
    }

    #[test]
    fn names_that_could_escape_the_tarball_are_rejected() {
        for bad in ["../etc", "a/b", "", ".", "x\0y", "_cluster"] {
            let err = id("v1", "ConfigMap", None, bad).file_path();
            assert!(err.is_err(), "{bad:?} must be rejected");
        }
        assert!(id("v1", "ConfigMap", Some(".."), "x").file_path().is_err());
        assert!(id("v1", "Config/Map", None, "x").file_path().is_err());
    }
}
