//! Finding the pointer files in the app directory, failing closed: a file that declares, or
//! might declare, a ReleasePointer and cannot be read as exactly one valid pointer fails the
//! whole generate. Skipping it would render the other releases only, and Argo CD would prune
//! the skipped one's objects.

use std::path::{Component, Path, PathBuf};

use forge_release::reference::StoreRoot;
use serde_json::Value;

use crate::error::CmpError;
use crate::pointer::{self, LoadedPointer};

/// The largest file of the app directory read to see whether it is a pointer.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// The word whose presence, in any letter case, makes a file a possible pointer.
const MARK: &str = "releasepointer";

/// Loads the pointers of an app: the named file if one is configured (it must lie inside
/// `dir`), otherwise every `*.yaml`/`*.yml` file (any letter case) directly in `dir` that is a
/// pointer (see
/// [`classify`]). Sorted by file name; two pointers for one image are an error.
pub fn pointers(
    dir: &Path,
    named: Option<&Path>,
    root: &StoreRoot,
) -> Result<Vec<LoadedPointer>, CmpError> {
    // Bounded: a file that is a link to `/dev/zero`, or huge, fails rather than exhausts memory.
    let read = |path: &Path| {
        forge_store::bounded::read_file(path, MAX_FILE_BYTES)
            .map_err(|source| CmpError::ReadPointer { path: path.to_owned(), source })
    };
    if let Some(name) = named {
        let path = confined(dir, name)?;
        let text = String::from_utf8(read(&path)?)
            .map_err(|_| invalid(name, "the file is not UTF-8".into()))?;
        return Ok(vec![pointer::load(name, &text, root)?]);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|source| CmpError::ReadPointer { path: dir.to_owned(), source })?;
    // Every YAML name, in any letter case; one that is not a file (a dangling link, say)
    // fails when read, as it might have been a pointer.
    let mut candidates: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
        })
        .collect();
    candidates.sort();
    let mut found: Vec<LoadedPointer> = Vec::new();
    for path in candidates {
        let shown = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        let text = match classify(&read(&path)?) {
            Kind::NotAPointer => continue,
            Kind::Pointer(text) => text,
            Kind::Unreadable(reason) => return Err(invalid(&shown, reason)),
        };
        let loaded = pointer::load(&shown, &text, root)?;
        if let Some(first) = found.iter().find(|p| p.location.project == loaded.location.project) {
            return Err(CmpError::DuplicatePointer {
                first: first.path.clone(),
                second: loaded.path.clone(),
                image: loaded.location.project.to_string(),
            });
        }
        found.push(loaded);
    }
    if found.is_empty() {
        return Err(CmpError::NoPointer { dir: dir.to_owned() });
    }
    Ok(found)
}

fn invalid(path: &Path, reason: String) -> CmpError {
    CmpError::InvalidPointer { path: path.to_owned(), reason }
}

/// The named pointer file, which must be a relative path inside `dir` (symbolic links
/// included): an Application's parameter must not read the sidecar's other files.
fn confined(dir: &Path, name: &Path) -> Result<PathBuf, CmpError> {
    let outside = || CmpError::PointerOutside { path: name.to_owned() };
    if !name.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(outside());
    }
    let (Ok(base), Ok(resolved)) = (dir.canonicalize(), dir.join(name).canonicalize()) else {
        // A file that does not exist says so when read.
        return Ok(dir.join(name));
    };
    if !resolved.starts_with(&base) {
        return Err(outside());
    }
    Ok(resolved)
}

/// What a YAML file in the app directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// Clearly something else: another kind, or not YAML and no mention of a pointer.
    NotAPointer,
    /// Declares a ReleasePointer: it must be one, validly.
    Pointer(String),
    /// Might be a pointer and cannot be read as one.
    Unreadable(String),
}

