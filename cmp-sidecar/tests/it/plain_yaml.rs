//! The line reader against real YAML parsers: thousands of objects with lines inserted from a
//! pool of YAML's traps. Wherever the reader vouches for a file, PyYAML (YAML 1.1, as Argo CD
//! reads) and ruamel.yaml (YAML 1.2) must read the same object, with the identity it found.

use forge_cmp::plain_yaml::identity;
use serde_json::{Value, json};

const BASE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    app: x\n  name: settings\n  namespace: prod\ndata:\n  a: b\n  list:\n  - one\n  - two: three\n";

const TRAPS: &[&str] = &[
    "kind: evil",
    "  name: evil",
    "name: evil",
    "\"kind\": evil",
    "a: \"foo",
    "b: 'foo",
    "kind: evil\"",
    "evil'",
    "c: {x: 1,",
    "  d: {x: 1,",
    "}",
    "e: |",
    "  f: |",
    "    block",
    "  block",
    "      deep",
    "g: >-",
    "- item",
    "  - item",
    "h: yes",
    "i: 0o17",
    "j: 1e3",
    "k: 2024-01-01",
    "l: on",
    "  name: \"q\\u0041\"",
    "---",
    "...",
    "m: &a x",
    "n: *a",
    "? kind",
    ": evil",
    "o: !!str x",
    "# comment",
    "  # comment",
    "",
    "   ",
    "p: x # c",
    "q: 'it''s'",
    "r: \"a\\\"b\"",
    "s:",
    "  t: u",
    "    v",
    "w: -1",
    "x: .inf",
    "y: 3scale",
    "z: '123'",
    "  namespace: evil",
    "metadata:",
    "apiVersion: v2",
    "aa: [1, 2]",
    "bb: []",
    "cc: {}",
    "dd: a: b",
    "ee:x",
    "\tff: g",
    "gg: \"multi",
    "line\"",
    "  - - nested",
    "hh: ~",
    "ii: 1.5",
    "jj: 0x1F",
    "kk: -Xmx1g",
    "ll: 10.0.0.1",
    "mm: |2",
    "   two",
    "nn: >+",
    "oo: \"\\t\"",
    "pp: 0 * * * *",
    "qq: 2001-12-14 21:59:43.10 -5",
];

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn wherever_the_line_reader_vouches_for_a_file_yaml_1_1_and_1_2_agree_with_it() {
    let mut random = Random(0x5eed_f0f0_1234_abcd);
    let mut vouched = Vec::new();
    for _ in 0..6000 {
        let mut lines: Vec<String> = BASE.lines().map(str::to_owned).collect();
        for _ in 0..=random.below(4) {
            let mut trap = TRAPS[random.below(TRAPS.len())].to_owned();
            if random.below(10) < 3 {
                trap = format!("{}{}", " ".repeat(1 + random.below(4)), trap.trim_start());
            }
            let at = random.below(lines.len() + 1);
            lines.insert(at, trap);
        }
        let text = lines.join("\n") + "\n";
        if let Some(found) = identity(&text) {
            let found = json!([found.api_version, found.kind, found.namespace, found.name]);
            vouched.push(json!({"text": text, "identity": found}));
        }
    }
    assert!(vouched.len() > 200, "too few files vouched for to test: {}", vouched.len());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/yaml-readers.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is required");
    let input = serde_json::to_vec(&vouched).expect("json");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), &input).expect("write");
    let output = child.wait_with_output().expect("python3");
    assert!(
        output.status.success(),
        "PyYAML and ruamel.yaml are required (`make test` installs them): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let problems: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(problems, json!([]), "of {} files vouched for", vouched.len());
}

#[test]
fn every_file_forge_pack_writes_for_the_example_projects_is_read_line_by_line() {
    let env = crate::argo::Env::new();
    for project in ["auth-service", "catalog"] {
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/projects")
            .join(project);
        let out = env.dir.path().join(project);
        let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/artifacts")
            .join(if project == "catalog" { "catalog.yaml" } else { "forge-artifacts.yaml" });
        crate::argo::forge_pack(
            "oci:/nonexistent",
            &[
                "render",
                "-C",
                source.to_str().expect("utf-8"),
                "--artifacts",
                artifacts.to_str().expect("utf-8"),
                "--out",
                out.to_str().expect("utf-8"),
            ],
        );
        let mut files = 0;
        for entry in walk(&out) {
            let text = std::fs::read_to_string(&entry).expect("read");
            assert!(
                identity(&text).is_some(),
                "{} is not read line by line:\n{text}",
                entry.display()
            );
            files += 1;
        }
        assert!(files > 0, "{project} rendered nothing");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
