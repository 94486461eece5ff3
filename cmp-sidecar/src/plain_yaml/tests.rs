use forge_release::objects::ObjectId;

use super::identity;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    note: |
      first line
      second: line
    forge.dev/quoted: 'true'
  labels:
    app: api
  name: api
  namespace: auth
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/api@sha256:0123
        args:
        - --port=8080
        - -Xmx512m
        - '0o17'
        - \"yes\"
        resources:
          limits: {cpu: 500m}
";

#[test]
fn reads_the_identity_of_plain_objects() {
    let simple = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {}\n";
    assert_eq!(identity(simple), Some(ObjectId::new("v1", "ConfigMap", None, "settings")));
    // `{cpu: 500m}` is a flow mapping: declined. With it written as a block it is read.
    assert_eq!(identity(DEPLOYMENT), None);
    let block = DEPLOYMENT.replace("limits: {cpu: 500m}", "limits:\n            cpu: 500m");
    assert_eq!(identity(&block), Some(ObjectId::new("apps/v1", "Deployment", Some("auth"), "api")));
    let quoted = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: '123'\nspec: []\n";
    assert_eq!(identity(quoted).map(|i| i.name).as_deref(), Some("123"));
    let commented = "# generated\napiVersion: v1 # core\nkind: Namespace\nmetadata:\n  name: x\n";
    assert_eq!(identity(commented).map(|i| i.api_version).as_deref(), Some("v1"));
}

#[test]
fn agrees_with_a_parser_on_everything_it_reads() {
    let block = DEPLOYMENT.replace("limits: {cpu: 500m}", "limits:\n            cpu: 500m");
    for text in [block.as_str(), "apiVersion: v1\nkind: A\nmetadata:\n  name: \"b\\u0041\"\n"] {
        let parsed: serde_json::Value = serde_saphyr::from_str(text).expect("parses");
        let field =
            |path: &[&str]| path.iter().try_fold(&parsed, |v, k| v.get(k)).and_then(|v| v.as_str());
        match identity(text) {
            Some(id) => {
                assert_eq!(Some(id.api_version.as_str()), field(&["apiVersion"]));
                assert_eq!(Some(id.kind.as_str()), field(&["kind"]));
                assert_eq!(id.namespace.as_deref(), field(&["metadata", "namespace"]));
                assert_eq!(Some(id.name.as_str()), field(&["metadata", "name"]));
            }
            // An escaped identity value is left to the parser.
            None => assert!(text.contains("\\u0041")),
        }
    }
}

/// Files any YAML reader would see differently from a line reader, or that YAML 1.1 and 1.2
/// read differently: each must be declined.
#[test]
fn declines_what_a_line_reader_cannot_be_sure_of() {
    let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    let cases = [
        ("a quoted scalar continued at column 0", format!("{head}a: \"foo\nkind: evil\"\n")),
        ("a single-quoted one", format!("{head}a: 'foo\nkind: evil'\n")),
        ("a flow mapping over lines", format!("{head}a: {{x: 1,\nkind: evil}}\n")),
        (
            "a flow mapping inside metadata",
            "apiVersion: v1\nkind: A\nmetadata:\n  labels: {x: 1,\n  name: evil}\n".into(),
        ),
        ("a duplicate top-level key", format!("{head}kind: Secret\n")),
        (
            "a duplicate metadata key",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: x\n  name: y\n".into(),
        ),
        ("an alias", "x: &a evil\napiVersion: v1\nkind: *a\nmetadata:\n  name: x\n".into()),
        ("an explicit key", format!("{head}? kind\n: evil\n")),
        ("a tag", "apiVersion: v1\nkind: !!str A\nmetadata:\n  name: x\n".into()),
        ("a quoted top-level key", format!("{head}\"kind\": Secret\n")),
        ("a document marker", format!("{head}---\nkind: Secret\n")),
        ("a document end", format!("{head}...\n")),
        ("a directive", format!("%YAML 1.1\n{head}")),
        ("a tab", format!("{head}data:\n\tkey: value\n")),
        ("a carriage return", head.replace('\n', "\r\n")),
        ("a YAML 1.1 line break", format!("{head}data:\n  a: x\u{2028}b\n")),
        (
            "a plain scalar continued",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: x\n    y\n".into(),
        ),
        (
            "a plain scalar continued after a blank line",
            "apiVersion: v1\nkind: A\nmetadata:\n  name: x\n\n    y\n".into(),
        ),
        (
            "block scalar content less indented than its first line",
            format!("{head}data:\n  a: |\n        deep\n      name: evil\n"),
        ),
        ("a top-level sequence", "- apiVersion: v1\n  kind: A\n".into()),
        ("metadata as a sequence", "apiVersion: v1\nkind: A\nmetadata:\n  - name: x\n".into()),
        ("metadata indented by four", "apiVersion: v1\nkind: A\nmetadata:\n    name: x\n".into()),
        ("metadata on one line", "apiVersion: v1\nkind: A\nmetadata: {name: x}\n".into()),
        ("no name", "apiVersion: v1\nkind: A\nmetadata:\n  labels: {}\n".into()),
        ("a name that is a number", "apiVersion: v1\nkind: A\nmetadata:\n  name: 123\n".into()),
        ("an empty file", String::new()),
        ("only comments", "# nothing\n".into()),
        ("a JSON object", "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n".into()),
        ("a bare scalar line", format!("{head}data:\n  key:\n    value\n")),
    ];
    for (what, text) in &cases {
        assert_eq!(identity(text), None, "{what}: {text:?}");
    }
}

#[test]
fn declines_scalars_yaml_1_1_reads_differently() {
    for value in [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "0o17",
        "0b101",
        "017",
        "1_000",
        "0x1F",
        "1e3",
        "2024-01-01",
        "12:30",
        ".inf",
        "-.inf",
        ".NaN",
        ".5",
        "+5",
        "1d",
        "99999999999999999999",
    ] {
        let text = format!("apiVersion: v1\nkind: A\nmetadata:\n  name: x\ndata:\n  k: {value}\n");
        assert_eq!(identity(&text), None, "{value}");
        let as_key =
            format!("apiVersion: v1\nkind: A\nmetadata:\n  name: x\ndata:\n  {value}: v\n");
        assert_eq!(identity(&as_key), None, "key {value}");
    }
    for value in [
        "3",
        "-12",
        "0",
        "2.5",
        "true",
        "False",
        "null",
        "~",
        "500m",
        "128Mi",
        "3scale",
        "10.0.0.1",
        "1.25.3",
        "--port=80",
        "-Xmx1g",
        ".dockerconfigjson",
        "http://x:80/y",
        "a b",
        "'yes'",
        "\"on\"",
        "[]",
        "{}",
        "\"\\u00e9\"",
    ] {
        let text = format!("apiVersion: v1\nkind: A\nmetadata:\n  name: x\ndata:\n  k: {value}\n");
        assert!(identity(&text).is_some(), "{value}");
    }
}
