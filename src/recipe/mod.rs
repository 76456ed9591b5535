//! Recipes: the declarative input, in two steps.
//!
//! 1. [`parse`] turns the text into typed values and checks everything that needs no disk:
//!    unknown fields, types, names, tags, image paths, users and owners as written, the
//!    language's own fields and the libc × link × cgo combinations.
//! 2. [`Parsed::resolve`] anchors relative paths at the recipe's folder, checks that the files
//!    exist, loads the base once and resolves users and owners against it.
//!
//! Every error names the file, the line and column, the field, and what is allowed.

mod cfiles;
mod parse;
mod platform;
mod resolve;
#[cfg(test)]
mod tests;

pub use parse::{Parsed, parse};
pub use platform::{Arch, Platform, parse_list as parse_platforms};
pub(crate) use resolve::check_unpacked;

use crate::image::base::Base;
use crate::image::users::User;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The file a recipe folder is expected to hold when a folder is given instead of a file.
pub const RECIPE_FILE: &str = "recipe.toml";

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("reading the recipe {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0)]
    Invalid(Box<Located>),
}

/// What is wrong at a place in a recipe's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// Dotted field name, e.g. `build.source`, when known.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn in_file(self, file: &Path) -> RecipeError {
        RecipeError::Invalid(Box::new(Located {
            file: file.to_path_buf(),
            problem: self,
        }))
    }
}

/// A [`Problem`] in a named recipe file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub problem: Problem,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.problem;
        write!(f, "{}:{}:{}: ", self.file.display(), p.line, p.column)?;
        if let Some(field) = &p.field {
            write!(f, "`{field}`: ")?;
        }
        write!(f, "{}", p.message)?;
        if let Some(help) = &p.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    C,
    Go,
    Rust,
    Prebuilt,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::C => "c",
            Lang::Go => "go",
            Lang::Rust => "rust",
            Lang::Prebuilt => "prebuilt",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LibcChoice {
    Musl,
    Glibc,
    /// No libc at all: Go with cgo off, or a prebuilt binary that needs none.
    None,
}

impl fmt::Display for LibcChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibcChoice::Musl => "musl",
            LibcChoice::Glibc => "glibc",
            LibcChoice::None => "none",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    Static,
    StaticPie,
    /// Allowed so that the refusal can be shown: a dynamic binary cannot run in a scratch image.
    Dynamic,
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkMode::Static => "static",
            LinkMode::StaticPie => "static-pie",
            LinkMode::Dynamic => "dynamic",
        })
    }
}

/// The last second of the year 9999: the latest `created` date an OCI config (RFC 3339) holds.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// Where SOURCE_DATE_EPOCH comes from when the environment does not set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epoch {
    /// Not given: 0.
    Default,
    Fixed(u64),
    /// The last commit time of the recipe's source folder.
    Git,
}

/// A resolved recipe: every path absolute and checked, the base loaded.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    pub name: String,
    pub epoch: Epoch,
    /// `allow_outside`, resolved: the only places outside `dir` the recipe's inputs may be.
    pub allow_outside: Vec<PathBuf>,
    pub build: BuildSpec,
    /// `allow_nss_hazards = true` in `[build]`: its reason. NSS hazards are then packed, as
    /// with `--allow-nss-hazards`.
    pub nss_allowed: Option<String>,
    pub image: ImageSpec,
    pub test: Option<TestSpec>,
}

/// `[build]`: what every language has, and the language's own settings.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    /// Absolute: the source folder (C, Go) or the binary (prebuilt). For an archive source,
    /// the recipe's folder until the pipeline unpacks the archive and points it there.
    pub source: PathBuf,
    /// `source = { archive | url, sha256 }`: what the pipeline unpacks before building.
    pub archive: Option<ArchiveSource>,
    /// Absolute path of the binary inside the image.
    pub output: String,
    /// `[build] timeout_seconds`: the build's wall-clock limit in the jail.
    pub timeout_seconds: u64,
    pub libc: LibcChoice,
    pub link: LinkMode,
    pub lang: LangSpec,
    /// `[[build.deps]]`: C recipes built first (each once), whose installed `$DESTDIR/usr` trees
    /// become this build's sysroot; loaded and checked with this recipe, cycles refused.
    pub deps: Vec<Recipe>,
    /// What the toolchain builds for: the first of `platforms`. Dependencies are built for
    /// the same one.
    pub platform: Platform,
    /// Every platform the image is built for: `[image] platforms`, `--platform`, or the host.
    /// With more than one, the pipeline builds a copy of the recipe per platform (each with
    /// `set_platform`) and writes an index over them.
    pub platforms: Vec<Platform>,
    /// A prebuilt binary per platform (absolute, checked to exist); `source` is the one of
    /// `platform`, or empty when the recipe has none for it.
    pub per_platform: Vec<(Platform, PathBuf)>,
}

