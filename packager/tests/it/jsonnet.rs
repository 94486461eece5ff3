//! Jsonnet templates: libraries, forge.libsonnet, TLAs and ext vars, errors, reproducibility.

use crate::harness::{self, Sandbox, pinned};

fn catalog_artifacts() -> String {
    harness::testdata().join("artifacts/catalog.yaml").display().to_string()
}

#[test]
fn renders_jsonnet_with_libraries_artifacts_and_top_level_arguments() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("catalog");
    let dir = project.display().to_string();
    let args = [
        "render",
        "-C",
        &dir,
        "--artifacts",
        &catalog_artifacts(),
        "--tla-code",
        "replicas=4",
        "--output",
        "json",
    ];
    let objects: serde_json::Value = serde_json::from_str(&sandbox.ok(&args)).expect("json");
    let kinds: Vec<(&str, &str)> = objects
        .as_array()
        .expect("list")
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("Deployment", "catalog-api"),
            ("CronJob", "reindex-a"),
            ("CronJob", "reindex-b"),
            ("ConfigMap", "catalog-settings"),
            ("Service", "catalog-api")
        ]
    );
    assert_eq!(objects[0]["spec"]["replicas"], 4, "--tla-code reaches the top-level function");
    assert_eq!(
        objects[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/catalog-api@sha256:6b3a55e0261b0304143f805a24924d0c1c44524821305f31d9277843b8a10f4e"
    );
    assert_eq!(
        objects[3]["data"]["search"], "registry.example.com/shop/search:v8.13.4",
        "string form in Jsonnet output"
    );
    assert_eq!(objects[3]["data"]["project"], "catalog", "forge.project");
    assert_eq!(objects[3]["data"]["mode"], "on");
}

#[test]
fn a_jsonnet_project_builds_to_the_same_digest_twice() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("catalog");
    let dir = project.display().to_string();
    let mut digests = Vec::new();
    for store in ["one", "two"] {
        let store = format!("oci:{}", sandbox.path().join(store).display());
        let mut args = vec!["build", "-C", &dir, "--registry", &store, "--artifacts"];
        let artifacts = catalog_artifacts();
        args.push(&artifacts);
        args.extend(pinned());
        args.extend(["--output", "json"]);
        let report: serde_json::Value = serde_json::from_str(&sandbox.ok(&args)).expect("json");
        digests.push(report["digest"].as_str().expect("digest").to_owned());
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn jsonnet_errors_and_unknown_artifacts_are_reported_with_their_file() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("catalog");
    std::fs::write(project.join("templates/broken.jsonnet"), "{\n  a: 1,\n  b: ,\n}\n")
        .expect("write");
    let dir = project.display().to_string();
    let stderr = sandbox.fails(
        2,
        &["render", "-C", &dir, "--artifact", "search.image=s", "--artifact", "search.tag=1"],
    );
    assert!(stderr.starts_with("error: rendering failed: 4 problems"), "{stderr}");
    assert!(stderr.contains("templates/broken.jsonnet: "), "{stderr}");
    assert!(stderr.contains("broken.jsonnet:3"), "a syntax error names its line: {stderr}");
    assert!(
        stderr.contains("templates/catalog.jsonnet: document 2: @artifact(\"catalog-api.ref\"): unknown artifact `catalog-api` (known: search)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("unknown artifact `catalog-worker`").count(), 2, "{stderr}");
}

/// Jsonnet numbers are doubles: large and fractional ones come out as the values they are,
/// not saturated to an integer.
#[test]
fn jsonnet_numbers_keep_their_value() {
    let sandbox = Sandbox::new();
    let project = jsonnet_project(
        &sandbox,
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'n'}, data: {},\n \
         limits: {replicas: 3, ratio: 0.1, huge: 1e21, tiny: 2.5e-7, third: 1/3}}\n",
    );
    let out = sandbox.ok(&["render", "-C", &project]);
    assert!(
        out.contains("limits:\n  huge: 1.0e+21\n  ratio: 0.1\n  replicas: 3\n  third: 0.3333333333333333\n  tiny: 2.5e-7\n"),
        "{out}"
    );
}

/// Writes a one-template project whose `config.jsonnet` is `template`.
fn jsonnet_project(sandbox: &Sandbox, template: &str) -> String {
    let project = sandbox.path().join("single");
    std::fs::create_dir_all(project.join("templates")).expect("mkdir");
    std::fs::write(project.join("forge.yaml"), "project: single\nrepository: t/r\n")
        .expect("write");
    std::fs::write(project.join("templates/config.jsonnet"), template).expect("write");
    project.display().to_string()
}

