//! A release's resources layer unpacked on threads of its own while the rest of the release
//! comes in, and stopped (not left running) when the release turns out to be refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use forge_release::FormatError;
use forge_release::tarball::{self, Limits, TarFile, Unpacked};

use crate::emit::{self, Scanned};

/// The files of a layer and what the scan found in each.
type UnpackResult = Result<(Unpacked, Vec<Scanned>), FormatError>;

/// A layer being unpacked, each file run through [`emit::scan`] (unless annotating, which
/// parses every file). Dropped unfinished, it stops at the next file and is waited for.
#[derive(Debug)]
pub struct Unpacking {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<UnpackResult>>,
}

impl Unpacking {
    /// Starts unpacking `layer`, whose bytes were checked against their digest.
    pub fn start(layer: Bytes, limits: Limits, annotate: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            tarball::unpack_until(&layer, &limits, &stopped, |file| scan(file, annotate))
        });
        Unpacking { stop, thread: Some(thread) }
    }

    /// The files and what the scan found in each, once the whole layer is read.
    pub fn finish(mut self) -> UnpackResult {
        let thread = self.thread.take().expect("an unpacking is finished once");
        thread.join().unwrap_or_else(|_| {
            Err(FormatError::NotARelease { reason: "unpacking the resources layer failed".into() })
        })
    }
}

impl Drop for Unpacking {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
    }
}

/// What [`emit::scan`] finds in a file (nothing when annotating, which parses every file).
pub fn scan(file: &TarFile, annotate: bool) -> Scanned {
    if annotate { None } else { emit::scan(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpacking_dropped_unfinished_is_stopped_and_waited_for() {
        use forge_release::objects::{ObjectId, ResourceFile};
        let files: Vec<ResourceFile> = (0..2_000)
            .map(|i| ResourceFile {
                id: ObjectId::new("v1", "ConfigMap", Some("n"), &format!("c{i}")),
                path: format!("n/core.ConfigMap.c{i:05}.yaml"),
                content: format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n")
                    .into_bytes(),
            })
            .collect();
        let (layer, _) =
            forge_release::package::write_resources_layer(&files, 0, Vec::new()).expect("layer");
        let layer = Bytes::from(layer);
        let whole = Unpacking::start(layer.clone(), Limits::default(), false).finish();
        let (unpacked, scanned) = whole.expect("unpacked");
        assert_eq!((unpacked.files.len(), scanned.iter().flatten().count()), (2_000, 2_000));
        let unpacking = Unpacking::start(layer, Limits::default(), false);
        let stop = Arc::clone(&unpacking.stop);
        drop(unpacking);
        assert!(stop.load(Ordering::Relaxed), "told to stop");
        assert_eq!(Arc::strong_count(&stop), 1, "its thread has ended");
    }
}
