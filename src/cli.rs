//! Command-line definitions (clap derive); the text rendering of reports is in [`render`].

pub mod progress;
pub mod render;
pub mod report;
pub mod sarif;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "staticpack",
    version,
    about = "Reproducible static builds packed into minimal OCI images, verified and proven to run with no libc",
    after_help = "Examples:\n  \
        staticpack build recipes/hello-c                 build, verify, pack and prove (OCI layout in out/hello-c)\n  \
        staticpack build recipes/hello-c --runtime runc  prove it under runc instead of the built-in sandbox\n  \
        staticpack verify ./app /usr/bin/ls              is it static? and if not, why and how to fix it\n  \
        staticpack run out/hello-c:latest -- --selftest  run the image's entrypoint in an empty root\n  \
        staticpack inspect out/hello-c                   show the manifest, config and layers\n\n\
        Exit status: 0 success, 1 failure, 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The cache folder for downloads and build caches [default: $STATICPACK_CACHE, else
    /// $XDG_CACHE_HOME/staticpack, else ~/.cache/staticpack].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a recipe: compile, verify, assemble the image, prove it runs, write the OCI layout.
    #[command(
        after_help = "Examples:\n  staticpack build recipes/hello-c\n  staticpack build recipes/hello-c/recipe.toml --out /tmp/hello --runtime runc\n\n\
        The image is written to out/<name> (an OCI image layout) only after the run proof passed.\n\
        SOURCE_DATE_EPOCH sets the timestamps (default 0)."
    )]
    Build(BuildArgs),
    /// Tell whether ELF files are static, static-pie or dynamic, how they are hardened, and why.
    #[command(
        after_help = "Examples:\n  staticpack verify ./hello\n  staticpack verify --require static-pie ./hello\n  staticpack verify oci:out/hello-c            will this image's entrypoint start? (also oci-archive:FILE)\n  staticpack verify docker://ghcr.io/org/app:1.0   pulled into a private temp dir, then judged\n  staticpack verify --json /usr/bin | jq -r 'select(.facts.linkage != \"dynamic\") | .path'\n\n\
        Directories are walked (symlinks inside them are not followed; non-ELF files are skipped).\n\
        Exit status: 0 every file passes, 1 a file falls short of --require or cannot be read, 2 usage error.\n\
        The --json schema (one object per line, with schema_version) is in docs/verify-json.md;\n\
        --format sarif writes one SARIF 2.1.0 log (docs/verify-sarif.md)."
    )]
    Verify {
        /// ELF files, directories to walk, or images (oci:LAYOUT[:TAG], oci-archive:FILE,
        /// docker-archive:FILE, docker://REGISTRY/REPO[:TAG|@DIGEST]).
        #[arg(required = true, value_name = "PATH|IMAGE")]
        binaries: Vec<PathBuf>,
        /// Exit 1 when a file falls short of this.
        #[arg(long, value_enum, default_value_t = RequireArg::Any)]
        require: RequireArg,
        /// One JSON object per file, on one line each (see docs/verify-json.md); the same as
        /// `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text (default), json (as --json) or sarif: one SARIF 2.1.0 log over every file, for
        /// code-scanning UIs (docs/verify-sarif.md).
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<VerifyFormatArg>,
        /// Accept a static glibc binary that loads NSS modules at run time (getpwnam,
        /// getaddrinfo…) under --require static/static-pie, as `build --allow-nss-hazards` does.
        #[arg(long)]
        allow_nss_hazards: bool,
        /// Refuse a file whose ELF machine is not this platform's (e.g. linux/arm64): it would
        /// fail there with "exec format error".
        #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
        platform: Option<staticpack::recipe::Platform>,
        /// For docker:// images: allow plain HTTP (or TLS without verification) for this
        /// registry (repeatable; loopback registries always are).
        #[arg(long, value_name = "HOST[:PORT]")]
        insecure_registry: Vec<String>,
        /// For docker:// images: give up on a registry request (its answer included) after
        /// this many seconds, as push does.
        #[arg(long, value_name = "SECONDS", default_value_t = NETWORK_TIMEOUT,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Refuse an image whose layers unpack to more file content than this (K, M, G, T:
        /// powers of 1024).
        #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = parse_size)]
        max_unpack_bytes: u64,
        /// Refuse an image whose layers hold more entries than this.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        max_unpack_entries: u64,
        /// For images: check every attached SBOM and in-toto statement (their subject is the
        /// image manifest, the binary they name is the image's, the SBOMs' files are in it, the
        /// verification summary's inputs are attached) and, with --key, every statement's
        /// signature. Exit 1 when any check fails.
        #[arg(long)]
        attestations: bool,
        /// With --attestations: the public key (PEM, ed25519 or ECDSA P-256; `openssl pkey -in
        /// key.pem -pubout`) that signed the statements; an unsigned statement then fails.
        #[arg(long, value_name = "PUB", requires = "attestations")]
        key: Option<PathBuf>,
    },
    /// Run an image's entrypoint from an OCI layout in an empty root (no libc, nothing from the host).
    #[command(
        after_help = "Examples:\n  staticpack run out/hello-c\n  staticpack run out/hello-c:latest --runtime runc -- --selftest"
    )]
    Run {
        /// LAYOUT or LAYOUT:TAG, or oci:LAYOUT[:TAG], oci-archive:FILE, docker-archive:FILE,
        /// docker://REGISTRY/REPO[:TAG|@DIGEST]
        image: String,
        #[arg(long, value_enum, default_value_t = RuntimeArg::Builtin)]
        runtime: RuntimeArg,
        /// Which platform's manifest of an index to run (default: the only one, or the host's);
        /// another CPU's runs under qemu user emulation.
        #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
        platform: Option<staticpack::recipe::Platform>,
        /// Seconds before the container is killed [default: 60]; for docker:// images also
        /// the most one registry request may take, its answer included [default: 120, as for
        /// push].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        timeout: Option<u64>,
        /// Refuse an image whose layers unpack to more file content than this (K, M, G, T:
        /// powers of 1024).
        #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = parse_size)]
        max_unpack_bytes: u64,
        /// Refuse an image whose layers hold more entries than this.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        max_unpack_entries: u64,
        /// For docker:// images: allow plain HTTP (or TLS without verification) for this
        /// registry (repeatable; loopback registries always are).
        #[arg(long, value_name = "HOST[:PORT]")]
        insecure_registry: Vec<String>,
        /// Run with a read-only root (Kubernetes' readOnlyRootFilesystem); by default the root
        /// is writable and thrown away after the run, as docker and podman give it.
        #[arg(long)]
        read_only: bool,
        /// Arguments replacing the image's Cmd.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Push an image from an OCI layout to registries (skips blobs already there, mounts across repositories).
    #[command(
        after_help = "Examples:\n  staticpack push out/hello-c localhost:5000/hello:1.0\n  staticpack push out/hello-c:latest ghcr.io/me/hello:1.0 ghcr.io/me/hello:latest --json\n\n\
        Credentials come from ~/.docker/config.json (auths, credsStore, credHelpers), $DOCKER_CONFIG,\n\
        $REGISTRY_AUTH_FILE or containers' auth.json; see `staticpack login`.\n\
        Plain HTTP is used only for loopback registries or ones named with --insecure-registry."
    )]
    Push {
        /// LAYOUT or LAYOUT:TAG
        image: String,
        /// Where to push: REGISTRY/REPO[:TAG] or REGISTRY/REPO@sha256:…
        #[arg(required = true, value_name = "REFERENCE")]
        references: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check credentials against a registry and store them in the docker config file.
    #[command(
        after_help = "Example:\n  echo \"$TOKEN\" | staticpack login ghcr.io --username me --password-stdin"
    )]
    Login {
        registry: String,
        #[arg(long, short)]
        username: String,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, value_name = "HOST[:PORT]")]
        insecure_registry: Vec<String>,
        /// Give up on a registry request (its answer included) after this many seconds, as
        /// push does.
        #[arg(long, value_name = "SECONDS", default_value_t = NETWORK_TIMEOUT,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Show an OCI layout's manifest, config and layers.
    Inspect {
        /// LAYOUT or LAYOUT:TAG
        image: String,
        /// Which platform's manifest of an index to show (default: every platform's, in turn).
        #[arg(long, value_name = "PLATFORM", value_parser = parse_platform)]
        platform: Option<staticpack::recipe::Platform>,
    },
}