/// Sorts a file: a pointer if any document's `kind` is ReleasePointer in any letter case; not
/// a pointer if it parses and no document says so; unreadable if it does not parse (or is
/// not UTF-8) and could still be one — it mentions the word, or escapes could spell it.
pub fn classify(bytes: &[u8]) -> Kind {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return if mentions_mark(bytes) {
            Kind::Unreadable("the file is not UTF-8, and a ReleasePointer must be".into())
        } else {
            Kind::NotAPointer
        };
    };
    let documents: Vec<Value> = match forge_release::yaml::from_multiple(text) {
        Ok(documents) => documents,
        Err(e) if contains_mark(text) || text.contains('\\') => {
            return Kind::Unreadable(format!(
                "it may be a ReleasePointer and is not valid YAML: {}",
                forge_release::yaml::error_summary(&e)
            ));
        }
        Err(_) => return Kind::NotAPointer,
    };
    let declares = |document: &Value| {
        document.as_object().is_some_and(|map| {
            map.iter().any(|(key, value)| {
                key.eq_ignore_ascii_case("kind")
                    && value.as_str().is_some_and(|kind| kind.eq_ignore_ascii_case(MARK))
            })
        })
    };
    match documents.iter().filter(|d| declares(d)).count() {
        0 => Kind::NotAPointer,
        _ if documents.len() > 1 => Kind::Unreadable(format!(
            "a ReleasePointer file holds exactly one document, this one holds {}",
            documents.len()
        )),
        _ => Kind::Pointer(text.to_owned()),
    }
}

fn contains_mark(text: &str) -> bool {
    text.to_ascii_lowercase().contains(MARK)
}

/// Whether bytes that are not UTF-8 spell the word: read as Latin-1 bytes, or as UTF-16 (a
/// BOM-marked UTF-16 YAML file is valid YAML).
fn mentions_mark(bytes: &[u8]) -> bool {
    let latin: String = bytes.iter().map(|b| char::from(*b)).collect();
    if contains_mark(&latin) {
        return true;
    }
    let utf16 = |little: bool| {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| {
                if little {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        contains_mark(&String::from_utf16_lossy(&units))
    };
    utf16(true) || utf16(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTER: &str = "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: a\nspec:\n  image: r.example.com/a/b\n  commit: 0123456789abcdef0123456789abcdef01234567\n";

    #[test]
    fn files_are_pointers_others_or_unreadable() {
        assert_eq!(classify(b"kind: ConfigMap\n"), Kind::NotAPointer);
        assert_eq!(classify(b"{{ .Values.x }}: [\n"), Kind::NotAPointer, "a broken Helm template");
        assert!(matches!(classify(POINTER.as_bytes()), Kind::Pointer(_)));
        assert!(matches!(
            classify(POINTER.replace("ReleasePointer", "releasepointer").as_bytes()),
            Kind::Pointer(_)
        ));
        assert!(matches!(classify(POINTER.replace("kind:", "Kind:").as_bytes()), Kind::Pointer(_)));
        assert!(
            matches!(classify(b"kind: \"Rel\\x65asePointer\"\n"), Kind::Pointer(_)),
            "an escaped kind"
        );
        let unreadable = [
            format!("{POINTER}  extra: [\n"),
            format!("{POINTER}---\nkind: ConfigMap\n"),
            "kind: \"Rel\\x65asePointer\n".to_owned(),
        ];
        for text in unreadable {
            assert!(matches!(classify(text.as_bytes()), Kind::Unreadable(_)), "{text}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_only_if_they_could_be_a_pointer() {
        let mut latin = POINTER.as_bytes().to_vec();
        latin.push(0xff);
        assert!(matches!(classify(&latin), Kind::Unreadable(_)));
        let mut utf16 = vec![0xff, 0xfe];
        for unit in POINTER.encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert!(matches!(classify(&utf16), Kind::Unreadable(_)));
        assert_eq!(classify(&[0xff, 0x00, 0x41]), Kind::NotAPointer);
    }
}