impl BuildSpec {
    /// Builds for `platform` alone instead, with every dependency.
    pub fn set_platform(&mut self, platform: &Platform) {
        self.set_platforms(std::slice::from_ref(platform));
    }

    /// Builds for `platforms` instead (the toolchain for the first); an empty list changes
    /// nothing.
    pub fn set_platforms(&mut self, platforms: &[Platform]) {
        let Some(platform) = platforms.first() else {
            return;
        };
        self.platforms = platforms.to_vec();
        self.platform = platform.clone();
        if !self.per_platform.is_empty() {
            self.source = self.source_for(platform).unwrap_or_default();
        }
        for dep in &mut self.deps {
            dep.build.set_platform(platform);
        }
    }

    /// The prebuilt binary the recipe names for `platform`.
    pub fn source_for(&self, platform: &Platform) -> Option<PathBuf> {
        self.per_platform
            .iter()
            .find(|(p, _)| p.arch == platform.arch)
            .map(|(_, path)| path.clone())
    }

    pub fn lang_name(&self) -> Lang {
        match self.lang {
            LangSpec::C(_) => Lang::C,
            LangSpec::Go(_) => Lang::Go,
            LangSpec::Rust(_) => Lang::Rust,
            LangSpec::Prebuilt => Lang::Prebuilt,
        }
    }
}

/// A source tarball pinned by its sha256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSource {
    pub origin: ArchiveOrigin,
    pub sha256: crate::digest::Digest,
    /// Leading path components dropped from every entry (1: the `project-1.0/` folder).
    pub strip_components: u32,
    pub format: ArchiveFormat,
    /// `max_unpack_bytes`: the recipe's own bound on what the archive unpacks to, in place of
    /// the default limit and expansion ratio (for a trusted archive that passes them).
    pub max_unpack_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveOrigin {
    /// Absolute, inside the recipe's folder.
    File(PathBuf),
    Url(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGz,
    TarXz,
    TarBz2,
}

impl ArchiveFormat {
    /// By the name's ending (a URL's query and fragment aside).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.split(['?', '#']).next().unwrap_or(name);
        let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
        Some(if ends(&[".tar.gz", ".tgz", ".crate"]) {
            ArchiveFormat::TarGz
        } else if ends(&[".tar.xz", ".txz"]) {
            ArchiveFormat::TarXz
        } else if ends(&[".tar.bz2", ".tbz2", ".tbz"]) {
            ArchiveFormat::TarBz2
        } else if ends(&[".tar"]) {
            ArchiveFormat::Tar
        } else {
            return None;
        })
    }
}

/// One type per language: a field exists only where the language uses it.
#[derive(Clone, Debug)]
pub enum LangSpec {
    C(CBuild),
    Go(GoBuild),
    Rust(RustBuild),
    /// Packed as it is: staticpack does not modify a binary it did not build.
    Prebuilt,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CBuild {
    /// Relative to the source folder, sorted: what `patterns` matched.
    pub files: Vec<String>,
    /// `files` and `exclude` as written (kept to match an archive once it is unpacked).
    pub patterns: FilePatterns,
    /// `-I` folders, relative to the source folder.
    pub include_dirs: Vec<String>,
    /// `-D` macros: `NAME` or `NAME=VALUE`.
    pub defines: Vec<String>,
    pub cflags: Vec<String>,
    pub ldflags: Vec<String>,
    pub strip: bool,
    /// The project's own build system instead of `files`.
    pub commands: Option<Commands>,
}

/// Which C files a file-list build compiles: paths or globs (`src/**/*.c`), relative to the
/// source folder; no `files` means `*.c` at its top.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilePatterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// `commands` (or a `system` that stands for them), and what of their result is packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commands {
    /// Each run with `sh -c` in a copy of the source; empty when `system` is given.
    pub lines: Vec<String>,
    /// `system = "…"`: the commands are that build system's usual ones, written out at build
    /// time (they name files in the build folder).
    pub system: Option<SystemBuild>,
    /// The built binary, relative to the copy; `None` is `install = true`: everything under
    /// `$DESTDIR` is packed.
    pub artifact: Option<String>,
}

/// A build system staticpack knows how to drive (`system = "…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildSystem {
    Make,
    Autotools,
    Cmake,
    Meson,
}