/// Calls nest as deep as go-jsonnet allows (500, not jrsonnet's own 200); a recursion that
/// never ends is an error whose trace is cut short, not hundreds of lines.
#[test]
fn recursion_is_allowed_as_deep_as_go_jsonnet_and_runaway_recursion_is_reported_briefly() {
    let sandbox = Sandbox::new();
    let deep = jsonnet_project(
        &sandbox,
        "local depth(n) = if n == 0 then 0 else 1 + depth(n - 1);\n\
         {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'd'}, data: {depth: '' + depth(450)}}\n",
    );
    assert!(sandbox.ok(&["render", "-C", &deep]).contains("depth: \"450\""));

    let sandbox = Sandbox::new();
    let forever = jsonnet_project(
        &sandbox,
        "local forever(n) = 1 + forever(n + 1);\n\
         {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'f'}, data: {n: '' + forever(0)}}\n",
    );
    let stderr = sandbox.fails(2, &["render", "-C", &forever]);
    assert!(
        stderr.contains(
            "templates/config.jsonnet: stack overflow: calls nested more than 500 deep (the limit \
             go-jsonnet sets too); look for a recursion that does not end"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("more frames ..."), "{stderr}");
    assert!(stderr.lines().count() < 25, "{stderr}");
}

/// Objects nest at most 100 levels, as forge-cmp reads them back: output up to that renders,
/// deeper output is refused by name, also past the 128 levels the JSON reader stops at.
#[test]
fn output_nested_past_the_limit_is_refused_by_name() {
    let template = |depth: usize| {
        format!(
            "local nest(n) = if n == 0 then {{}} else {{inner: nest(n - 1)}};\n\
             {{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: 'n'}}, data: nest({})}}\n",
            depth - 2
        )
    };
    let sandbox = Sandbox::new();
    let at_limit = jsonnet_project(&sandbox, &template(100));
    assert!(sandbox.ok(&["render", "-C", &at_limit]).contains("inner: {}"));
    for depth in [101, 200] {
        let sandbox = Sandbox::new();
        let too_deep = jsonnet_project(&sandbox, &template(depth));
        let stderr = sandbox.fails(2, &["render", "-C", &too_deep]);
        assert!(
            stderr
                .contains("mappings and lists nested more than 100 levels deep, the most accepted"),
            "{depth}: {stderr}"
        );
    }
}

/// The documents of a Jsonnet file: arrays (nested too) hold documents, an object without a
/// visible `kind` whose values are all objects or arrays maps names to documents in key order,
/// a `*List` stands for its items (which share its document number), and anything else is one
/// document.
#[test]
fn documents_are_found_in_arrays_maps_and_lists_in_a_predictable_order() {
    let template = "local cm(name) = {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}};\n\
        {\n\
          b_list: {apiVersion: 'v1', kind: 'ConfigMapList', items: [cm('l1'), cm('l2')]},\n\
          a_nested: [[cm('n1'), []], cm('n2')],\n\
          c_hidden:: cm('hidden'),\n\
          d: {kind:: 'Hidden', x: cm('x'), y: {}},\n\
          e: {apiVersion: 'v1', kind: 'Listing', metadata: {name: 'e'}, items: [cm('z')]},\n\
        }\n";
    let sandbox = Sandbox::new();
    let project = jsonnet_project(&sandbox, template);
    let out = sandbox.ok(&["render", "-C", &project, "--output", "json"]);
    let objects: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mut names: Vec<&str> = objects
        .as_array()
        .expect("list")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["e", "l1", "l2", "n1", "n2", "x"]);

    // Which document is which shows in problems: one per document, all reported.
    let sandbox = Sandbox::new();
    let project = jsonnet_project(&sandbox, &template.replace("kind: 'ConfigMap'", "kind: 1"));
    let stderr = sandbox.fails(2, &["render", "-C", &project]);
    let documents: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.split("document ").nth(1))
        .filter_map(|rest| rest.split(':').next())
        .collect();
    // n1, n2 (a_nested), l1 and l2 (b_list), x (d); e is an object whose `items` are its own.
    assert_eq!(documents, ["1", "2", "3", "3", "4"], "{stderr}");
}

/// Issue 14: rendering reads the project directory and its library paths only: an absolute
/// `importstr`, a `../` import, a library path outside the repository and a symlinked template
/// pointing outside are each refused, naming the file, unless `--load-restrictor none`.
#[test]
fn reads_outside_the_project_and_its_libraries_are_refused() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("catalog");
    let dir = project.to_str().expect("utf-8");
    let secret = sandbox.path().join("secret.txt");
    std::fs::write(&secret, "hunter2").expect("write");
    let template = project.join("templates/leak.jsonnet");
    let leaks = [
        format!("{{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: 'leak'}}, data: {{s: importstr '{}'}}}}", secret.display()),
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'leak'}, data: {s: importstr '../../secret.txt'}}".to_owned(),
    ];
    let artifacts = harness::testdata().join("artifacts/catalog.yaml");
    let artifacts = artifacts.to_str().expect("utf-8");
    for leak in &leaks {
        std::fs::write(&template, leak).expect("write");
        let stderr = sandbox.fails(2, &["render", "-C", dir, "--artifacts", artifacts]);
        assert!(
            stderr.contains("is outside the project directory and its library paths"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
        let open = sandbox.ok(&[
            "render",
            "-C",
            dir,
            "--artifacts",
            artifacts,
            "--load-restrictor",
            "none",
        ]);
        assert!(open.contains("hunter2"), "the restrictor can be lifted");
    }
    std::fs::remove_file(&template).expect("rm");

    std::os::unix::fs::symlink(&secret, project.join("templates/linked.yaml")).expect("symlink");
    let stderr = sandbox.fails(2, &["render", "-C", dir, "--artifacts", artifacts]);
    assert!(
        stderr.contains("templates/linked.yaml: ") && stderr.contains("outside the project"),
        "{stderr}"
    );
    std::fs::remove_file(project.join("templates/linked.yaml")).expect("rm");

    let config = std::fs::read_to_string(project.join("forge.yaml")).expect("forge.yaml");
    std::fs::write(
        project.join("forge.yaml"),
        config.replace("library_paths: [lib]", "library_paths: [lib, /etc]"),
    )
    .expect("write");
    let stderr = sandbox.fails(2, &["render", "-C", dir, "--artifacts", artifacts]);
    assert!(
        stderr.contains("library path") && stderr.contains("/etc is outside the repository"),
        "{stderr}"
    );
}
