//! `forge-pack diff <a> <b>`: what changes between two releases, object by object.

use std::collections::BTreeMap;

use forge_release::FormatError;
use forge_release::tarball::Limits;
use forge_release::verify::VerifiedRelease;
use serde::Serialize;
use serde_json::Value;

use crate::access::Access;
use crate::cli::{DiffArgs, GlobalArgs};
use crate::error::{Error, exit};
use crate::images::images;
use crate::output::Output;

/// The differences, as printed with `--output json`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    /// Release `a` (digest).
    pub from: String,
    /// Release `b` (digest).
    pub to: String,
    /// Objects only in `b`.
    pub added: Vec<String>,
    /// Objects only in `a`.
    pub removed: Vec<String>,
    /// Objects in both that differ.
    pub changed: Vec<ChangedObject>,
}

/// One changed object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedObject {
    /// The object's file path in the releases.
    pub object: String,
    /// Container images that changed.
    pub images: Vec<ImageChange>,
    /// Unified diff of the YAML.
    pub diff: String,
}

/// A container whose image changed.
#[derive(Debug, Serialize)]
pub struct ImageChange {
    /// `containers/<name>`.
    pub container: String,
    /// Image in `a` (absent if the container is new).
    pub from: Option<String>,
    /// Image in `b` (absent if the container was removed).
    pub to: Option<String>,
}

/// Runs `diff`: exit 0 when identical, 1 when different, 2 on any error (as `diff(1)` does).
pub async fn run(args: &DiffArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    compare_refs(args, global, output).await.map_err(|e| Error::Compare(Box::new(e)))
}

async fn compare_refs(args: &DiffArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let a = access.resolve(&args.from).await?;
    let b = access.resolve(&args.to).await?;
    let limits = Limits::default();
    let release_a = a.store.fetch_release(&a.digest, &limits).await?;
    let release_b = b.store.fetch_release(&b.digest, &limits).await?;
    let report = compare(&release_a, &release_b)?;
    let same = report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty();
    if output.json() {
        output.print_json(&report)?;
    } else {
        output.print(&render(&report, &args.from, &args.to))?;
    }
    Ok(if same { exit::OK } else { exit::DIFFERENT })
}

/// Compares two verified releases.
pub fn compare(a: &VerifiedRelease, b: &VerifiedRelease) -> Result<DiffReport, Error> {
    let files = |r: &VerifiedRelease| -> BTreeMap<String, String> {
        r.files
            .iter()
            .map(|f| (f.path.clone(), String::from_utf8_lossy(&f.content).into_owned()))
            .collect()
    };
    let (old, new) = (files(a), files(b));
    let mut report = DiffReport {
        from: a.head.digest.to_string(),
        to: b.head.digest.to_string(),
        ..DiffReport::default()
    };
    for (path, before) in &old {
        match new.get(path) {
            None => report.removed.push(path.clone()),
            Some(after) if after != before => report.changed.push(ChangedObject {
                object: path.clone(),
                images: image_changes(path, before, after)?,
                diff: similar::TextDiff::from_lines(before, after)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string(),
            }),
            Some(_) => {}
        }
    }
    report.added = new.keys().filter(|p| !old.contains_key(*p)).cloned().collect();
    Ok(report)
}

fn image_changes(path: &str, before: &str, after: &str) -> Result<Vec<ImageChange>, Error> {
    let parse = |text: &str| {
        forge_release::objects::read_object(text.as_bytes())
            .map_err(|reason| FormatError::ContentMismatch { path: path.to_owned(), reason })
    };
    let map = |v: &Value| {
        images(v).into_iter().map(|i| (i.container, i.image)).collect::<BTreeMap<_, _>>()
    };
    let (old, new) = (map(&parse(before)?), map(&parse(after)?));
    let mut changes = Vec::new();
    for container in old.keys().chain(new.keys().filter(|k| !old.contains_key(*k))) {
        let (from, to) = (old.get(container), new.get(container));
        if from != to {
            changes.push(ImageChange {
                container: container.clone(),
                from: from.cloned(),
                to: to.cloned(),
            });
        }
    }
    Ok(changes)
}

fn render(report: &DiffReport, from: &str, to: &str) -> String {
    let mut text = String::new();
    if report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty() {
        text.push_str(&format!("{from} and {to} deploy identical objects\n"));
        return text;
    }
    text.push_str(&format!(
        "{} added, {} removed, {} changed ({from} -> {to})\n",
        report.added.len(),
        report.removed.len(),
        report.changed.len()
    ));
    for path in &report.added {
        text.push_str(&format!("+ {path}\n"));
    }
    for path in &report.removed {
        text.push_str(&format!("- {path}\n"));
    }
    for change in &report.changed {
        text.push_str(&format!("~ {}\n", change.object));
        for image in &change.images {
            let show = |i: &Option<String>| i.clone().unwrap_or_else(|| "(none)".into());
            text.push_str(&format!(
                "    image {}: {} -> {}\n",
                image.container,
                show(&image.from),
                show(&image.to)
            ));
        }
    }
    for change in &report.changed {
        text.push('\n');
        text.push_str(&change.diff);
    }
    text
}
