//! `forge-pack render`: print the rendered objects, or write them as files.

use forge_release::objects::ResourceFile;

use crate::cli::RenderArgs;
use crate::commands::render_project;
use crate::error::{Error, exit};
use crate::fsutil;
use crate::output::Output;

/// Runs `render`.
pub async fn run(
    args: &RenderArgs,
    global: &crate::cli::GlobalArgs,
    output: &Output,
) -> Result<u8, Error> {
    let config = crate::config::ProjectConfig::load(&args.project.project_dir)?;
    let rendered = render_project(&args.project.project_dir, &config, &args.artifacts, None)?;
    let mut files = rendered.files;
    super::check_images(
        &mut files,
        &args.artifacts,
        &crate::access::Access::from_args(global)?,
        output,
    )
    .await?;
    match &args.out {
        Some(dir) => {
            fsutil::write_new_dir(
                dir,
                files.iter().map(|f| (f.path.as_str(), f.content.as_slice())),
            )?;
            output.note(&format!("wrote {} objects to {}", files.len(), dir.display()));
        }
        None if output.json() => {
            let objects: Vec<serde_json::Value> =
                files.iter().map(to_json).collect::<Result<_, _>>()?;
            output.print_json(&objects)?;
        }
        None => output.print(&yaml_stream(&files))?,
    }
    Ok(exit::OK)
}

/// The objects as one YAML stream, each document introduced by `---`.
pub fn yaml_stream(files: &[ResourceFile]) -> String {
    let mut stream = String::new();
    for file in files {
        stream.push_str("---\n");
        stream.push_str(&String::from_utf8_lossy(&file.content));
    }
    stream
}

fn to_json(file: &ResourceFile) -> Result<serde_json::Value, Error> {
    let text = String::from_utf8_lossy(&file.content);
    forge_release::yaml::from_str(&text).map_err(|e| Error::input(format!("{}: {e}", file.path)))
}
