//! Seals on the cache's rendered outputs, made with a key kept off the cache volume.
//!
//! A warm generate has to show that a cached output is what was rendered from the verified
//! release its pointer names, although whoever can write the cache volume can rewrite any file
//! in it. Checking every document against the SHA-256 digests in the release's metadata does
//! that, but at tens of megabytes the hashing alone is many times the cost of reading the file.
//! So the output is sealed when it is rendered from the verified release: encrypted and
//! authenticated with AES-256-GCM (about 10 GB/s with VAES; keyed BLAKE3, the first choice,
//! ran at half that) in 256 KiB segments, each opened before it is written, under a key made
//! for that one output, and headed by a MAC (keyed BLAKE3) over the release's digest, commit,
//! name, length and the segments' tags. The key they all come from is 32 random bytes in a
//! file outside the cache volume (the sidecar's own `/tmp`, or a Secret): without it no one
//! can make a seal or read a sealed output, and an output without a valid seal is a miss,
//! rendered again from the release.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use forge_release::Digest;
use ring::aead::{self, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

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

    /// The tag of a small record: `what` it is, what it is about (`subject`), its `body`.
    pub fn record_tag(&self, what: &str, subject: &str, body: &str) -> Tag {
        let mut hasher = self.mac("record");
        put_text(&mut hasher, what);
        put_text(&mut hasher, subject);
        put_text(&mut hasher, body);
        Tag(hasher.finalize())
    }

    /// The tag over a seal's fields (its salt and segments' tags included).
    fn seal_tag(&self, digest: &Digest, salt: &Salt, fields: &SealFields) -> Tag {
        let mut hasher = self.mac("seal");
        put_text(&mut hasher, digest.as_str());
        hasher.update(&salt.0);
        put_text(&mut hasher, &fields.commit);
        put_text(&mut hasher, &fields.name);
        hasher.update(&fields.len.to_le_bytes());
        hasher.update(&(fields.segments.len() as u64).to_le_bytes());
        for segment in &fields.segments {
            hasher.update(&segment.0);
        }
        Tag(hasher.finalize())
    }

    /// The key that encrypts one sealed output of release `digest`: one per seal (its salt is
    /// random), so that segment numbers are nonces never used twice under a key.
    fn entry_key(&self, digest: &Digest, salt: &Salt) -> LessSafeKey {
        let mut hasher = self.mac("entry");
        put_text(&mut hasher, digest.as_str());
        hasher.update(&salt.0);
        let key = UnboundKey::new(&AES_256_GCM, hasher.finalize().as_bytes());
        LessSafeKey::new(key.expect("a 32-byte key is an AES-256 key"))
    }

    /// Seals an output rendered from the verified release `digest`: `parts`, one after the
    /// other, encrypted segment by segment and handed to `write_at` with their offset (in any
    /// order: past a few segments two threads share the work); the seal of it all.
    pub fn seal_parts(
        &self,
        digest: &Digest,
        (commit, name): (&str, &str),
        parts: &[&[u8]],
        write_at: impl Fn(u64, &[u8]) -> std::io::Result<()> + Sync,
    ) -> std::io::Result<Seal> {
        let mut salt = Salt([0; 16]);
        getrandom::fill(&mut salt.0).map_err(std::io::Error::other)?;
        let key = self.entry_key(digest, &salt);
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0;
        for part in parts {
            starts.push(len);
            len += part.len();
        }
        let count = len.div_ceil(SEGMENT);
        // Segment `index` gathered from the parts into `buffer`.
        let gather = |index: usize, buffer: &mut Vec<u8>| {
            buffer.clear();
            let (mut at, to) = (index * SEGMENT, ((index + 1) * SEGMENT).min(len));
            let mut part = starts.partition_point(|start| *start <= at).saturating_sub(1);
            while at < to {
                let offset = at - starts[part];
                let take = (parts[part].len() - offset).min(to - at);
                buffer.extend_from_slice(&parts[part][offset..offset + take]);
                at += take;
                part += 1;
            }
        };
        let share = |first: usize, step: usize| -> std::io::Result<Vec<(usize, SegmentTag)>> {
            let mut buffer = Vec::with_capacity(SEGMENT.min(len));
            let mut tags = Vec::new();
            for index in (first..count).step_by(step) {
                gather(index, &mut buffer);
                let tag = key.seal_in_place_separate_tag(nonce(index), Aad::empty(), &mut buffer);
                let tag =
                    tag.map_err(|_| std::io::Error::other("a segment could not be sealed"))?;
                let mut bytes = [0; 16];
                bytes.copy_from_slice(tag.as_ref());
                write_at((index * SEGMENT) as u64, &buffer)?;
                tags.push((index, SegmentTag(bytes)));
            }
            Ok(tags)
        };
        let mut tags = if count < 4 {
            share(0, 1)?
        } else {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| share(1, 2));
                let mine = share(0, 2);
                let other = other.join().unwrap_or_else(|_| Err(std::io::Error::other("panic")));
                Ok::<_, std::io::Error>([mine?, other?].concat())
            })?
        };
        tags.sort_by_key(|(index, _)| *index);
        let segments = tags.into_iter().map(|(_, tag)| tag).collect();
        let len = len as u64;
        let fields = SealFields { commit: commit.to_owned(), name: name.to_owned(), len, segments };
        let mac = self.seal_tag(digest, &salt, &fields);
        Ok(Seal { key: self.id(), salt, fields, mac })
    }

    /// [`Self::seal_parts`] into memory: the seal and the sealed bytes.
    pub fn seal(
        &self,
        digest: &Digest,
        (commit, name): (&str, &str),
        parts: &[&[u8]],
    ) -> std::io::Result<(Seal, Vec<u8>)> {
        let len = parts.iter().map(|p| p.len()).sum();
        let sealed = std::sync::Mutex::new(vec![0; len]);
        let seal = self.seal_parts(digest, (commit, name), parts, |offset, segment| {
            let mut sealed = sealed.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            sealed[offset as usize..offset as usize + segment.len()].copy_from_slice(segment);
            Ok(())
        })?;
        Ok((seal, sealed.into_inner().map_err(|_| std::io::Error::other("poisoned"))?))
    }

    /// The length of the line (with its newline) that [`Self::seal_parts`] makes for an
    /// output of `len` bytes of release `commit`, `name`: every tag is as long as any other.
    pub fn seal_line_len(&self, commit: &str, name: &str, len: u64) -> usize {
        let segments = vec![SegmentTag([0; 16]); len.div_ceil(SEGMENT as u64) as usize];
        let fields = SealFields { commit: commit.to_owned(), name: name.to_owned(), len, segments };
        let seal = Seal {
            key: self.id(),
            salt: Salt([0; 16]),
            fields,
            mac: Tag(blake3::Hash::from_bytes([0; 32])),
        };
        serde_json::to_vec(&seal).map_or(0, |line| line.len() + 1)
    }

    /// The seal's fields and what opens its segments, if this key made it for release
    /// `digest` and it is intact.
    pub fn open(&self, digest: &Digest, seal: Seal) -> Option<(SealFields, Opener)> {
        let Seal { key, salt, fields, mac } = seal;
        let expected_segments = fields.len.div_ceil(SEGMENT as u64);
        let intact = key == self.id()
            && fields.segments.len() as u64 == expected_segments
            && self.seal_tag(digest, &salt, &fields) == mac;
        let opener = Opener { key: self.entry_key(digest, &salt), tags: fields.segments.clone() };
        intact.then_some((fields, opener))
    }
}

