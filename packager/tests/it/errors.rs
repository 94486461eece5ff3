//! How failures look: the exit code of each concern, JSON errors for scripts, plain log lines.

use forge_testkit::{Registry, RegistryKind};

use crate::harness::{self, Sandbox};

/// Issue 13: with `--output json`, an error is one JSON object on stderr (stdout stays empty),
/// with the exit code, the message and the hint.
#[test]
fn json_errors_are_one_object_on_stderr_with_code_message_and_hint() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["inspect", "company/monorepo/nothing:1", "--output", "json"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(output.stdout.is_empty(), "errors never go to stdout");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let error: serde_json::Value = serde_json::from_str(&stderr).expect("one JSON object");
    assert_eq!(error["error"]["code"], 3);
    let message = error["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("no releases in oci:")
            && message.ends_with("/company/monorepo/nothing"),
        "a release not found names where it was looked for: {message}"
    );
    assert_eq!(error["error"]["hint"], "build or push a release first, or check --registry");
}

/// Issue 13: a forge.yaml syntax error is said once, naming the file and the line, without
/// the parser's own `error:` prefix or `<input>` label.
#[test]
fn forge_yaml_errors_name_the_file_and_line_once() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    std::fs::write(project.join("forge.yaml"), "project: a\nrepository: b/c\ntemplate: x\n")
        .expect("write");
    let stderr = sandbox.fails(2, &["render", "-C", project.to_str().expect("utf-8")]);
    assert!(
        stderr.starts_with(
            "error: invalid [SANDBOX]/auth-service/forge.yaml: line 3 column 1: unknown field `template`"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert!(!stderr.contains("<input>"), "{stderr}");
}

/// Issue 13: a local file that cannot be written is a local failure (9), not a registry
/// failure (4).
#[test]
fn a_local_write_failure_is_not_a_registry_failure() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let mut build = vec!["build", "-C", project.to_str().expect("utf-8")];
    build.extend(harness::pinned());
    sandbox.ok(&build);
    // Not even root can create a directory under /proc.
    let stderr = sandbox.fails(
        9,
        &["pull", "company/monorepo/auth-service:1", "--out", "/proc/forge-pack-test/out"],
    );
    assert!(stderr.starts_with("error: /proc/forge-pack-test: "), "{stderr}");
}

/// Issue 13: off a terminal, log lines carry no colour escapes and no timestamps (CI logs
/// stamp lines themselves).
#[test]
fn log_lines_off_a_terminal_are_plain() {
    let registry = Registry::shared(RegistryKind::Plain);
    let sandbox = Sandbox::new();
    let project = format!("{}/company/empty", registry.unique_root("plain-logs"));
    let output =
        sandbox.command(&["list", &project]).env("FORGE_LOG", "debug").output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(stderr.lines().count() > 2, "debug logging logs: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes: {stderr}");
    for line in stderr.lines() {
        let stamped = line.len() > 4 && line[..4].bytes().all(|b| b.is_ascii_digit());
        assert!(!stamped, "no timestamps: {line}");
    }
}

/// Issue 13: `--help` shows the options every command takes under a heading of their own.
#[test]
fn global_options_have_their_own_help_heading() {
    let sandbox = Sandbox::new();
    let help = sandbox.ok(&["inspect", "--help"]);
    let global = help.find("Global options:").expect("a global options heading");
    let registry = help.find("--registry <REGISTRY>").expect("--registry");
    let show = help.find("--show <KIND/NAME>").expect("--show");
    assert!(show < global && global < registry, "{help}");
    assert!(help.contains("Registry access (global):"), "{help}");
}

/// Issue 19: the field's spellings. `-o` is the output format (`list -o json`), and `-o <dir>`
/// where a directory once went says what to write instead; `completion` (and `completions`);
/// `--plain-http`, with `--insecure` as a warning alias.
#[test]
fn the_cli_speaks_as_kubectl_helm_and_oras_do() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut args = harness::push_args(dir, harness::COMMIT);
    args[0] = "build";
    sandbox.ok(&args);
    let listed = sandbox.ok(&["list", "company/monorepo/auth-service", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert!(listed.is_array() || listed.is_object(), "{listed}");
    let out = sandbox.path().join("out");
    let stderr = sandbox
        .fails(2, &["pull", "company/monorepo/auth-service:1", "-o", out.to_str().expect("utf-8")]);
    assert!(
        stderr.contains("is not an output format (text, json)") && stderr.contains("--out DIR"),
        "{stderr}"
    );
    sandbox.ok(&["pull", "company/monorepo/auth-service:1", "--out", out.to_str().expect("utf-8")]);
    for word in ["completion", "completions"] {
        assert!(sandbox.ok(&[word, "bash"]).contains("forge-pack"), "{word}");
    }
    let warned = sandbox.run(&["list", "company/monorepo/auth-service", "--insecure"]);
    assert!(warned.status.success());
    assert!(
        String::from_utf8_lossy(&warned.stderr)
            .contains("--insecure (FORGE_INSECURE_REGISTRY) is now --plain-http")
    );
    assert!(
        sandbox.run(&["list", "company/monorepo/auth-service", "--plain-http"]).status.success()
    );
}
