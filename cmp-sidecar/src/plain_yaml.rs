//! Reading an object's identity line by line from the plain YAML forge-pack writes, so that a
//! cold `generate` can hand verified files to Argo CD as they are instead of parsing them.
//!
//! [`identity`] answers only for a file whose every line has a role that is certain from the
//! line itself and the indentation around it, and whose every scalar reads the same under
//! YAML 1.1 (Argo CD's yaml.v2, kubectl) and YAML 1.2 (forge-pack): block mappings and
//! sequences, one-line plain and quoted scalars, block scalars, `{}`, `[]` and comments.
//! Anything else — anchors, tags, flow collections, quoted scalars over several lines, plain
//! scalars continued on the next line, document markers, tabs, carriage returns, duplicate
//! keys, quoted keys where identity is read, and scalars such as `yes`, `0o17` or `2024-01-01`
//! that YAML 1.1 and 1.2 read differently — gives `None`, and the caller parses the file. So a
//! `Some` is the identity any YAML reader sees, and the file is one document that means the
//! same to Argo CD as to forge-pack.

use std::cell::RefCell;

use forge_release::objects::ObjectId;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// The identity of the object in `text`, when `text` is plain YAML as described above.
pub fn identity(text: &str) -> Option<ObjectId> {
    // Control characters (tabs, carriage returns) other than line feeds, and the line breaks
    // only YAML 1.1 knows (NEL, LS, PS).
    if has_control_characters(text.as_bytes())
        || (!text.is_ascii() && text.contains(['\u{85}', '\u{2028}', '\u{2029}', '\u{feff}']))
    {
        return None;
    }
    // The key set outlives the call, so its memory is reused from file to file.
    thread_local! {
        static KEYS: RefCell<KeySet> = RefCell::default();
    }
    KEYS.with_borrow_mut(|keys| {
        keys.clear();
        let mut reader = Reader::new(keys);
        // Lines split with memchr: std's `split('\n')` took a third of this function's time.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]) {
            reader.line(&text[start..end])?;
            start = end + 1;
        }
        Some(ObjectId::new(reader.api_version?, reader.kind?, reader.namespace, reader.name?))
    })
}

/// Hashes of `(mapping, key)` seen. Two different keys with one hash look like a duplicate,
/// which only sends the file to the parser.
type KeySet = HashSet<u64, foldhash::fast::RandomState>;

/// Whether `bytes` holds a control character other than a line feed. Branch-free over small
/// chunks, so that it vectorises: this runs over every byte of every release.
fn has_control_characters(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|chunk| {
        chunk.iter().fold(0u8, |seen, &b| seen | u8::from((b < 0x20 && b != b'\n') || b == 0x7f))
            != 0
    })
}

/// How `metadata`'s children are indented: the only layout read is two spaces.
const METADATA_INDENT: usize = 2;

/// An open block collection: its indentation, whether it is a sequence, and a number of its
/// own (keys are remembered per mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    indent: usize,
    sequence: bool,
    id: u32,
}

struct Reader<'a, 'k> {
    /// The block collections the current line is inside, outermost first.
    levels: Vec<Level>,
    /// The line before left a value open (`key:` or a lone `-`): the column of that key or
    /// dash, and whether it was a key.
    opened: Option<(usize, bool)>,
    /// Inside a block scalar: the indentation its content must exceed, and that of its first
    /// content line once seen.
    block_scalar: Option<(usize, Option<usize>)>,
    /// Between `metadata:` and the next top-level key.
    in_metadata: bool,
    /// Every key seen, by mapping: a duplicate means a reader-dependent value.
    keys: &'k mut KeySet,
    next_id: u32,
    api_version: Option<&'a str>,
    kind: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

impl<'a, 'k> Reader<'a, 'k> {
    fn new(keys: &'k mut KeySet) -> Self {
        Reader {
            levels: Vec::new(),
            opened: None,
            block_scalar: None,
            in_metadata: false,
            keys,
            next_id: 0,
            api_version: None,
            kind: None,
            namespace: None,
            name: None,
        }
    }

