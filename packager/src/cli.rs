//! Command-line definitions (clap derive). Flags shared by commands are defined once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, store, inspect and deploy immutable Kubernetes releases for Argo CD.
#[derive(Debug, Parser)]
#[command(name = "forge-pack", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Output format: text for people, json for scripts.
    #[arg(short = 'o', long, global = true, value_parser = output_format, default_value = "text", value_name = "FORMAT")]
    pub output: OutputFormat,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress display.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Give up after this long (`300`, `90s`, `5m`): every registry request has its own
    /// connect and read timeouts too.
    #[arg(long, global = true, env = "FORGE_TIMEOUT", value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub timeout: std::time::Duration,
    /// Release store for references without a registry host: a registry (`host[/prefix]`) or
    /// `oci:<dir>` (default: the project's `registry:`, else the embedded store).
    #[arg(long, global = true, env = "FORGE_REGISTRY", value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// Registry credentials and transport.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// JSON on stdout.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the project's templates and print the objects as a YAML stream.
    Render(RenderArgs),
    /// Render and package a release into the local release store.
    Build(ReleaseArgs),
    /// Render, package and publish a release to the registry, if release.on admits it.
    Push(PushArgs),
    /// Show what a release is, where it came from and what it deploys.
    Inspect(InspectArgs),
    /// List a project's releases, newest first.
    List(ListArgs),
    /// Extract a release's verified manifests into a directory.
    Pull(PullArgs),
    /// Copy a release (or, with --all, every release of a project) into another repository,
    /// byte for byte, with its tags and signatures.
    Copy(CopyArgs),
    /// Export a release as one OCI image-layout tarball (for a site without network access).
    Export(ExportArgs),
    /// Import the releases of an exported tarball into a registry (digests preserved).
    Import(ImportArgs),
    /// Compare two releases object by object (exit 0 identical, 1 different, 2+ error).
    Diff(DiffArgs),
    /// Deploy a release to an environment: check the policy, move the GitOps pointer, commit.
    Deploy(DeployArgs),
    /// Deploy the previous release of an environment again (or the named one).
    Rollback(RollbackArgs),
    /// Approve a release for an environment: a record signed with your SSH key, committed to
    /// the GitOps repository.
    Approve(ApproveArgs),
    /// Show which release each environment runs, from the GitOps checkout.
    Status(StatusArgs),
    /// Sign a release in its registry (cosign's formats: a sigstore bundle referrer and a
    /// classic .sig image).
    Sign(SignArgs),
    /// Check a release's signatures (forge-pack's or cosign's) against public keys.
    Verify(VerifyArgs),
    /// Log in to a registry: check the credentials (--username, --password-stdin) and keep
    /// them in the auth file (REGISTRY_AUTH_FILE, else the docker config).
    Login(LoginArgs),
    /// Log out of a registry: remove its credentials from the auth file.
    Logout(LoginArgs),
    /// Print shell completions.
    #[command(alias = "completions")]
    Completion(CompletionsArgs),
}

/// Where the project is.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// Project directory holding forge.yaml.
    #[arg(long, short = 'C', default_value = ".", value_name = "DIR")]
    pub project_dir: PathBuf,
}

/// Where artifact values come from.
#[derive(Debug, Clone, Default, Args)]
pub struct ArtifactArgs {
    /// Artifact values file (forge Artifacts, component-tags.json, a `services` or
    /// `repositories` release manifest; detected from content). Repeatable.
    #[arg(long = "artifacts", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// One artifact value, `<name>.<field>=<value>`. Repeatable.
    #[arg(long = "artifact", value_name = "NAME.FIELD=VALUE")]
    pub values: Vec<String>,
    /// Pin every container image given by tag to its digest, looked up in its registry.
    #[arg(long)]
    pub resolve_digests: bool,
    /// Fail if any container image is not pinned by digest.
    #[arg(long)]
    pub require_digests: bool,
    /// What rendering may read: the project directory and the library paths inside the
    /// repository (`project`), or anything (`none`).
    #[arg(long, value_enum, default_value_t = LoadRestrictor::Project, value_name = "RESTRICTOR")]
    pub load_restrictor: LoadRestrictor,
    /// Jsonnet external variable as a string (`std.extVar`). Repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = key_value)]
    pub ext_str: Vec<(String, String)>,
    /// Jsonnet external variable as code. Repeatable.
    #[arg(long, value_name = "NAME=CODE", value_parser = key_value)]
    pub ext_code: Vec<(String, String)>,
    /// Jsonnet top-level argument as a string. Repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = key_value)]
    pub tla_str: Vec<(String, String)>,
    /// Jsonnet top-level argument as code. Repeatable.
    #[arg(long, value_name = "NAME=CODE", value_parser = key_value)]
    pub tla_code: Vec<(String, String)>,
}

