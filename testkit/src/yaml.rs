//! Reading YAML as Kubernetes and Argo CD do: YAML 1.1, through PyYAML.

use std::io::Write;
use std::process::{Command, Stdio};

/// Every non-null document of a YAML stream as PyYAML (a YAML 1.1 reader) reads it, as a JSON
/// array. Panics when python3 or PyYAML is missing (`make test` installs them).
pub fn yaml_1_1_reading(stream: &str) -> serde_json::Value {
    let script = "import sys, yaml, json\nprint(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required");
    child.stdin.take().expect("stdin").write_all(stream.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("python3");
    assert!(output.status.success(), "PyYAML is required (pip install pyyaml)");
    serde_json::from_slice(&output.stdout).expect("json")
}