    fn line(&mut self, line: &'a str) -> Option<()> {
        let indent = line.bytes().take_while(|b| *b == b' ').count();
        let rest = &line[indent..];
        if let Some((above, content)) = self.block_scalar {
            if rest.is_empty() {
                // Readers disagree on spaces in blank lines before the first content line.
                return (content.is_some() || indent == 0).then_some(());
            }
            if indent > above {
                // Content less indented than its first line would end the scalar early.
                let content = content.unwrap_or(indent);
                self.block_scalar = Some((above, Some(content)));
                return (indent >= content).then_some(());
            }
            self.block_scalar = None;
        }
        if rest.is_empty() || rest.starts_with('#') {
            return Some(());
        }
        if indent == 0 {
            // Document markers and directives; Argo CD also splits its input on `---` lines.
            if rest.starts_with("---") || rest.starts_with("...") || rest.starts_with('%') {
                return None;
            }
            self.in_metadata = false;
        }
        self.entry(indent, rest)
    }

    /// Places a collection entry starting at `indent` among the open levels: a child of the
    /// value the line before opened, or the next entry of an open collection. Anything else
    /// (a line indented into a finished scalar, or out of step) is declined.
    fn place(&mut self, indent: usize, sequence: bool) -> Option<()> {
        let child = match self.opened.take() {
            Some((column, _)) if indent > column => true,
            // `key:` followed by `- item` at the key's own indentation.
            Some((column, true)) => indent == column && sequence,
            _ => false,
        };
        if child || self.levels.is_empty() {
            self.open(indent, sequence);
            return Some(());
        }
        while self.levels.last().is_some_and(|l| l.indent > indent) {
            self.levels.pop();
        }
        // `key:` then `- item` at the same indentation: the sequence ends with the next key.
        if let Some(l) = self.levels.last()
            && l.indent == indent
            && l.sequence
            && !sequence
        {
            self.levels.pop();
        }
        self.levels
            .last()
            .is_some_and(|l| l.indent == indent && l.sequence == sequence)
            .then_some(())
    }

    fn open(&mut self, indent: usize, sequence: bool) {
        self.next_id += 1;
        self.levels.push(Level { indent, sequence, id: self.next_id });
    }

    /// One line's content: `- ` sequence entries, then a `key:` (with an optional value) or,
    /// after a dash, a scalar item.
    fn entry(&mut self, indent: usize, mut rest: &'a str) -> Option<()> {
        let mut column = indent;
        let mut dash: Option<usize> = None;
        while rest == "-" || rest.starts_with("- ") {
            if dash.is_none() {
                // A top-level sequence is not an object; a sequence as `metadata` has no name.
                if indent == 0 || (self.in_metadata && indent <= METADATA_INDENT) {
                    return None;
                }
                self.place(indent, true)?;
            } else {
                self.open(column, true);
            }
            dash = Some(column);
            let skip = 1 + rest[1..].bytes().take_while(|b| *b == b' ').count();
            column += skip;
            rest = &rest[skip..];
        }
        if rest.is_empty() || rest.starts_with('#') {
            self.opened = Some((dash?, false));
            return Some(());
        }
        if let Some(header) = block_scalar_header(rest) {
            // `- |`: content indented past the dash (an explicit indentation is not read).
            if header? != 0 {
                return None;
            }
            self.block_scalar = Some((dash?, None));
            return Some(());
        }
        let (token, after) = scalar(rest)?;
        match after.strip_prefix(':') {
            Some(value) if value.is_empty() || value.starts_with(' ') => {
                // Keys are compared as text, so one with escapes is not taken.
                match token.style {
                    Style::Plain if token.class() == Class::Text => {}
                    Style::SingleQuoted | Style::DoubleQuoted => {
                        token.identity_text()?;
                    }
                    _ => return None,
                }
                let plain = token.style == Style::Plain;
                if dash.is_some() {
                    self.open(column, false);
                } else {
                    self.place(column, false)?;
                }
                let value = value.trim_start_matches(' ');
                let value = if value.is_empty() || value.starts_with('#') {
                    self.opened = Some((column, true));
                    None
                } else if let Some(header) = block_scalar_header(value) {
                    let explicit = header?;
                    self.block_scalar =
                        Some((column, (explicit != 0).then_some(column + explicit)));
                    Some(Scalar { text: "", style: Style::Block })
                } else {
                    let (scalar, tail) = scalar(value)?;
                    ends_line(tail)?;
                    scalar.same_in_yaml_1_1()?;
                    Some(scalar)
                };
                let mapping = self.levels.last()?.id;
                if !self.keys.insert(self.keys.hasher().hash_one((mapping, token.text))) {
                    return None;
                }
                self.key(plain, token.text, value)
            }
            _ => {
                // A scalar item after a dash; anything else is a bare scalar line.
                dash?;
                ends_line(after)?;
                token.same_in_yaml_1_1()
            }
        }
    }

