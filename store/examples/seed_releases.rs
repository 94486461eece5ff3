//! Benchmark driver: writes N small releases (commits 1..=N, numbers 1..=N, aliases
//! `main-<n>`) into a registry repository, so `list` can be measured on a realistic tag set.
//! It writes blobs, manifests and tags directly rather than through `publish`, whose number
//! allocation lists every tag each time, then records them all in the release index at once,
//! as the pushes would have one by one.
//!
//! Usage: seed_releases HOST/REPOSITORY N

use forge_release::metadata::{Person, SourceInfo, ToolInfo, Trigger, TriggerKind};
use forge_release::objects::{ObjectId, ResourceFile};
use forge_release::package::{ReleaseInput, ResourcesLayer};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::registry::RegistryOptions;
use forge_store::{Store, release_index};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dest, count] = args.as_slice() else {
        panic!("usage: seed_releases HOST/REPOSITORY N")
    };
    let count: u64 = count.parse().expect("N");
    let (host, repository) = dest.split_once('/').expect("HOST/REPOSITORY");
    let location =
        ProjectLocation::InRoot { root: StoreRoot::Registry(host.into()), path: repository.into() };
    let store = Store::open(&location, &RegistryOptions::default()).expect("registry");
    let person = Person { name: "bench".into(), email: "bench@example.com".into() };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut entries = Vec::new();
    for i in 1..=count {
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("bench".into()),
            name: "settings".into(),
        };
        let body = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: bench\ndata:\n  build: \"{i}\"\n"
        );
        let input = ReleaseInput {
            repository: "bench".into(),
            project: "app".into(),
            trigger: Trigger::new(TriggerKind::BranchPush, Some("main".into()), None),
            source: SourceInfo {
                repository_url: None,
                commit: format!("{i:040x}"),
                author: person.clone(),
                committer: person.clone(),
                commit_time: "2024-05-01T12:00:00Z".into(),
                message: String::new(),
                branch: Some("main".into()),
                tags: Vec::new(),
                files: Vec::new(),
            },
            commit_time: 1_714_564_800,
            artifacts: Vec::new(),
            manifests: Vec::new(),
            resources: ResourcesLayer::build(
                vec![ResourceFile::new(id, body.into_bytes()).expect("id")],
                1_714_564_800,
            )
            .expect("layer"),
            images: Vec::new(),
            tool: ToolInfo { name: "bench".into(), version: "0".into() },
        };
        let aliases = [i.to_string(), format!("main-{i}")];
        let release = forge_release::package::package(&input, i, &aliases).expect("package");
        runtime.block_on(async {
            for (descriptor, bytes) in release.blobs() {
                store.put_blob(&descriptor.digest, bytes).await.expect("blob");
            }
            store.put_manifest(&release.digest, &release.manifest_bytes).await.expect("manifest");
            for tag in [input.source.commit.clone(), i.to_string(), format!("main-{i}")] {
                store.set_tag(&tag, &release.digest, &release.manifest_bytes).await.expect("tag");
            }
        });
        entries.extend(release_index::entry_of(&release.digest, &release.manifest_bytes, &aliases));
    }
    runtime.block_on(release_index::record(&store, &entries)).expect("release index");
}
