//! `forge-pack render`: print the rendered objects, or write them as files.

use crate::access::Access;
use crate::cli::{GlobalArgs, RenderArgs};
use crate::config::ProjectConfig;
use crate::error::{Error, exit};
use crate::fsutil;
use crate::output::Output;
use crate::render::{self, Content, Keep};

/// Runs `render`.
pub async fn run(args: &RenderArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let config = ProjectConfig::load(&args.project.project_dir)?;
    // JSON output prints the objects themselves; YAML writes each once, after pinning.
    let keep = match (output.json() && args.out.is_none(), args.artifacts.resolve_digests) {
        (true, _) => Keep::All,
        (false, true) => Keep::Unpinned,
        (false, false) => Keep::None,
    };
    let mut rendered = render::render_project(
        &args.project.project_dir,
        &config,
        &args.artifacts,
        None,
        keep,
        None,
    )?;
    let access = Access::from_args(global)?;
    crate::commands::check_images(&mut rendered.objects, &args.artifacts, &access, output).await?;
    if keep == Keep::All {
        let values: Vec<&serde_json::Value> = rendered
            .objects
            .iter()
            .filter_map(|o| match &o.content {
                Content::Value(value) => Some(value),
                Content::Yaml(_) => None,
            })
            .collect();
        output.print_json(&values)?;
        return Ok(exit::OK);
    }
    let files = rendered.into_files()?;
    match &args.out {
        Some(dir) => {
            fsutil::write_new_dir(
                dir,
                files.iter().map(|f| (f.path.as_str(), f.content.as_slice())),
            )?;
            output.note(&format!("wrote {} objects to {}", files.len(), dir.display()));
        }
        None => {
            let mut stream = Vec::new();
            for file in &files {
                stream.extend_from_slice(b"---\n");
                stream.extend_from_slice(&file.content);
            }
            output.print_bytes(&stream)?;
        }
    }
    Ok(exit::OK)
}