impl fmt::Display for BuildSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildSystem::Make => "make",
            BuildSystem::Autotools => "autotools",
            BuildSystem::Cmake => "cmake",
            BuildSystem::Meson => "meson",
        })
    }
}

/// `system` with its `configure_args` and `make_args`, as written (each one argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemBuild {
    pub system: BuildSystem,
    pub configure_args: Vec<String>,
    /// Targets and `VAR=value` (for make and autotools; targets only for cmake and meson).
    pub make_args: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoBuild {
    /// The main package relative to the source folder, e.g. "." or "./cmd/app", or one file
    /// ("./prog.go", built alone as `go build prog.go`).
    pub package: String,
    /// CGO_ENABLED.
    pub cgo: bool,
    /// Build tags, e.g. ["netgo", "osusergo"].
    pub tags: Vec<String>,
    /// Added to `go build -ldflags`.
    pub ldflags: Vec<String>,
    pub strip: bool,
}

/// `lang = "rust"`: one `cargo build` of a locked workspace, for the musl or gnu target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustBuild {
    /// `cargo build -p`: the workspace member to build.
    pub package: Option<String>,
    /// `--bin`: which binary, when the package has several.
    pub bin: Option<String>,
    pub features: Vec<String>,
    /// `--no-default-features` when false.
    pub default_features: bool,
    /// `--profile`: "release" unless said.
    pub profile: String,
    /// `-C strip=symbols`.
    pub strip: bool,
}

impl RustBuild {
    /// The target triple for a libc on a platform.
    pub fn target(libc: LibcChoice, platform: &Platform) -> String {
        let env = match libc {
            LibcChoice::Glibc => "gnu",
            LibcChoice::Musl | LibcChoice::None => "musl",
        };
        platform.rust_target(env)
    }
}

/// `[image]`: the base and what depends on it, and the settings that do not.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The base as the recipe names it ("scratch", "static", "./mybase").
    pub base: String,
    /// The base, loaded once at resolution: the pipeline layers it as it is.
    pub base_image: Base,
    /// Checked against the base's /etc/passwd and /etc/group.
    pub user: Option<User>,
    /// Extra files, a layer of their own between the base and the binary.
    pub files: Vec<ExtraFile>,
    /// Links in the extra-files layer, e.g. busybox's applets.
    pub symlinks: Vec<Symlink>,
    pub settings: ImageSettings,
}

/// `[[image.symlinks]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symlink {
    /// Inside the image, absolute.
    pub path: String,
    /// As written; not followed at build time.
    pub target: String,
}

/// The image settings that need nothing but the recipe's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSettings {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations, over the ones staticpack fills in.
    pub annotations: BTreeMap<String, String>,
    pub tag: String,
    /// Exposed ports, "8080/tcp" or "53/udp".
    pub ports: Vec<String>,
    pub stop_signal: Option<String>,
    /// How every layer is compressed, the base's included.
    pub compression: crate::image::LayerCompression,
}

#[derive(Clone, Debug)]
pub struct ExtraFile {
    /// Absolute, on the host.
    pub src: PathBuf,
    /// Inside the image, absolute.
    pub dst: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestSpec {
    pub args: Vec<String>,
    pub expect_exit: i32,
    pub expect_stdout: Option<String>,
    pub timeout_seconds: u64,
    /// Prove with a read-only root (for images meant for `readOnlyRootFilesystem`).
    pub read_only: bool,
}

/// Loads a recipe from a file, or from `recipe.toml` inside a folder: read, parse, resolve.
pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
    load_as(path, parse::Purpose::Image, &mut Vec::new())
}

/// [`load`] for a recipe itself (`Image`) or for a dependency (no image is made of it); `stack`
/// holds the recipe files whose dependencies are being loaded, to refuse a cycle.
fn load_as(
    path: &Path,
    purpose: parse::Purpose,
    stack: &mut Vec<PathBuf>,
) -> Result<Recipe, RecipeError> {
    let file = recipe_file(path);
    let text = std::fs::read_to_string(&file).map_err(|source| RecipeError::Read {
        path: file.clone(),
        source,
    })?;
    parse::parse_as(&text, purpose)
        .and_then(|parsed| parsed.resolve_in(&file, stack))
        .map_err(|problem| problem.in_file(&file))
}

/// A recipe file, or `recipe.toml` in a folder.
fn recipe_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(RECIPE_FILE)
    } else {
        path.to_path_buf()
    }
}

/// An image tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with '.' or '-'.
pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}