    /// Reads identity from plain keys at the top level and in `metadata`.
    fn key(&mut self, plain: bool, key: &'a str, value: Option<Scalar<'a>>) -> Option<()> {
        let mapping_at = |l: &Level, indent| !l.sequence && l.indent == indent;
        match self.levels.as_slice() {
            [top] if plain && mapping_at(top, 0) => {
                match key {
                    "metadata" => {
                        // `metadata` must be a block mapping below.
                        if value.is_some() {
                            return None;
                        }
                        self.in_metadata = true;
                    }
                    "apiVersion" => self.api_version = Some(value?.identity_text()?),
                    "kind" => self.kind = Some(value?.identity_text()?),
                    _ => {}
                }
            }
            [_, child] if plain && self.in_metadata && mapping_at(child, METADATA_INDENT) => {
                match key {
                    "name" => self.name = Some(value?.identity_text()?),
                    "namespace" => self.namespace = Some(value?.identity_text()?),
                    _ => {}
                }
            }
            _ => {}
        }
        Some(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `{}` or `[]`.
    EmptyFlow,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Text,
    /// A number, boolean or null that every YAML version reads alike.
    NonText,
    /// Read differently by YAML 1.1 and 1.2, or not worth deciding here.
    Unsure,
}

#[derive(Debug, Clone, Copy)]
struct Scalar<'a> {
    /// The text between the quotes for quoted scalars, escapes left as they are.
    text: &'a str,
    style: Style,
}

impl<'a> Scalar<'a> {
    fn class(&self) -> Class {
        match self.style {
            Style::Plain => classify_plain(self.text),
            Style::SingleQuoted | Style::DoubleQuoted | Style::Block => Class::Text,
            Style::EmptyFlow => Class::NonText,
        }
    }

    fn same_in_yaml_1_1(&self) -> Option<()> {
        (self.class() != Class::Unsure).then_some(())
    }

    /// The value of an identity field: text without escapes to undo.
    fn identity_text(&self) -> Option<&'a str> {
        let plain_escapes = match self.style {
            Style::Plain => false,
            Style::SingleQuoted => self.text.contains('\''),
            Style::DoubleQuoted => self.text.contains('\\'),
            Style::EmptyFlow | Style::Block => return None,
        };
        (self.class() == Class::Text && !plain_escapes && !self.text.is_empty())
            .then_some(self.text)
    }
}

/// For a block scalar header (`|`, `>-`, `|2+`, ...) ending the line, `Some(Some(n))` with its
/// explicit indentation `n` (0 when none); `Some(None)` for a line that starts like one but is
/// not; `None` for anything else.
fn block_scalar_header(text: &str) -> Option<Option<usize>> {
    let rest = text.strip_prefix('|').or_else(|| text.strip_prefix('>'))?;
    let indicators =
        &rest[..rest.bytes().take_while(|b| matches!(b, b'+' | b'-' | b'1'..=b'9')).count()];
    let digits: Vec<u8> = indicators.bytes().filter(u8::is_ascii_digit).collect();
    let chomping = indicators.len() - digits.len();
    if digits.len() > 1 || chomping > 1 {
        return Some(None);
    }
    let explicit = digits.first().map_or(0, |d| usize::from(d - b'0'));
    Some(ends_line(&rest[indicators.len()..]).map(|()| explicit))
}

/// Whether what follows a scalar is nothing, or a comment.
fn ends_line(tail: &str) -> Option<()> {
    let trimmed = tail.trim_start_matches(' ');
    (trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < tail.len())).then_some(())
}

