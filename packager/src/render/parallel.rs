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

/// Runs `on_any_thread` over `files` (with their index) on every core but `reserved` ones,
/// taking files in turn in `order` (file order if none), then `on_this_thread`, on this
/// thread, for the files it declined (`None`); the results in file order.
pub fn check_files<A, B>(
    files: &[PathBuf],
    (order, reserved): (Option<&[usize]>, usize),
    on_any_thread: A,
    on_this_thread: B,
) -> Vec<FileResult>
where
    A: Fn(usize, &PathBuf) -> Option<FileResult> + Sync,
    B: Fn(&PathBuf) -> FileResult,
{
    let results = map(files.len(), (order, reserved), |index| on_any_thread(index, &files[index]));
    // Every file was taken once: those left without a result were declined (Jsonnet, whose
    // evaluator keeps to one thread) and are done here, in order.
    files
        .iter()
        .zip(results)
        .map(|(file, result)| result.unwrap_or_else(|| on_this_thread(file)))
        .collect()
}

/// Runs `each` over `0..count` on every core, taking indexes in turn in `order` (ascending if
/// none); the results by index.
pub fn map_indexes<T: Send>(
    count: usize,
    order: Option<&[usize]>,
    each: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    map(count, (order, 0), |index| Some(each(index)))
        .into_iter()
        .map(|result| result.expect("every index is taken"))
        .collect()
}

fn map<T: Send>(
    count: usize,
    (order, reserved): (Option<&[usize]>, usize),
    each: impl Fn(usize) -> Option<T> + Sync,
) -> Vec<Option<T>> {
    debug_assert!(order.is_none_or(|order| {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        sorted.into_iter().eq(0..count)
    }));
    let results: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let taken = next.fetch_add(1, Ordering::Relaxed);
            if taken >= count {
                break;
            }
            let index = order.map_or(taken, |order| order[taken]);
            *lock(&results[index]) = each(index);
        }
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1 + reserved))
        .min(MAX_HELPERS)
        .min(count.saturating_sub(1));
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    results
        .into_iter()
        .map(|result| result.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