/// `--load-restrictor` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LoadRestrictor {
    /// Only the project directory and the library paths inside the repository.
    #[default]
    Project,
    /// Anything (a release may then depend on files its commit does not hold).
    None,
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration like 90s or 5m"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("`{text}` is not a duration like 90s or 5m")),
    };
    if seconds == 0 {
        return Err("the timeout must be longer than zero".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// `render` arguments.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Artifact values.
    #[command(flatten)]
    pub artifacts: ArtifactArgs,
    /// Write one file per object into this directory (the release tarball's layout) instead
    /// of printing a stream.
    #[arg(long = "out", visible_alias = "output-dir", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `build` and `push` arguments.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Artifact values.
    #[command(flatten)]
    pub artifacts: ArtifactArgs,
    /// Source facts overriding CI variables and git.
    #[command(flatten)]
    pub source: SourceFlags,
    /// Release even if templates or forge.yaml have uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Release by hand: trigger `manual`, and `release.on` is not consulted.
    #[arg(long)]
    pub manual: bool,
}

/// `push` arguments.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// What to release.
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Signing.
    #[command(flatten)]
    pub signing: SigningFlags,
}

/// How to sign a release.
#[derive(Debug, Clone, Args)]
pub struct SigningFlags {
    /// Sign the release with this private key (PEM ECDSA P-256: PKCS#8, SEC1, or cosign's
    /// encrypted cosign.key, opened with COSIGN_PASSWORD).
    #[arg(long, env = "FORGE_SIGN_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Which signature forms to write: `bundle` (cosign v3), `classic` (.sig, cosign v2 and
    /// older), or `both`.
    #[arg(long, value_enum, default_value_t = SignatureForms::Both, value_name = "FORMS")]
    pub signature_format: SignatureForms,
}

/// `--signature-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignatureForms {
    /// A sigstore bundle attached as an OCI referrer.
    Bundle,
    /// A classic `sha256-<hex>.sig` image.
    Classic,
    /// Both, so that every cosign version verifies it.
    Both,
}

impl SignatureForms {
    /// The forms to write.
    pub fn forms(self) -> Vec<forge_store::signatures::SignatureForm> {
        use forge_store::signatures::SignatureForm;
        match self {
            SignatureForms::Bundle => vec![SignatureForm::Bundle],
            SignatureForms::Classic => vec![SignatureForm::Classic],
            SignatureForms::Both => vec![SignatureForm::Bundle, SignatureForm::Classic],
        }
    }
}

/// `sign` arguments.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Release reference: `[<registry>/]<repository>/<project>:<id>`.
    pub reference: String,
    /// The private key (PEM ECDSA P-256: PKCS#8, SEC1, or cosign's encrypted cosign.key,
    /// opened with COSIGN_PASSWORD).
    #[arg(long, env = "FORGE_SIGN_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Which signature forms to write.
    #[arg(long, value_enum, default_value_t = SignatureForms::Both, value_name = "FORMS")]
    pub signature_format: SignatureForms,
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Release reference: `[<registry>/]<repository>/<project>:<id>`.
    pub reference: String,
    /// A trusted public key (PEM, as cosign.pub). Repeatable: any of them will do.
    #[arg(long, required = true, value_name = "FILE")]
    pub key: Vec<PathBuf>,
}

/// `inspect` arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Release reference: `[<registry>/]<repository>/<project>:<id>` or `oci:<dir>:<id>`;
    /// `<id>` is a number, alias, commit SHA or SHA prefix.
    pub reference: String,
    /// List every object.
    #[arg(long)]
    pub resources: bool,
    /// Print one object, as `<kind>/<name>` or `<namespace>/<kind>/<name>`.
    #[arg(long, value_name = "KIND/NAME")]
    pub show: Option<String>,
    /// List the container images the release's objects run (with their digests when pinned).
    #[arg(long)]
    pub images: bool,
    /// Show the release's build provenance, verified with --key.
    #[arg(long, requires = "key")]
    pub provenance: bool,
    /// A trusted public key (PEM) for --provenance. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
}

