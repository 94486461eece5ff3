//! Seals on the cache's rendered outputs, made with a key kept off the cache volume.
//!
//! A warm generate has to show that a cached output is what was rendered from the verified
//! release its pointer names, although whoever can write the cache volume can rewrite any file
//! in it. Checking every document against the SHA-256 digests in the release's metadata does
//! that, but at tens of megabytes the hashing alone is many times the cost of reading the file.
//! So the output is sealed when it is rendered from the verified release: a MAC (keyed BLAKE3,
//! several GB/s) over the release's digest, commit, name and the output, in segments that are
//! each checked before they are written. The key is 32 random bytes in a file outside the
//! cache volume (the sidecar's own `/tmp`, or a Secret): without it no one can make a seal, and
//! an output without a valid seal is a miss, rendered again from the release.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use forge_release::Digest;

use crate::error::CmpError;

/// Bytes of output per sealed segment: each is checked before it is written.
pub const SEGMENT: usize = 256 << 10;

/// Keys are derived from the key file's bytes for this purpose only.
const KEY_CONTEXT: &str = "forge-cmp 2026-11 rendered-output seal v1";

/// Where the sealing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file the operator provides (`FORGE_CMP_CACHE_KEY_FILE`, e.g. from a Secret): it must
    /// be usable, or `generate` fails.
    File(PathBuf),
    /// The sidecar's own file, made on first use: `forge-cmp-<uid>.key` in the temp directory
    /// (the sidecar's `/tmp` volume), owned by this user and readable by no one else. If it
    /// cannot be used, outputs are not sealed (each generate renders from the cached release).
    Default(PathBuf),
}

impl KeySource {
    /// The default key file for this user, in `temp_dir`.
    pub fn default_in(temp_dir: &Path) -> Self {
        KeySource::Default(
            temp_dir.join(format!("forge-cmp-{}.key", rustix::process::geteuid().as_raw())),
        )
    }
}

/// The key that makes and checks seals.
#[derive(Clone)]
pub struct SealKey {
    key: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The key from `source`, which must not lie in `cache_dir`. `None` when the default key
    /// cannot be used (a warning says why); an operator's key file that cannot be used is an
    /// error.
    pub fn load(source: &KeySource, cache_dir: &Path) -> Result<Option<Self>, CmpError> {
        match source {
            KeySource::File(path) => {
                let refuse = |reason: String| CmpError::Setting {
                    name: "FORGE_CMP_CACHE_KEY_FILE".into(),
                    value: path.display().to_string(),
                    reason,
                };
                if within(path, cache_dir) {
                    return Err(refuse(format!(
                        "the key must not be in the cache volume ({}): whoever can write that \
                         volume could read it",
                        cache_dir.display()
                    )));
                }
                let material = read_key_file(path).map_err(refuse)?;
                Ok(Some(Self::from_material(&material)))
            }
            KeySource::Default(path) => {
                let loaded = if within(path, cache_dir) {
                    Err(format!("it would be in the cache directory {}", cache_dir.display()))
                } else {
                    own_key(path)
                };
                match loaded {
                    Ok(material) => Ok(Some(Self::from_material(&material))),
                    Err(reason) => {
                        eprintln!(
                            "forge-cmp: warning: cached outputs are not sealed (each generate renders from the cached release): the key {}: {reason}; set FORGE_CMP_CACHE_KEY_FILE to a file of 32 random bytes outside the cache",
                            path.display()
                        );
                        Ok(None)
                    }
                }
            }
        }
    }

    fn from_material(material: &[u8]) -> Self {
        SealKey { key: blake3::derive_key(KEY_CONTEXT, material) }
    }

    /// A fixed key, for tests.
    #[cfg(test)]
    pub(crate) fn for_tests(byte: u8) -> Self {
        Self::from_material(&[byte; 32])
    }

    /// A short name for the key, recorded in seals: a seal made with another key (before the
    /// sidecar restarted with a fresh `/tmp`, say) is a miss, not damage.
    pub fn id(&self) -> String {
        self.mac("key id").finalize().to_hex()[..16].to_owned()
    }

    fn mac(&self, what: &str) -> blake3::Hasher {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        put_text(&mut hasher, what);
        hasher
    }

    /// The tag of segment `index` of the output rendered from release `digest`, `total` bytes
    /// long: bound to its place, so segments cannot be moved between outputs or within one.
    pub fn segment_tag(&self, digest: &Digest, index: u64, total: u64, bytes: &[u8]) -> Tag {
        let mut hasher = self.segment_mac(digest, index, total);
        hasher.update(bytes);
        Tag(hasher.finalize())
    }

    fn segment_mac(&self, digest: &Digest, index: u64, total: u64) -> blake3::Hasher {
        let mut hasher = self.mac("segment");
        put_text(&mut hasher, digest.as_str());
        hasher.update(&index.to_le_bytes());
        hasher.update(&total.to_le_bytes());
        hasher
    }