/// `staticpack build`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The recipe file, or a folder holding recipe.toml.
    pub recipe: PathBuf,
    /// Where to write the OCI image layout (default: out/<name>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not run the [test] proof.
    #[arg(long)]
    pub no_run: bool,
    /// What runs the proof.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Builtin)]
    pub runtime: RuntimeArg,
    /// Pack a binary that verify refuses (to watch the run proof fail with the real error).
    #[arg(long)]
    pub allow_dynamic: bool,
    /// Pack a static glibc binary that loads NSS modules (libnss_*.so) at run time.
    #[arg(long)]
    pub allow_nss_hazards: bool,
    /// Rebuild even when the inputs are unchanged, with cold build caches (downloads, checked
    /// by digest, are still reused).
    #[arg(long)]
    pub no_cache: bool,
    /// Stop a build whose folder grows past this (K, M, G, T: powers of 1024); a disk filler
    /// stops here, with the host still usable.
    #[arg(long, value_name = "SIZE", default_value = "32G", value_parser = parse_size)]
    pub max_build_bytes: u64,
    /// Stop a build step that keeps this many processes running at once (a fork bomb).
    #[arg(long, value_name = "N", default_value_t = staticpack::run::DEFAULT_MAX_PROCESSES)]
    pub max_build_processes: u64,
    /// What to write: an OCI layout folder, or one tar file.
    #[arg(long, value_enum, default_value_t = FormatArg::Oci)]
    pub format: FormatArg,
    /// Push the image to this reference after the build (repeatable: several tags/registries).
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    pub push: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The platforms to build for, e.g. linux/arm64 or linux/amd64,linux/arm64 (over the
    /// recipe's [image] platforms). Several make an OCI image index over one image each.
    /// Another CPU is cross-built and proven under qemu user emulation.
    #[arg(long, value_name = "LIST", value_parser = parse_platforms)]
    pub platform: Option<PlatformList>,
    /// Build a second time elsewhere (other folder, time, umask, TZ, LANG, environment noise)
    /// and compare every blob; on a difference, name the layer, file, offset and ELF section.
    #[arg(long)]
    pub check_repro: bool,
    /// Which SBOMs to attach to the image as OCI referrers (the in-toto statements are always
    /// attached; for registries that refuse artifact manifests, push with --no-referrers).
    #[arg(long, value_enum, default_value_t = SbomArg::Both)]
    pub sbom: SbomArg,
    /// DSSE-sign the in-toto statements with this key (PKCS#8 PEM, ed25519 or ECDSA P-256).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SbomArg {
    None,
    Spdx,
    Cyclonedx,
    Both,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RuntimeArg {
    Builtin,
    Runc,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RequireArg {
    Static,
    StaticPie,
    Any,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// OCI image layout folder (default out/<name>)
    Oci,
    /// the layout as a tar file (default out/<name>.oci.tar)
    OciArchive,
    /// a tar for `docker load` / `podman load` (default out/<name>.docker.tar)
    DockerArchive,
}

/// `--timeout`'s default for every command that talks to a registry (push, build --push,
/// login, verify and run of docker:// images): the most one request may take, answer included.
pub const NETWORK_TIMEOUT: u64 = 120;

/// Options shared by every command that talks to a registry.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Allow plain HTTP (or TLS without verification) for this registry (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Print the pushed references and digests as JSON.
    #[arg(long)]
    pub json: bool,
    /// Per-blob progress and notes on stderr even when it is not a terminal.
    #[arg(long, short)]
    pub verbose: bool,
    /// Give up on a registry request (its answer included) after this many seconds; while one
    /// waits, a line on stderr every 10 s says so.
    #[arg(long, value_name = "SECONDS", default_value_t = NETWORK_TIMEOUT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Push the image without its SBOMs and attestations (the OCI 1.1 artifact manifests about
    /// it), for registries that refuse artifacts.
    #[arg(long)]
    pub no_referrers: bool,
}

pub use staticpack::run::parse_size;

/// `--platform LIST`'s platforms (one value: clap would take a `Vec` for repeated flags).
#[derive(Clone, Debug)]
pub struct PlatformList(pub Vec<staticpack::recipe::Platform>);

/// `--platform LIST`: comma-separated OCI platforms.
fn parse_platforms(s: &str) -> Result<PlatformList, String> {
    staticpack::recipe::parse_platforms(s).map(PlatformList)
}

/// `--platform PLATFORM`: one OCI platform.
fn parse_platform(s: &str) -> Result<staticpack::recipe::Platform, String> {
    s.parse()
}

/// `verify --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormatArg {
    Text,
    Json,
    Sarif,
}