/// The scalar at the start of `text` and what follows it; `None` if it is not one this reader
/// takes (unclosed quotes, flow collections, anchors, tags, aliases, reserved indicators).
fn scalar(text: &str) -> Option<(Scalar<'_>, &str)> {
    let bytes = text.as_bytes();
    match bytes[0] {
        b'"' => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => {
                        // Escapes every YAML version agrees on.
                        if !matches!(
                            bytes.get(i + 1),
                            Some(b'\\' | b'"' | b'n' | b't' | b'r' | b'0' | b'x' | b'u' | b'U')
                        ) {
                            return None;
                        }
                        i += 2;
                    }
                    b'"' => {
                        let scalar = Scalar { text: &text[1..i], style: Style::DoubleQuoted };
                        return Some((scalar, &text[i + 1..]));
                    }
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    let scalar = Scalar { text: &text[1..i], style: Style::SingleQuoted };
                    return Some((scalar, &text[i + 1..]));
                }
                i += 1;
            }
            None
        }
        b'{' | b'[' => {
            let empty = text.starts_with("{}") || text.starts_with("[]");
            empty.then(|| (Scalar { text: &text[..2], style: Style::EmptyFlow }, &text[2..]))
        }
        first if starts_plain(first, bytes.get(1).copied()) => {
            // A plain scalar runs to `: `, a final `:`, or ` #`.
            let end = memchr::memchr2_iter(b':', b'#', bytes)
                .find_map(|i| match bytes[i] {
                    b':' if matches!(bytes.get(i + 1), None | Some(b' ')) => Some(i),
                    b'#' if i > 0 && bytes[i - 1] == b' ' => Some(i - 1),
                    _ => None,
                })
                .unwrap_or(bytes.len());
            let scalar = Scalar { text: text[..end].trim_end_matches(' '), style: Style::Plain };
            Some((scalar, &text[end..]))
        }
        _ => None,
    }
}

fn starts_plain(first: u8, second: Option<u8>) -> bool {
    first.is_ascii_alphanumeric()
        || first >= 0x80
        || matches!(first, b'_' | b'/' | b'.' | b'$' | b'(' | b')' | b'+' | b'~')
        || (first == b'-' && !matches!(second, None | Some(b' ')))
}

/// What a plain scalar is, under YAML 1.2's core schema and YAML 1.1 (PyYAML and Go's
/// yaml.v2, which also reads `0o17`, `0b1`, `1_000` and timestamps).
fn classify_plain(text: &str) -> Class {
    // YAML 1.1 booleans that YAML 1.2 reads as text.
    const YAML_1_1_BOOLEANS: [&str; 16] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    const SHARED_WORDS: [&str; 10] =
        ["true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~"];
    if text.is_empty() {
        return Class::Unsure;
    }
    // Every special word is short: most scalars skip the comparisons.
    if text.len() <= 5 {
        if YAML_1_1_BOOLEANS.contains(&text) {
            return Class::Unsure;
        }
        if SHARED_WORDS.contains(&text) {
            return Class::NonText;
        }
    }
    let bytes = text.as_bytes();
    let second_is_numeric = bytes.get(1).is_some_and(|b| b.is_ascii_digit() || *b == b'.');
    match bytes[0] {
        b'0'..=b'9' | b'-' if is_decimal_number(text) => return Class::NonText,
        // `--port=80`, `-Xmx1g`; but `-1e3`, `-.inf`, `+0x1F` are numbers to someone.
        b'-' | b'+' if !second_is_numeric => return Class::Text,
        // `.dockerconfigjson`; but `.5`, `.inf`, `.NaN` are numbers.
        b'.' if !second_is_numeric
            && !text.eq_ignore_ascii_case(".inf")
            && !text.eq_ignore_ascii_case(".nan") =>
        {
            return Class::Text;
        }
        b'-' | b'+' | b'.' => return Class::Unsure,
        first if !first.is_ascii_digit() => return Class::Text,
        _ => {}
    }
    // Dotted numbers (IP addresses, versions) are text everywhere.
    let dotted = text.split('.').count() >= 3
        && text.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    // A digit-led scalar with a character no number, base prefix, exponent, separator or
    // timestamp can contain (`500m`, `128Mi`, `3scale`, `0 * * * *`) is text everywhere.
    let worded = text.bytes().any(|b| {
        !(b.is_ascii_hexdigit()
            || matches!(b, b'+' | b'-' | b'.' | b'_' | b':' | b' ' | b'x' | b'X' | b'o' | b'O')
            || matches!(b, b't' | b'T' | b'z' | b'Z'))
    });
    if dotted || worded { Class::Text } else { Class::Unsure }
}

/// `-12`, `0`, `3.25`: integers and decimals that every YAML version and JSON read alike.
fn is_decimal_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // Short texts: a byte scan beats `split_once`'s searcher here.
    let (whole, fraction) = match digits.bytes().position(|b| b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && whole.len() <= 15
        && fraction.is_none_or(|f| all_digits(f) && f.len() <= 15)
}

#[cfg(test)]
mod tests;
