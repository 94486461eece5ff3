//! The resources layer written while the templates are still being parsed.
//!
//! Compressing the layer is one deflate stream, the longest single piece of a build, and it
//! takes the objects in path order, which is only certain once every template is parsed. So
//! the order is read from the templates' text first ([`super::predict`]), the templates are
//! parsed in the order the layer needs their objects, and a thread writes each object into the
//! layer as soon as it and every object before it are in. Each object is checked against its
//! place as it comes, and the whole set once it is known; a wrong guess (or a problem anywhere)
//! abandons the early layer, and the build writes the layer afterwards as it otherwise would.
//! Either way the bytes are the same: the same writer takes the same files in the same order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use forge_release::Digest;
use forge_release::metadata::ObjectInfo;
use forge_release::package::{self, LayerInfo, LayerWriter};

use super::RenderedObject;
use super::objects::Checked;
#[cfg(doc)]
use super::predict;

/// A layer being written while the templates are parsed.
#[derive(Debug)]
pub struct EarlyLayer {
    shared: Arc<Shared>,
    /// The layer's paths, in order.
    paths: Arc<Vec<String>>,
    /// For each template file, the places of its objects in the layer.
    places: Vec<Vec<usize>>,
    writer: Option<JoinHandle<Option<Written>>>,
}

/// A layer written early: its bytes, what the metadata says of it and of each object, and the
/// objects' content lengths.
#[derive(Debug)]
pub struct Written {
    /// The compressed layer.
    pub bytes: Vec<u8>,
    /// Its digests and size.
    pub info: LayerInfo,
    /// Each object, in layer order.
    pub objects: Vec<ObjectInfo>,
    /// Each object's content length.
    pub lengths: Vec<u64>,
}

#[derive(Debug, Default)]
struct Shared {
    slots: Mutex<Vec<Option<Entry>>>,
    filled: Condvar,
    abandoned: AtomicBool,
}

#[derive(Debug)]
struct Entry {
    info: ObjectInfo,
    content: Arc<Vec<u8>>,
}

impl EarlyLayer {
    /// Starts writing a layer (every entry with `mtime`) for template files whose objects'
    /// paths are `predicted` (file by file, see [`predict::object_paths`]); with the order in
    /// which to parse the files so that the layer is held up least.
    pub fn start(predicted: Vec<Vec<String>>, mtime: u64) -> Option<(Self, Vec<usize>)> {
        let mut all: Vec<(&str, usize, usize)> = predicted
            .iter()
            .enumerate()
            .flat_map(|(file, paths)| {
                paths.iter().enumerate().map(move |(i, p)| (p.as_str(), file, i))
            })
            .collect();
        all.sort_unstable();
        if all.is_empty() || all.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        let mut places: Vec<Vec<usize>> = predicted.iter().map(|p| vec![0; p.len()]).collect();
        for (place, (_, file, index)) in all.iter().enumerate() {
            places[*file][*index] = place;
        }
        // Files by the first place the layer needs them at; files with no object last.
        let mut order: Vec<usize> = (0..predicted.len()).collect();
        order.sort_by_key(|file| places[*file].iter().min().copied().unwrap_or(usize::MAX));
        let paths: Arc<Vec<String>> = Arc::new(all.iter().map(|(p, ..)| (*p).to_owned()).collect());
        let shared = Arc::new(Shared {
            slots: Mutex::new((0..paths.len()).map(|_| None).collect()),
            ..Shared::default()
        });
        let writer = {
            let (shared, count) = (Arc::clone(&shared), paths.len());
            std::thread::Builder::new()
                .name("layer".into())
                .spawn(move || write(&shared, count, mtime))
                .ok()?
        };
        Some((EarlyLayer { shared, paths, places, writer: Some(writer) }, order))
    }

    /// Hands over what template file `file` gave (on the thread that checked it): its objects
    /// go to their places, unless any is not what was expected there (or is not written
    /// YAML), which abandons the early layer.
    pub fn offer(&self, file: usize, checked: &[Checked]) {
        let places = &self.places[file];
        let entries: Option<Vec<(usize, Entry)>> = (checked.len() == places.len())
            .then(|| {
                checked
                    .iter()
                    .zip(places)
                    .map(|(checked, &place)| {
                        let (id, path, content) = checked.written()?;
                        (path == self.paths[place]).then(|| {
                            let sha256 = Digest::of(content);
                            let info = ObjectInfo { id: id.clone(), path: path.to_owned(), sha256 };
                            (place, Entry { info, content: Arc::clone(content) })
                        })
                    })
                    .collect()
            })
            .flatten();
        let Some(entries) = entries else {
            return self.abandon();
        };
        let mut slots = lock(&self.shared.slots);
        for (place, entry) in entries {
            slots[place] = Some(entry);
        }
        self.shared.filled.notify_all();
    }

    /// The layer, if `objects` (every object rendered, sorted by path) are the ones written
    /// into it, in its order; `None` when the early layer was abandoned or they are not.
    pub fn finish(mut self, objects: &[RenderedObject]) -> Option<Written> {
        let same = objects.len() == self.paths.len()
            && objects.iter().zip(self.paths.iter()).all(|(object, path)| object.path == *path);
        if !same {
            return None;
        }
        let written = self.writer.take()?.join().ok()??;
        let ids = written.objects.iter().zip(objects).all(|(info, object)| info.id == object.id);
        ids.then_some(written)
    }

    fn abandon(&self) {
        self.shared.abandoned.store(true, Ordering::Relaxed);
        let _slots = lock(&self.shared.slots);
        self.shared.filled.notify_all();
    }
}

