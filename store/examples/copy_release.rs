//! Benchmark driver: uploads one release from an OCI layout to a registry repository, the
//! way `push` uploads a built release.
//!
//! Usage: copy_release LAYOUT_DIR TAG HOST/REPOSITORY

use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_release::tarball::Limits;
use forge_store::registry::RegistryOptions;
use forge_store::{LayoutStore, Store};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, layout, tag, dest] = args.as_slice() else {
        panic!("usage: copy_release LAYOUT_DIR TAG HOST/REPOSITORY")
    };
    let (host, repository) = dest.split_once('/').expect("HOST/REPOSITORY");
    let source = Store::Layout(LayoutStore::new(layout));
    let location =
        ProjectLocation::InRoot { root: StoreRoot::Registry(host.into()), path: repository.into() };
    let target = Store::open(&location, &RegistryOptions::default()).expect("registry");
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let digest = source.resolve_tag(tag).await.expect("resolve").expect("tag exists");
        let image = source.fetch_image(&digest, &Limits::default()).await.expect("read layout");
        target.put_image(&image, &|_, _| {}).await.expect("upload");
        target.set_tag(tag, &digest, &image.manifest_bytes).await.expect("tag");
    });
}
