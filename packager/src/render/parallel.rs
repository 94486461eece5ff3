//! Template files checked on every core: parsing YAML is most of a build's work, and files
//! are independent until their objects are compared, which happens afterwards, in order.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Problem;
use super::objects::Checked;

/// What one template file gave: its objects, checked, or its problems.
pub type FileResult = Result<Vec<Checked>, Vec<Problem>>;

/// Threads beyond the caller's: parsing is CPU-bound, and past a few cores the files of one
/// project are too few to share.
const MAX_HELPERS: usize = 7;

/// Runs `on_any_thread` over `files` on every core, taking files in turn, then
/// `on_this_thread`, on this thread, for the files it declined (`None`); the results in file
/// order.
pub fn check_files<A, B>(files: &[PathBuf], on_any_thread: A, on_this_thread: B) -> Vec<FileResult>
where
    A: Fn(&PathBuf) -> Option<FileResult> + Sync,
    B: Fn(&PathBuf) -> FileResult,
{
    let results: Vec<Mutex<Option<FileResult>>> = files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = files.get(index) else { break };
            *lock(&results[index]) = on_any_thread(file);
        }
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, |n| n.get() - 1)
        .min(MAX_HELPERS)
        .min(files.len().saturating_sub(1));
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    // Every file was taken once: those left without a result were declined (Jsonnet, whose
    // evaluator keeps to one thread) and are done here, in order.
    files
        .iter()
        .zip(results)
        .map(|(file, result)| {
            let result = result.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            result.unwrap_or_else(|| on_this_thread(file))
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