/// The nonce of segment `index`: each key seals one output, whose segments are numbered.
fn nonce(index: usize) -> Nonce {
    let mut bytes = [0; 12];
    bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Opens the segments of one sealed output.
pub struct Opener {
    key: LessSafeKey,
    tags: Vec<SegmentTag>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener(..)")
    }
}

impl Opener {
    /// Decrypts segment `index` in place; false (and `segment` not to be used) unless it is
    /// exactly what was sealed there.
    pub fn open_segment(&self, index: usize, segment: &mut [u8]) -> bool {
        let Some(tag) = self.tags.get(index) else { return false };
        let tag = aead::Tag::from(tag.0);
        self.key.open_in_place_separate_tag(nonce(index), Aad::empty(), tag, segment, 0..).is_ok()
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

/// A segment's authentication tag (AES-256-GCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentTag([u8; 16]);

/// A seal's random salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Salt([u8; 16]);

macro_rules! hex_serde {
    ($type:ident) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                let mut bytes = [0; 16];
                hex::decode_to_slice(text.as_bytes(), &mut bytes)
                    .map_err(serde::de::Error::custom)?;
                Ok($type(bytes))
            }
        }
    };
}

hex_serde!(SegmentTag);
hex_serde!(Salt);

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
    pub segments: Vec<SegmentTag>,
}

/// The first line of a rendered-output cache file (JSON).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Seal {
    /// [`SealKey::id`] of the key that made it.
    key: String,
    salt: Salt,
    #[serde(flatten)]
    fields: SealFields,
    mac: Tag,
}