    /// The tag of a small record about release `digest` (`what` it is, its `text`).
    pub fn record_tag(&self, what: &str, digest: &Digest, text: &str) -> Tag {
        let mut hasher = self.mac("record");
        put_text(&mut hasher, what);
        put_text(&mut hasher, digest.as_str());
        put_text(&mut hasher, text);
        Tag(hasher.finalize())
    }

    /// The tag over a seal's fields (its segments' tags included).
    fn seal_tag(&self, digest: &Digest, fields: &SealFields) -> Tag {
        let mut hasher = self.mac("seal");
        put_text(&mut hasher, digest.as_str());
        put_text(&mut hasher, &fields.commit);
        put_text(&mut hasher, &fields.name);
        hasher.update(&fields.len.to_le_bytes());
        hasher.update(&(fields.segments.len() as u64).to_le_bytes());
        for segment in &fields.segments {
            hasher.update(segment.0.as_bytes());
        }
        Tag(hasher.finalize())
    }

    /// Seals an output rendered from the verified release `digest`.
    pub fn seal(&self, digest: &Digest, commit: &str, name: &str, parts: &[&[u8]]) -> Seal {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let mut segments = Vec::new();
        let mut current: Option<blake3::Hasher> = None;
        let (mut filled, mut index) = (0, 0);
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                let hasher = current.get_or_insert_with(|| self.segment_mac(digest, index, len));
                let take = rest.len().min(SEGMENT - filled);
                hasher.update(&rest[..take]);
                rest = &rest[take..];
                filled += take;
                if filled == SEGMENT {
                    segments.push(Tag(hasher.finalize()));
                    current = None;
                    filled = 0;
                    index += 1;
                }
            }
        }
        segments.extend(current.map(|hasher| Tag(hasher.finalize())));
        let fields = SealFields { commit: commit.to_owned(), name: name.to_owned(), len, segments };
        let mac = self.seal_tag(digest, &fields);
        Seal { key: self.id(), fields, mac }
    }

    /// The length of the line (with its newline) that [`Self::seal`] makes for an output of
    /// `len` bytes of release `commit`, `name`: every tag is as long as any other.
    pub fn seal_line_len(&self, commit: &str, name: &str, len: u64) -> usize {
        let tag = Tag(blake3::Hash::from_bytes([0; 32]));
        let segments = vec![tag.clone(); len.div_ceil(SEGMENT as u64) as usize];
        let fields = SealFields { commit: commit.to_owned(), name: name.to_owned(), len, segments };
        let seal = Seal { key: self.id(), fields, mac: tag };
        serde_json::to_vec(&seal).map_or(0, |line| line.len() + 1)
    }

    /// The seal's fields, if this key made it for release `digest` and they are intact.
    pub fn open(&self, digest: &Digest, seal: Seal) -> Option<SealFields> {
        let fields = seal.fields;
        let expected_segments = fields.len.div_ceil(SEGMENT as u64);
        (seal.key == self.id()
            && fields.segments.len() as u64 == expected_segments
            && self.seal_tag(digest, &fields) == seal.mac)
            .then_some(fields)
    }
}

/// A MAC, compared in constant time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(blake3::Hash);

impl Tag {
    /// As hex.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }

    /// From hex.
    pub fn from_hex(text: &str) -> Option<Self> {
        blake3::Hash::from_hex(text.as_bytes()).ok().map(Tag)
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.to_hex().as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        blake3::Hash::from_hex(text.as_bytes()).map(Tag).map_err(serde::de::Error::custom)
    }
}

/// What a seal vouches for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SealFields {
    /// The release's commit.
    pub commit: String,
    /// `<repository>/<project>` of the release.
    pub name: String,
    /// The output's length in bytes.
    pub len: u64,
    /// Each segment's tag, in order.
    pub segments: Vec<Tag>,
}

/// The first line of a rendered-output cache file (JSON).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Seal {
    /// [`SealKey::id`] of the key that made it.
    key: String,
    #[serde(flatten)]
    fields: SealFields,
    mac: Tag,
}

/// Length-prefixed, so that no two sequences of fields hash alike.
fn put_text(hasher: &mut blake3::Hasher, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// Whether `path` is inside `dir` (both resolved as far as they exist).
fn within(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| {
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        // The deepest existing ancestor, resolved, with the rest appended.
        let mut existing = absolute.as_path();
        let mut rest = Vec::new();
        while existing.canonicalize().is_err() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => return absolute,
            }
        }
        let mut resolved = existing.canonicalize().unwrap_or_else(|_| existing.to_owned());
        resolved.extend(rest.iter().rev());
        resolved
    };
    resolve(path).starts_with(resolve(dir))
}

/// Key material from an operator's file: at least 32 bytes (raw, or as text such as 64 hex
/// digits), at most 4 KiB.
fn read_key_file(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    material(file)
}

