//! `forge-pack login` / `logout`: keep a registry's credentials in the auth file other tools
//! read (`REGISTRY_AUTH_FILE`, else the docker config), as `docker login` and `oras login`
//! write them, after checking the registry accepts them; so that CI and people need no other
//! tool. The file is written whole or not at all, readable by its owner only.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::access::Access;
use crate::cli::{GlobalArgs, LoginArgs};
use crate::error::{Error, exit};
use crate::fsutil::LocalError;
use crate::output::Output;

fn auth_file() -> Result<PathBuf, Error> {
    forge_store::registry::credentials::login_file().ok_or_else(|| {
        Error::usage_hint(
            "no auth file to write: neither REGISTRY_AUTH_FILE, DOCKER_CONFIG nor HOME is set",
            "set REGISTRY_AUTH_FILE to the file to keep credentials in",
        )
    })
}

/// The registry's host (`host[:port]`), from `host[:port][/path]` or a URL.
fn host_of(registry: &str) -> Result<String, Error> {
    let text = registry.trim_start_matches("https://").trim_start_matches("http://");
    let host = text.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(Error::usage(format!("`{registry}` is not a registry host")));
    }
    Ok(host.to_owned())
}

fn read(path: &Path) -> Result<Map<String, Value>, Error> {
    match forge_store::bounded::read_file(path, 4 << 20) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            // Where, not what: the file holds secrets.
            _ => Err(Error::usage(format!("{} is not a JSON auth file", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(LocalError::io(path, e).into()),
    }
}

fn write(path: &Path, file: &Map<String, Value>) -> Result<(), Error> {
    use std::io::Write;
    let io = |e| LocalError::io(path, e);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let bytes = serde_json::to_vec_pretty(&Value::Object(file.clone())).expect("JSON");
    temp.write_all(&bytes).and_then(|()| temp.write_all(b"\n")).map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Runs `login`.
pub async fn login(args: &LoginArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let host = host_of(&args.registry)?;
    let access = Access::from_args(global)?;
    let (Some(store), Some(credentials)) =
        (access.login_store(&host)?, access.explicit_credentials())
    else {
        return Err(Error::usage_hint(
            "login needs credentials",
            "pipe the password or token: `echo \"$TOKEN\" | forge-pack login <registry> --username <user> --password-stdin`",
        ));
    };
    store.check_login().await?;
    let path = auth_file()?;
    let mut file = read(&path)?;
    let auths = file.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(Error::usage(format!("{}: `auths` is not an object", path.display())));
    };
    let token = format!("{}:{}", credentials.username, credentials.password.expose());
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(STANDARD.encode(token)));
    auths.insert(host.clone(), Value::Object(entry));
    if file.contains_key("credsStore") {
        output.warn(&format!(
            "{} names a credential store (credsStore); the credentials for {host} are kept in the file itself",
            path.display()
        ));
    }
    write(&path, &file)?;
    output.note(&format!("logged in to {host}; credentials kept in {}", path.display()));
    if output.json() {
        output.print_json(&serde_json::json!({"registry": host, "authFile": path}))?;
    }
    Ok(exit::OK)
}

/// Runs `logout`.
pub fn logout(args: &LoginArgs, output: &Output) -> Result<u8, Error> {
    let host = host_of(&args.registry)?;
    let path = auth_file()?;
    let mut file = read(&path)?;
    let removed = file
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|auths| auths.remove(&host))
        .is_some();
    if removed {
        write(&path, &file)?;
        output.note(&format!("logged out of {host} (removed from {})", path.display()));
    } else {
        output.note(&format!("not logged in to {host} in {}", path.display()));
    }
    if output.json() {
        output.print_json(&serde_json::json!({"registry": host, "removed": removed}))?;
    }
    Ok(exit::OK)
}