/// Length-prefixed, so that no two sequences of fields hash alike.
fn put_text(hasher: &mut blake3::Hasher, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// Whether `path` is, or would be, inside `dir`, links and `..` resolved as the system would
/// (neither need exist: the cache is made on first use).
fn within(path: &Path, dir: &Path) -> bool {
    resolve(path).starts_with(resolve(dir))
}

/// `path` made absolute, component by component: each that exists resolved (its links
/// followed), the rest taken as written (a name that does not exist is no link, so a `..`
/// after it goes back to where it was).
fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut resolved = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::Normal(name) => {
                resolved.push(name);
                if let Ok(real) = resolved.canonicalize() {
                    resolved = real;
                }
            }
            Component::ParentDir => {
                resolved.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    resolved
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
        // On disk before it is named: a crash must not leave a short key in place.
        file.sync_all()?;
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

    /// Opens every segment of `sealed` with what `seal` says, in place.
    fn open_all(key: &SealKey, seal: Seal, sealed: &mut [u8]) -> Option<()> {
        let (_, opener) = key.open(&digest(), seal)?;
        for (index, segment) in sealed.chunks_mut(SEGMENT).enumerate() {
            opener.open_segment(index, segment).then_some(())?;
        }
        Some(())
    }

    #[test]
    fn a_seal_opens_only_with_its_key_release_and_fields() {
        let parts: Vec<&[u8]> = vec![b"---\n", b"a: 1\n"];
        let (seal, _) = key(1).seal(&digest(), ("c0ffee", "team/app"), &parts).expect("seal");
        let text = serde_json::to_string(&seal).expect("json");
        assert_eq!(text.len() + 1, key(1).seal_line_len("c0ffee", "team/app", 9));
        let reread = |t: &str| serde_json::from_str::<Seal>(t).expect("json");
        assert!(key(1).open(&digest(), reread(&text)).is_some());
        assert!(key(2).open(&digest(), reread(&text)).is_none(), "another key");
        assert!(key(1).open(&Digest::of(b"other"), reread(&text)).is_none(), "another release");
        let salt = serde_json::from_str::<serde_json::Value>(&text).expect("json")["salt"].clone();
        let salt = salt.as_str().expect("salt").to_owned();
        let other_salt = format!("{}{}", &salt[..31], if salt.ends_with('0') { '1' } else { '0' });
        for (from, to) in [
            ("c0ffee", "c0ffef"),
            ("team/app", "team/apq"),
            ("\"len\":9", "\"len\":8"),
            (salt.as_str(), other_salt.as_str()),
        ] {
            let altered = text.replace(from, to);
            assert_ne!(altered, text);
            assert!(key(1).open(&digest(), reread(&altered)).is_none(), "{from} -> {to}");
        }
    }

    #[test]
    fn segments_open_only_where_they_were_sealed_however_the_output_was_cut() {
        let bytes: Vec<u8> = (0..(2 * SEGMENT + 77)).map(|i| (i % 251) as u8).collect();
        for cut in [1, 1000, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT] {
            let (a, b) = bytes.split_at(cut);
            let (seal, mut sealed) =
                key(1).seal(&digest(), ("c", "n"), &[a, &[], b]).expect("seal");
            assert_eq!(seal.fields.segments.len(), 3);
            assert_ne!(sealed, bytes);
            let text = serde_json::to_string(&seal).expect("json");
            let reread = || serde_json::from_str::<Seal>(&text).expect("json");
            // Segments swapped, or one byte changed: refused.
            let mut swapped = sealed.clone();
            swapped[..SEGMENT].copy_from_slice(&sealed[SEGMENT..2 * SEGMENT]);
            swapped[SEGMENT..2 * SEGMENT].copy_from_slice(&sealed[..SEGMENT]);
            assert!(open_all(&key(1), reread(), &mut swapped).is_none(), "swapped, cut {cut}");
            let mut flipped = sealed.clone();
            flipped[cut] ^= 1;
            assert!(open_all(&key(1), reread(), &mut flipped).is_none(), "flipped, cut {cut}");
            assert!(open_all(&key(1), reread(), &mut sealed).is_some(), "cut {cut}");
            assert_eq!(sealed, bytes);
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
        // Inside the cache however it is reached: a link to it, or a cache named with `..`
        // that does not exist yet.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&inside, &link).expect("link");
        let later = dir.path().join("later");
        std::fs::create_dir(&later).expect("dir");
        let roundabout = dir.path().join("missing/../later/cache");
        let key_in_later = later.join("cache").join("key");
        for (path, cache, says) in [
            (&short, &cache, "at least 32"),
            (&inside, &cache, "must not be in the cache"),
            (&link, &cache, "must not be in the cache"),
            (&key_in_later, &roundabout, "must not be in the cache"),
        ] {
            let error = SealKey::load(&KeySource::File(path.clone()), cache).expect_err("refused");
            assert!(error.to_string().contains(says), "{}: {error}", path.display());
        }
        let hex = dir.path().join("hex");
        std::fs::write(&hex, format!("{}\n", "ab".repeat(32))).expect("write");
        assert!(SealKey::load(&KeySource::File(hex), &cache).expect("load").is_some());
    }
}