fn material(file: std::fs::File) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    file.take(4097).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() > 4096 {
        return Err("longer than 4 KiB: not a key".into());
    }
    if bytes.len() < 32 {
        return Err(format!(
            "{} bytes: a key needs at least 32 random bytes (e.g. `head -c 32 /dev/urandom`)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The sidecar's own key at `path`, made if there is none: a regular file (not a link) of
/// this user's that no one else can read. A temp directory is shared on a developer's machine:
/// a file another user planted there is refused, never used.
fn own_key(path: &Path) -> Result<Vec<u8>, String> {
    match open_own(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(path)?,
        Err(e) => return Err(e.to_string()),
        Ok(file) => return check_own(file),
    }
    open_own(path).map_err(|e| e.to_string()).and_then(check_own)
}

fn open_own(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

fn check_own(file: std::fs::File) -> Result<Vec<u8>, String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!("owned by user {}, not this one", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("mode {:o}: others may read it", meta.mode() & 0o777));
    }
    material(file)
}

/// Writes a fresh key beside `path` and links it into place: concurrent generates all end up
/// with the one that got there first.
fn create_key(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
    let temp = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(&key)?;
        match std::fs::hard_link(&temp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    };
    let written = write();
    let _ = std::fs::remove_file(&temp);
    written.map_err(|e| format!("cannot create it: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::for_tests(byte)
    }

    fn digest() -> Digest {
        Digest::of(b"release")
    }

    #[test]
    fn a_seal_opens_only_with_its_key_release_and_fields() {
        let parts: Vec<&[u8]> = vec![b"---\n", b"a: 1\n"];
        let seal = key(1).seal(&digest(), "c0ffee", "team/app", &parts);
        let text = serde_json::to_string(&seal).expect("json");
        let reread = |t: &str| serde_json::from_str::<Seal>(t).expect("json");
        assert!(key(1).open(&digest(), reread(&text)).is_some());
        assert!(key(2).open(&digest(), reread(&text)).is_none(), "another key");
        assert!(key(1).open(&Digest::of(b"other"), reread(&text)).is_none(), "another release");
        for (from, to) in
            [("c0ffee", "c0ffef"), ("team/app", "team/apq"), ("\"len\":9", "\"len\":8")]
        {
            let altered = text.replace(from, to);
            assert_ne!(altered, text);
            assert!(key(1).open(&digest(), reread(&altered)).is_none(), "{from} -> {to}");
        }
    }

    #[test]
    fn segments_are_the_same_however_the_output_is_cut() {
        let bytes: Vec<u8> = (0..(2 * SEGMENT + 77)).map(|i| (i % 251) as u8).collect();
        let whole = key(1).seal(&digest(), "c", "n", &[&bytes]);
        assert_eq!(whole.fields.segments.len(), 3);
        for cut in [1, 1000, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT] {
            let (a, b) = bytes.split_at(cut);
            let pieces = key(1).seal(&digest(), "c", "n", &[a, &[], b]);
            assert_eq!(pieces.fields.segments, whole.fields.segments, "cut at {cut}");
        }
        for (index, chunk) in bytes.chunks(SEGMENT).enumerate() {
            let tag = key(1).segment_tag(&digest(), index as u64, bytes.len() as u64, chunk);
            assert_eq!(tag, whole.fields.segments[index]);
        }
    }

    #[test]
    fn a_default_key_is_made_once_and_a_planted_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        let source = KeySource::Default(dir.path().join("k.key"));
        let first = SealKey::load(&source, &cache).expect("load").expect("made");
        let again = SealKey::load(&source, &cache).expect("load").expect("read");
        assert_eq!(first.id(), again.id());
        let mode = std::fs::metadata(dir.path().join("k.key")).expect("key").mode();
        assert_eq!(mode & 0o777, 0o600);

        // Readable by others, a link, or inside the cache: not used.
        let open = dir.path().join("open.key");
        std::fs::write(&open, [7u8; 32]).expect("write");
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(dir.path().join("k.key"), &link).expect("link");
        for path in [open, link, cache.join("k.key")] {
            let loaded = SealKey::load(&KeySource::Default(path.clone()), &cache).expect("load");
            assert!(loaded.is_none(), "{}", path.display());
        }
    }

    #[test]
    fn an_operators_key_file_must_be_long_enough_and_off_the_cache() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).expect("cache");
        let short = dir.path().join("short");
        std::fs::write(&short, "0123456789abcdef\n").expect("write");
        let inside = cache.join("key");
        std::fs::write(&inside, [1u8; 32]).expect("write");
        for (path, says) in [(&short, "at least 32"), (&inside, "must not be in the cache")] {
            let error = SealKey::load(&KeySource::File(path.clone()), &cache).expect_err("refused");
            assert!(error.to_string().contains(says), "{error}");
        }
        let hex = dir.path().join("hex");
        std::fs::write(&hex, format!("{}\n", "ab".repeat(32))).expect("write");
        assert!(SealKey::load(&KeySource::File(hex), &cache).expect("load").is_some());
    }
}
