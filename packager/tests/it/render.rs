//! `forge-pack render`: the rendered stream, per-object files, YAML 1.1 safety and errors.

use crate::harness::Sandbox;

#[test]
fn renders_the_example_project_as_a_sorted_yaml_stream() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let stdout = sandbox.ok(&["render", "-C", project.to_str().expect("utf-8")]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn render_to_a_directory_writes_the_release_file_layout() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let out = sandbox.path().join("out");
    sandbox.ok(&[
        "render",
        "-C",
        project.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let mut files: Vec<String> = walk(&out)
        .into_iter()
        .map(|p| p.strip_prefix(&out).expect("inside").display().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "_cluster/core.Namespace.auth.yaml",
            "auth/apps.Deployment.auth-service.yaml",
            "auth/core.ConfigMap.auth-settings.yaml",
            "auth/core.Service.auth-service.yaml"
        ]
    );
    let stderr = sandbox.fails(
        2,
        &["render", "-C", project.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")],
    );
    assert!(stderr.contains("already exists and is not empty"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Strings that a YAML 1.1 reader (Kubernetes, Argo CD) would turn into booleans, nulls,
/// numbers or timestamps must come out quoted. PyYAML is a YAML 1.1 reader.
#[test]
fn values_keep_their_types_for_a_yaml_1_1_reader() {
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("tricky");
    std::fs::create_dir_all(project.join("templates")).expect("mkdir");
    std::fs::write(project.join("forge.yaml"), "project: tricky\nrepository: company/tests\n")
        .expect("config");
    let tricky = [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Y",
        "N",
        "true",
        "False",
        "~",
        "null",
        "Null",
        "1_000",
        "0x1F",
        "012",
        "0o17",
        "1:20",
        "190:20:30",
        ".inf",
        "-.Inf",
        ".nan",
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "1e3",
        "+12",
        "-0",
        "=",
        "<<",
        "",
        " leading space",
        "trailing: colon",
        "# not a comment",
        "- dash",
        "*alias",
        "&anchor",
        "!tag",
        "@at",
        "`tick",
        "%percent",
        "{brace",
        "[bracket",
        "'single'",
        "\"double\"",
        "multi\nline\n",
        "tab\there",
    ];
    let mut data = serde_json::Map::new();
    for (i, value) in tricky.iter().enumerate() {
        data.insert(format!("k{i:02}"), serde_json::Value::String((*value).to_owned()));
    }
    let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tricky"}, "data": data});
    std::fs::write(
        project.join("templates/tricky.json"),
        serde_json::to_string(&object).expect("json"),
    )
    .expect("write");

    let yaml = sandbox.ok(&["render", "-C", project.to_str().expect("utf-8")]);
    let read_back = forge_testkit::yaml_1_1_reading(&yaml);
    assert_eq!(read_back, serde_json::json!([object]), "YAML 1.1 reading changed a value:\n{yaml}");
}

#[test]
fn every_problem_in_every_template_is_reported_in_one_run() {
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("broken");
    std::fs::create_dir_all(project.join("templates/sub")).expect("mkdir");
    std::fs::write(project.join("forge.yaml"), "project: broken\nrepository: company/tests\n")
        .expect("config");
    std::fs::write(project.join("templates/a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\nkind: Secret\nmetadata: {name: s}\n").expect("a");
    std::fs::write(
        project.join("templates/b.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .expect("b");
    std::fs::write(project.join("templates/sub/c.yaml"), "apiVersion: v1\nkind: [oops\n")
        .expect("c");
    std::fs::write(project.join("templates/d.json"), "{\"apiVersion\": \"v1\",\n \"kind\": }")
        .expect("d");
    // Mappings 101 deep, one more than forge-pack and forge-cmp accept.
    let too_deep: String = (0..100).map(|level| format!("{}a:\n", "  ".repeat(level))).collect();
    std::fs::write(project.join("templates/e.yaml"), too_deep + &"  ".repeat(100) + "b: 1\n")
        .expect("e");
    let stderr = sandbox.fails(2, &["render", "-C", project.to_str().expect("utf-8")]);
    insta::assert_snapshot!(stderr);
}

#[test]
fn configuration_errors_name_the_file_and_key() {
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("bad-config");
    std::fs::create_dir_all(&project).expect("mkdir");
    std::fs::write(
        project.join("forge.yaml"),
        "project: ok\nrepository: company/tests\ntemplate_dir: x\n",
    )
    .expect("config");
    let stderr = sandbox.fails(2, &["render", "-C", "bad-config"]);
    assert!(stderr.starts_with("error: invalid bad-config/forge.yaml: "), "{stderr}");
    assert!(stderr.contains("template_dir"), "{stderr}");
    let stderr = sandbox.fails(2, &["render", "-C", "missing"]);
    assert!(stderr.contains("cannot read project configuration"), "{stderr}");
    assert!(
        stderr.contains("hint: run forge-pack in a project directory with a forge.yaml"),
        "{stderr}"
    );
}

/// Issue 14: a JSON template's duplicate key is refused as a YAML one is, and a number its
/// reader would change (beyond 64-bit integers, `1e-400`, digits past double precision) is
/// refused with its line, never silently changed; quoted, it is text and stays as written.
#[test]
fn duplicate_json_keys_and_numbers_that_cannot_be_kept_are_refused() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let templates = project.join("templates");
    std::fs::write(
        templates.join("dup.json"),
        "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"ConfigMap\",\n\t\"metadata\": {\"name\": \"dup\", \"name\": \"other\"}\n}\n",
    )
    .expect("write");
    std::fs::write(
        templates.join("numbers.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: numbers\ndata: {}\nspec:\n  tiny: 1e-400\n  huge: 18446744073709551616\n  quoted: \"1e-400\"\n",
    )
    .expect("write");
    let stderr = sandbox.fails(2, &["render", "-C", dir]);
    assert!(stderr.contains("templates/dup.json:4: duplicate mapping key: name"), "{stderr}");
    assert!(
        stderr.contains("templates/numbers.yaml:7: the number `1e-400` cannot be kept exactly"),
        "{stderr}"
    );
    assert!(
        stderr.contains("templates/numbers.yaml:8: the number `18446744073709551616`"),
        "{stderr}"
    );
    assert!(!stderr.contains(":9:"), "a quoted number is text: {stderr}");

    std::fs::write(
        templates.join("dup.json"),
        "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"ConfigMap\",\n\t\"metadata\": {\"name\": \"tabs\"}\n}\n",
    )
    .expect("write");
    std::fs::remove_file(templates.join("numbers.yaml")).expect("rm");
    let rendered = sandbox.ok(&["render", "-C", dir]);
    assert!(rendered.contains("name: tabs"), "tab-indented JSON is read: {rendered}");
}