/// `list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Project: `[<registry>/]<repository>/<project>` or `oci:<dir>`.
    pub project: String,
}

/// `pull` arguments.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Release reference.
    pub reference: String,
    /// Directory to create with the release's files.
    #[arg(long = "out", visible_alias = "output-dir", value_name = "DIR")]
    pub out: PathBuf,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier release.
    pub from: String,
    /// The later release.
    pub to: String,
}

/// The GitOps checkout.
#[derive(Debug, Clone, Args)]
pub struct GitopsDirArgs {
    /// Checkout of the GitOps repository (pointers under `envs/`, `policy.yaml` at the root).
    #[arg(long, env = "FORGE_GITOPS", default_value = ".", value_name = "DIR")]
    pub gitops: PathBuf,
}

/// Options of commands that move a pointer.
#[derive(Debug, Clone, Args)]
pub struct PointerChangeArgs {
    /// The GitOps checkout.
    #[command(flatten)]
    pub dir: GitopsDirArgs,
    /// Who is deploying (default: the CI user, else git's user.name).
    #[arg(long, env = "FORGE_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// Push the commit to the checkout's upstream branch (catching up with it, and checking
    /// the policy again, when it moved on).
    #[arg(long)]
    pub push: bool,
    /// Point the environment at this release even if its pointer names another repository's
    /// project of the same name.
    #[arg(long)]
    pub replace: bool,
    /// Your SSH key (listed in the allowed-signers file; default: git's user.signingkey):
    /// where approvals are required, the deployer proves who they are with it, so that their
    /// own approval cannot count.
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
}

/// `deploy` arguments.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// `<ENVIRONMENT> <PROJECT> <RELEASE>`, or with --auto `<PROJECT> <RELEASE>`. The
    /// environment as the policy names it (`staging`); the project by its name once the GitOps
    /// repository deploys it somewhere, otherwise its location
    /// `[<registry>/]<repository>/<project>` or `oci:<dir>`; the release by number, alias,
    /// commit SHA or SHA prefix.
    #[arg(value_name = "ENVIRONMENT PROJECT RELEASE", num_args = 2..=3, required = true)]
    pub targets: Vec<String>,
    /// Deploy to every environment whose policy says `auto_deploy: true` and admits the
    /// release; the others are left as they are.
    #[arg(long)]
    pub auto: bool,
    /// GitOps checkout, actor, push.
    #[command(flatten)]
    pub change: PointerChangeArgs,
}

impl DeployArgs {
    /// The environment (none with --auto), the project and the release id.
    pub fn parts(&self) -> Result<(Option<&str>, &str, &str), String> {
        match (self.auto, self.targets.as_slice()) {
            (false, [env, project, release]) => Ok((Some(env), project, release)),
            (true, [project, release]) => Ok((None, project, release)),
            (false, _) => Err("deploy takes <ENVIRONMENT> <PROJECT> <RELEASE>".into()),
            (true, _) => Err(
                "deploy --auto takes <PROJECT> <RELEASE>: the environments are the policy's auto_deploy ones"
                    .into(),
            ),
        }
    }
}

/// `approve` arguments.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Environment, as named in the policy (`production`).
    pub environment: String,
    /// Project: its name once the GitOps repository deploys it somewhere, otherwise its
    /// location `[<registry>/]<repository>/<project>` or `oci:<dir>`.
    pub project: String,
    /// Release id: number, alias, commit SHA or SHA prefix (the approval names its digest).
    pub release: String,
    /// Why it may go there (a change ticket, a review): recorded and signed.
    #[arg(long)]
    pub justification: String,
    /// SSH private key to sign with (or a public key whose private half ssh-agent holds;
    /// default: git's `user.signingkey`).
    #[arg(long, env = "FORGE_APPROVAL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Who approves, as the allowed-signers file names them (default: git's `user.email`).
    #[arg(long, env = "FORGE_APPROVER", value_name = "PRINCIPAL")]
    pub approver: Option<String>,
    /// The GitOps checkout.
    #[command(flatten)]
    pub dir: GitopsDirArgs,
    /// Push the commit to the checkout's upstream branch (catching up with it when it moved
    /// on).
    #[arg(long)]
    pub push: bool,
}

