//! The files in plugin/ are what Argo CD and forge-cmp accept.

use std::path::PathBuf;

use forge_release::reference::StoreRoot;
use serde_json::Value;

fn plugin_file(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugin").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

#[test]
fn the_example_pointer_is_valid() {
    let (path, text) = plugin_file("release-pointer.example.yaml");
    let loaded = forge_cmp::pointer::load(&path, &text, &StoreRoot::Layouts("/unused".into()))
        .expect("valid pointer");
    assert_eq!(loaded.pointer.spec.release, Some(42));
    let (_, schema) = plugin_file("release-pointer.schema.json");
    let schema: Value = serde_json::from_str(&schema).expect("schema is JSON");
    assert_eq!(schema["properties"]["kind"]["const"], "ReleasePointer");
}

/// Argo CD's own checks (cmpserver/plugin/config.go): kind, a non-empty name, a generate
/// command; and the socket name Applications must use is `<name>-<version>`.
#[test]
fn plugin_yaml_passes_argo_cd_validation() {
    let (_, text) = plugin_file("plugin.yaml");
    let config: Value = serde_saphyr::from_str(&text).expect("plugin.yaml parses");
    assert_eq!(config["kind"], "ConfigManagementPlugin");
    assert_eq!(config["spec"]["generate"]["command"], serde_json::json!(["forge-cmp", "generate"]));
    assert!(config["spec"].get("discover").is_none(), "Applications name the plugin; no discovery");
    let socket = format!(
        "{}-{}",
        config["metadata"]["name"].as_str().unwrap_or_default(),
        config["spec"]["version"].as_str().unwrap_or_default()
    );
    let (_, application) = plugin_file("application.yaml");
    let application: Value = serde_saphyr::from_str(&application).expect("application parses");
    assert_eq!(application["spec"]["source"]["plugin"]["name"], socket.as_str());
}

/// The shipped sidecar configuration is one forge-cmp accepts, and it allows what it says.
#[test]
fn the_shipped_sidecar_configuration_is_valid() {
    let (_, text) = plugin_file("sidecar/forge-cmp-config.yaml");
    let config_map: Value = serde_saphyr::from_str(&text).expect("the ConfigMap parses");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config_map["data"]["config.yaml"].as_str().expect("config.yaml"))
        .expect("write");
    let config = forge_cmp::tenancy::SidecarConfig::load(&path).expect("a valid SidecarConfig");
    let location = |image: &str| {
        let (host, path) = image.split_once('/').expect("host/path");
        forge_release::reference::ProjectLocation::InRoot {
            root: StoreRoot::Registry(host.into()),
            path: path.into(),
        }
    };
    assert!(config.admit(Some("team-a"), &location("registry.example.com/team-a/app")).is_ok());
    assert!(config.admit(Some("team-a"), &location("registry.example.com/team-b/app")).is_err());
    assert!(config.admit(Some("default"), &location("registry.example.com/shared/x")).is_ok());
    assert!(!config.local_layouts);
}