impl Drop for EarlyLayer {
    /// Abandoned unfinished: the writing thread stops and is waited for.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            self.abandon();
            let _ = writer.join();
        }
    }
}

/// The writing thread: each object in turn, once it is in. A set readers would refuse is
/// given up at once (writing it afterwards refuses it, saying why).
fn write(shared: &Shared, count: usize, mtime: u64) -> Option<Written> {
    let limits = forge_release::tarball::Limits::default();
    if count as u64 > limits.max_files {
        return None;
    }
    let mut layer = LayerWriter::new(mtime, Vec::new());
    let (mut objects, mut lengths) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let mut unpacked = package::TAR_END;
    for place in 0..count {
        let entry = {
            let mut slots = lock(&shared.slots);
            loop {
                if shared.abandoned.load(Ordering::Relaxed) {
                    return None;
                }
                if let Some(entry) = slots[place].take() {
                    break entry;
                }
                slots = shared.filled.wait(slots).unwrap_or_else(PoisonError::into_inner);
            }
        };
        unpacked += package::tar_entry_bytes(entry.content.len() as u64);
        if unpacked > limits.max_unpacked_bytes {
            return None;
        }
        layer.append(&entry.info.path, &entry.content).ok()?;
        lengths.push(entry.content.len() as u64);
        objects.push(entry.info);
    }
    let (bytes, info) = layer.finish().ok()?;
    Some(Written { bytes, info, objects, lengths })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::artifacts::ArtifactResolver;
    use crate::render::objects::{self, Collector, Keep, SourcedObject};

    /// Two template files: a Deployment and a Namespace, then a ConfigMap.
    fn templates() -> Vec<Vec<serde_json::Value>> {
        let object = |kind: &str, namespace: Option<&str>, name: &str| {
            let mut metadata = json!({"name": name});
            if let Some(namespace) = namespace {
                metadata["namespace"] = json!(namespace);
            }
            json!({"apiVersion": if kind == "Deployment" { "apps/v1" } else { "v1" },
                   "kind": kind, "metadata": metadata, "data": {"k": name.repeat(50)}})
        };
        vec![
            vec![object("Deployment", Some("auth"), "api"), object("Namespace", None, "auth")],
            vec![object("ConfigMap", Some("auth"), "settings")],
        ]
    }

    fn checked(resolver: &ArtifactResolver, file: &[serde_json::Value]) -> Vec<Checked> {
        file.iter()
            .map(|value| {
                let sourced =
                    SourcedObject { file: "t.yaml".into(), document: 1, value: value.clone() };
                objects::check(resolver, Keep::None, sourced)
            })
            .collect()
    }

    fn paths(file: &[serde_json::Value]) -> Vec<String> {
        file.iter()
            .map(|v| {
                forge_release::objects::ObjectId::of(v).expect("id").file_path().expect("path")
            })
            .collect()
    }

    #[test]
    fn an_early_layer_is_the_layer_written_afterwards() {
        let resolver = ArtifactResolver::default();
        let files = templates();
        let (layer, order) =
            EarlyLayer::start(files.iter().map(|f| paths(f)).collect(), 1_700_000_000)
                .expect("start");
        // The Namespace (`_cluster/...`) comes first in the layer: its file is parsed first.
        assert_eq!(order, [0, 1]);
        let mut collector = Collector::new(&resolver, Keep::None);
        for index in [1, 0] {
            let checked = checked(&resolver, &files[index]);
            layer.offer(index, &checked);
            checked.into_iter().for_each(|c| collector.accept(c));
        }
        let objects = collector.finish().objects;
        let mut sorted = objects.clone();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        let written = layer.finish(&sorted).expect("the early layer");
        let resource_files: Vec<_> =
            sorted.into_iter().map(|o| o.into_file().expect("file")).collect();
        let afterwards =
            forge_release::package::ResourcesLayer::build(resource_files, 1_700_000_000)
                .expect("layer");
        assert_eq!((written.bytes, written.info), (afterwards.bytes.to_vec(), afterwards.info));
        assert_eq!(written.objects, afterwards.objects);
    }

    #[test]
    fn a_wrong_guess_or_an_unfinished_layer_is_abandoned() {
        let resolver = ArtifactResolver::default();
        let files = templates();
        let render = |guessed: Vec<Vec<String>>| {
            let (layer, _) = EarlyLayer::start(guessed, 0).expect("start");
            let mut collector = Collector::new(&resolver, Keep::None);
            for (index, file) in files.iter().enumerate() {
                let checked = checked(&resolver, file);
                layer.offer(index, &checked);
                checked.into_iter().for_each(|c| collector.accept(c));
            }
            let mut objects = collector.finish().objects;
            objects.sort_by(|a, b| a.path.cmp(&b.path));
            layer.finish(&objects)
        };
        let right: Vec<Vec<String>> = files.iter().map(|f| paths(f)).collect();
        // The same paths, but the first file's two objects guessed the other way round: each
        // object is refused at the place it was guessed for, before the whole set is known.
        let mut swapped = right.clone();
        swapped[0].reverse();
        assert!(render(swapped).is_none(), "objects out of their guessed places are not used");
        let mut other = right.clone();
        other[1][0] = "auth/core.ConfigMap.other.yaml".into();
        assert!(render(other).is_none(), "a wrong guess is not used");
        assert!(render(right).is_some(), "the right guess is");
        // Nothing offered: dropping it stops its writer (the test would hang otherwise).
        let (unfinished, _) =
            EarlyLayer::start(files.iter().map(|f| paths(f)).collect(), 0).expect("start");
        drop(unfinished);
    }
}