/// `rollback` arguments.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Environment.
    pub environment: String,
    /// Project name.
    pub project: String,
    /// Release id to go back to (default: the release deployed before the current one).
    pub release: Option<String>,
    /// GitOps checkout, actor, approval, push.
    #[command(flatten)]
    pub change: PointerChangeArgs,
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this project.
    pub project: Option<String>,
    /// The GitOps checkout.
    #[command(flatten)]
    pub dir: GitopsDirArgs,
}

/// `copy` arguments.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The release (`<project>:<id>`), or with --all the project, to copy.
    pub source: String,
    /// The repository to copy into: `[<registry>/]<repository>/<project>` or `oci:<dir>`.
    pub destination: String,
    /// Copy every (complete) release of the project.
    #[arg(long)]
    pub all: bool,
}

/// `export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The release: `[<registry>/]<repository>/<project>:<id>`.
    pub reference: String,
    /// The tarball to write.
    #[arg(long = "out", value_name = "FILE")]
    pub out: PathBuf,
    /// Carry every container image the release's objects run too (by digest; images named
    /// by tag are resolved first and the digest recorded), for a site without network access.
    #[arg(long)]
    pub images: bool,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tarball `export` wrote.
    pub archive: PathBuf,
    /// Where its releases go: `<registry>[/<prefix>]`; each lands at
    /// `<destination>/<repository>/<project>`, and each container image it carries at
    /// `<destination>/<image host>/<image path>` (a port's `:` as `_`).
    pub destination: String,
}

/// `login` and `logout` arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: `host[:port]`.
    pub registry: String,
}

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Registry access flags, defined once for every command.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Registry access (global)")]
pub struct AccessArgs {
    /// Registry user name (with --password-stdin); otherwise FORGE_REGISTRY_USERNAME and
    /// FORGE_REGISTRY_PASSWORD, then the docker config and credential helpers.
    #[arg(long, global = true, value_name = "USER")]
    pub username: Option<String>,
    /// Read the registry password or token from the first line of stdin.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// Extra CA certificate (PEM) to trust for registries (repeatable).
    #[arg(long, global = true, env = "FORGE_CA_FILE", value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback (as oras and helm spell it).
    #[arg(long, global = true, env = "FORGE_PLAIN_HTTP")]
    pub plain_http: bool,
    /// The former name of --plain-http (it never skipped TLS verification); warns.
    #[arg(long, global = true, hide = true, env = "FORGE_INSECURE_REGISTRY")]
    pub insecure: bool,
}

/// Values given on the command line; each wins over CI and git.
#[derive(Debug, Clone, Default, Args)]
pub struct SourceFlags {
    /// Commit SHA of the release (default: HEAD of the checkout).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Commit time, RFC 3339 or seconds since the epoch (default: the commit's).
    #[arg(long, value_name = "TIME")]
    pub commit_time: Option<String>,
    /// Branch the commit was built from.
    #[arg(long)]
    pub branch: Option<String>,
    /// Git tag on the commit (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Commit author as `Name <email>`.
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub author: Option<String>,
    /// Commit message.
    #[arg(long)]
    pub message: Option<String>,
    /// Source repository URL.
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
    /// What caused this release.
    #[arg(long, value_enum)]
    pub trigger: Option<TriggerArg>,
}

/// `--trigger` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriggerArg {
    /// A push to a branch.
    BranchPush,
    /// A pushed git tag.
    Tag,
    /// Released by hand.
    Manual,
    /// A pull (merge) request's build.
    PullRequest,
}

/// `--output`/`-o`: a format. `-o <dir>` once meant a directory for `pull` and `render`; that
/// use gets a hint rather than a bare "invalid value".
fn output_format(value: &str) -> Result<OutputFormat, String> {
    match value {
        "text" => Ok(OutputFormat::Text),
        "json" => Ok(OutputFormat::Json),
        other => Err(format!(
            "`{other}` is not an output format (text, json); `-o` is the format, as in kubectl and helm: a directory for pull or render is given with --out DIR"
        )),
    }
}
