//! Text → typed values, with no filesystem access: everything that can be checked from the
//! recipe's text alone is checked here, so it is unit-tested from strings.

use super::cfiles;
use super::{
    BuildSystem, CBuild, Commands, Epoch, FilePatterns, GoBuild, ImageSettings, Lang, LibcChoice,
    LinkMode, MAX_EPOCH, Problem, RustBuild, Symlink, SystemBuild, TestSpec, is_valid_tag,
};
use crate::image::users::{Owner, User};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

const DEFAULT_TEST_TIMEOUT: u64 = 30;

// ---- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: Spanned<String>,
    epoch: Option<Spanned<RawEpoch>>,
    /// Paths outside the recipe's folder that the recipe may read, said out loud.
    #[serde(default)]
    allow_outside: Vec<Spanned<String>>,
    build: Spanned<RawBuild>,
    #[serde(default)]
    image: RawImage,
    test: Option<RawTest>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEpoch {
    Seconds(i64),
    Word(String),
}

/// Flat as users write it; [`Ctx::parse_build`] sorts the fields into one type per language and
/// refuses the ones the language does not use.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    lang: Spanned<Lang>,
    /// A path, or a table (`archive` | `url`, `sha256`, `strip_components`): read by hand in
    /// [`Ctx::parse_source`] so each mistake names its `build.source` field.
    source: Spanned<toml::Value>,
    libc: Option<Spanned<LibcChoice>>,
    link: Option<Spanned<LinkMode>>,
    output: Option<Spanned<String>>,
    strip: Option<Spanned<bool>>,
    /// The whole build's wall-clock limit in the jail.
    timeout_seconds: Option<Spanned<u64>>,
    ldflags: Option<Spanned<Vec<String>>>,
    // C
    files: Option<Spanned<Vec<Spanned<String>>>>,
    exclude: Option<Spanned<Vec<Spanned<String>>>>,
    include_dirs: Option<Spanned<Vec<Spanned<String>>>>,
    defines: Option<Spanned<Vec<Spanned<String>>>>,
    cflags: Option<Spanned<Vec<String>>>,
    commands: Option<Spanned<Vec<Spanned<String>>>>,
    artifact: Option<Spanned<String>>,
    install: Option<Spanned<bool>>,
    system: Option<Spanned<BuildSystem>>,
    configure_args: Option<Spanned<Vec<Spanned<String>>>>,
    make_args: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    deps: Vec<RawDep>,
    // Go (a package folder or file) and Rust (a cargo package name)
    package: Option<Spanned<String>>,
    cgo: Option<Spanned<bool>>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
    /// Pack a static glibc binary that loads NSS modules, with the `reason` it is fine.
    allow_nss_hazards: Option<Spanned<bool>>,
    reason: Option<Spanned<String>>,
    // Rust
    bin: Option<Spanned<String>>,
    features: Option<Spanned<Vec<Spanned<String>>>>,
    default_features: Option<Spanned<bool>>,
    profile: Option<Spanned<String>>,
}

/// `[[build.deps]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDep {
    /// A recipe file, or a folder holding recipe.toml, relative to this recipe's folder.
    recipe: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Option<Spanned<String>>,
    entrypoint: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    cmd: Vec<String>,
    user: Option<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    workdir: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    tag: Option<Spanned<String>>,
    #[serde(default)]
    files: Vec<RawFile>,
    #[serde(default)]
    symlinks: Vec<RawSymlink>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    stop_signal: Option<Spanned<String>>,
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
    /// "gzip" (default) or "zstd", for every layer.
    #[serde(default)]
    compression: crate::image::LayerCompression,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: Spanned<String>,
    dst: Spanned<String>,
    mode: Option<u32>,
    owner: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymlink {
    path: Spanned<String>,
    target: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    expect_exit: i32,
    expect_stdout: Option<String>,
    timeout_seconds: Option<Spanned<u64>>,
    read_only: Option<Spanned<bool>>,
}

// ---- the parsed recipe: typed, not yet resolved against the disk ----------------------------

/// A recipe checked as far as its text allows. [`Parsed::resolve`] finishes the job.
#[derive(Debug)]
pub struct Parsed {
    /// Kept to place the errors resolution finds.
    pub(super) text: String,
    pub(super) name: String,
    pub(super) epoch: Epoch,
    pub(super) allow_outside: Vec<Spanned<String>>,
    pub(super) build: ParsedBuild,
    /// `allow_nss_hazards = true`: its reason.
    pub(super) nss_allowed: Option<String>,
    pub(super) image: ParsedImage,
    pub(super) test: Option<TestSpec>,
}

#[derive(Debug)]
pub(super) struct ParsedBuild {
    /// As written: relative to the recipe's folder (for an archive: its path or URL).
    pub source: Spanned<String>,
    pub archive: Option<ParsedArchive>,
    pub output: String,
    pub libc: LibcChoice,
    pub link: LinkMode,
    pub lang: ParsedLang,
    /// From `[image] platforms`: the first one; the host's when not written.
    pub platform: super::Platform,
    /// Every platform of `[image] platforms` (never empty: `platform` alone when not written).
    pub platforms: Vec<super::Platform>,
    /// A prebuilt binary per platform, as written (empty: `source` is the one binary).
    pub per_platform: Vec<(super::Platform, Spanned<String>)>,
    /// `[[build.deps]] recipe`, as written.
    pub deps: Vec<Spanned<String>>,
    pub timeout_seconds: u64,
}

/// `source = { archive | url, sha256, strip_components }`, checked as far as text allows.
#[derive(Debug)]
pub(super) struct ParsedArchive {
    /// `url` (else `archive`, a path in the recipe's folder).
    pub is_url: bool,
    pub sha256: crate::digest::Digest,
    pub strip_components: u32,
    pub format: super::ArchiveFormat,
    pub max_unpack_bytes: Option<u64>,
}

#[derive(Debug)]
pub(super) enum ParsedLang {
    C {
        /// None: every `*.c` in the source folder, found at resolution.
        files: Option<Vec<Spanned<String>>>,
        build: CBuild,
    },
    Go {
        build: GoBuild,
        /// Where `package` was written, if it was.
        package_span: Option<Range<usize>>,
    },
    Rust {
        build: RustBuild,
    },
    Prebuilt,
}

#[derive(Debug)]
pub(super) struct ParsedImage {
    pub base: Option<Spanned<String>>,
    pub user: Option<(Spanned<String>, User)>,
    pub files: Vec<ParsedFile>,
    pub symlinks: Vec<Symlink>,
    pub settings: ImageSettings,
}

#[derive(Debug)]
pub(super) struct ParsedFile {
    pub src: Spanned<String>,
    pub dst: String,
    pub mode: u32,
    pub owner: Option<(Spanned<String>, Owner)>,
}

/// What a recipe is loaded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// An image is made of it: `install = true` needs an entrypoint.
    Image,
    /// A dependency: only its installed tree is used, so it needs no `[image]`.
    Dependency,
}

/// Parses recipe text and checks everything that needs no disk.
pub fn parse(text: &str) -> Result<Parsed, Problem> {
    parse_as(text, Purpose::Image)
}

pub(super) fn parse_as(text: &str, purpose: Purpose) -> Result<Parsed, Problem> {
    let ctx = Ctx { text };
    let raw: RawRecipe = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
    let name = ctx.parse_name(&raw.name)?;
    let epoch = ctx.parse_epoch(raw.epoch.as_ref())?;
    let install = (raw.build.get_ref().install.as_ref())
        .filter(|i| *i.get_ref())
        .map(Spanned::span);
    let nss_allowed = ctx.parse_nss(raw.build.get_ref())?;
    let mut build = ctx.parse_build(raw.build, &name)?;
    if let Some(platforms) = ctx.parse_platforms(raw.image.platforms.as_ref())? {
        build.platform = platforms[0].clone();
        build.platforms = platforms;
    }
    // After the build's own checks, so that `install` with another language says that first.
    if let (Some(at), None, Purpose::Image) = (install, &raw.image.entrypoint, purpose) {
        return Err(ctx.error(
            at,
            "build.install",
            "install = true needs [image] entrypoint: there is no single binary to run".into(),
            Some("name the installed program, e.g. entrypoint = [\"/usr/bin/jq\"]".into()),
        ));
    }
    let image = ctx.parse_image(raw.image, &build.output)?;
    let test = ctx.parse_test(raw.test)?;
    if let Some(empty) = raw.allow_outside.iter().find(|a| a.get_ref().is_empty()) {
        return Err(ctx.error(
            empty.span(),
            "allow_outside",
            "an empty path".into(),
            Some(
                "name the file or folder outside the recipe's folder, e.g. \"../shared/src\""
                    .into(),
            ),
        ));
    }
    Ok(Parsed {
        text: text.to_owned(),
        name,
        epoch,
        allow_outside: raw.allow_outside,
        build,
        nss_allowed,
        image,
        test,
    })
}

pub(super) struct Ctx<'a> {
    pub text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn error(
        &self,
        span: Range<usize>,
        field: &str,
        message: String,
        help: Option<String>,
    ) -> Problem {
        let (line, column) = line_col(self.text, span.start);
        Problem {
            line,
            column,
            field: (!field.is_empty()).then(|| field.to_owned()),
            message,
            help,
        }
    }

    pub(super) fn toml_error(&self, e: &toml::de::Error) -> Problem {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_owned();
        let table = table_at(self.text, span.start);
        let key = key_at(self.text, &span);
        let field = match (&table, &key) {
            (Some(t), Some(k)) => format!("{t}.{k}"),
            (None, Some(k)) => k.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => String::new(),
        };
        let help = suggestion(&message);
        self.error(span, &field, message, help)
    }

    /// `name`: it names the output folder and the image.
    fn parse_name(&self, raw_name: &Spanned<String>) -> Result<String, Problem> {
        let name = raw_name.get_ref().clone();
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if !name_ok {
            return Err(self.error(
                raw_name.span(),
                "name",
                format!("invalid name {name:?}"),
                Some("use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit (it names the output folder and the image)".into()),
            ));
        }
        Ok(name)
    }

    /// `epoch`: seconds (up to the year 9999, which OCI dates can carry) or "git".
    fn parse_epoch(&self, raw_epoch: Option<&Spanned<RawEpoch>>) -> Result<Epoch, Problem> {
        Ok(match raw_epoch {
            None => Epoch::Default,
            Some(e) => match e.get_ref() {
                RawEpoch::Seconds(n) if (0..=MAX_EPOCH as i64).contains(n) => {
                    Epoch::Fixed(*n as u64)
                }
                RawEpoch::Word(w) if w == "git" => Epoch::Git,
                _ => {
                    return Err(self.error(
                        e.span(),
                        "epoch",
                        "epoch must be seconds since 1970 or \"git\"".into(),
                        Some("e.g. epoch = 1700000000, or epoch = \"git\" for the last commit time of build.source".into()),
                    ));
                }
            },
        })
    }

    /// `[build]`: the fields every language has, then the language's own.
    fn parse_build(&self, raw: Spanned<RawBuild>, name: &str) -> Result<ParsedBuild, Problem> {
        let b = raw.into_inner();
        let lang = *b.lang.get_ref();
        self.refuse_fields_of_other_languages(&b, lang)?;
        let per_platform = match (lang, b.source.get_ref()) {
            // An archive's fields are refused for prebuilt by `parse_source`, saying so.
            (Lang::Prebuilt, toml::Value::Table(t))
                if !t.keys().any(|k| {
                    [
                        "archive",
                        "url",
                        "sha256",
                        "strip_components",
                        "max_unpack_bytes",
                    ]
                    .contains(&k.as_str())
                }) =>
            {
                self.parse_per_platform(&b.source, t)?
            }
            _ => Vec::new(),
        };
        let (source, archive) = if per_platform.is_empty() {
            self.parse_source(&b.source, lang)?
        } else {
            (Spanned::new(b.source.span(), String::new()), None)
        };
        let libc = self.parse_libc(&b, lang)?;
        let link = b
            .link
            .as_ref()
            .map(|l| *l.get_ref())
            // C and Rust default to the strongest form; Go and prebuilt to plain static, as ko
            // does.
            .unwrap_or(match lang {
                Lang::C => LinkMode::StaticPie,
                Lang::Rust => rust_default_link(),
                Lang::Go | Lang::Prebuilt => LinkMode::Static,
            });
        let output = match &b.output {
            Some(o) => {
                let value = o.get_ref();
                if let Err(why) = check_image_path(value) {
                    return Err(self.error(
                        o.span(),
                        "build.output",
                        format!("invalid path {value:?}: {why}"),
                        Some("give the binary's path inside the image, e.g. \"/app\" or \"/usr/bin/hello\"".into()),
                    ));
                }
                normalize_image_path(value)
            }
            None => format!("/{name}"),
        };
        let strip = b.strip.as_ref().is_some_and(|s| *s.get_ref());
        let ldflags = b
            .ldflags
            .clone()
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let deps = self.parse_deps(&b.deps)?;
        let (libc, lang) = match lang {
            Lang::C => {
                let commands = self.parse_commands(&b)?;
                let patterns = FilePatterns {
                    include: self.checked_list(&b.files, "build.files", cfiles::check_pattern)?,
                    exclude: self.checked_list(
                        &b.exclude,
                        "build.exclude",
                        cfiles::check_pattern,
                    )?,
                };
                let include_dirs =
                    self.checked_list(&b.include_dirs, "build.include_dirs", |d| {
                        cfiles::check_pattern(d).and_then(|()| {
                            match d.contains(['*', '?', '[', '{']) {
                                true => Err("include_dirs are folders, not globs".into()),
                                false => Ok(()),
                            }
                        })
                    })?;
                let defines =
                    self.checked_list(&b.defines, "build.defines", cfiles::check_define)?;
                (
                    libc,
                    ParsedLang::C {
                        files: b.files.map(Spanned::into_inner),
                        build: CBuild {
                            files: Vec::new(),
                            patterns,
                            include_dirs,
                            defines,
                            cflags: b.cflags.map(Spanned::into_inner).unwrap_or_default(),
                            ldflags,
                            strip,
                            commands,
                        },
                    },
                )
            }
            Lang::Go => {
                let (libc, build) = self.parse_go(&b, libc, link, ldflags, strip)?;
                let package_span = b.package.as_ref().map(|p| p.span());
                (
                    libc,
                    ParsedLang::Go {
                        build,
                        package_span,
                    },
                )
            }
            Lang::Rust => (
                libc,
                ParsedLang::Rust {
                    build: self.parse_rust(&b, strip)?,
                },
            ),
            Lang::Prebuilt => (libc, ParsedLang::Prebuilt),
        };
        let timeout_seconds = match &b.timeout_seconds {
            Some(s) if *s.get_ref() == 0 || *s.get_ref() > MAX_BUILD_TIMEOUT => {
                return Err(self.error(
                    s.span(),
                    "build.timeout_seconds",
                    format!("{} is out of range", s.get_ref()),
                    Some(format!("allowed: 1 to {MAX_BUILD_TIMEOUT} (a week)")),
                ));
            }
            Some(s) => *s.get_ref(),
            None => crate::run::DEFAULT_TIMEOUT_SECONDS,
        };
        Ok(ParsedBuild {
            timeout_seconds,
            source,
            archive,
            output,
            libc,
            link,
            lang,
            platform: super::Platform::host_or_default(),
            platforms: vec![super::Platform::host_or_default()],
            per_platform,
            deps,
        })
    }

    /// A prebuilt `source = { "linux/amd64" = "…", "linux/arm64" = "…" }`: one binary per
    /// platform, each a path relative to the recipe's folder.
    fn parse_per_platform(
        &self,
        raw: &Spanned<toml::Value>,
        table: &toml::map::Map<String, toml::Value>,
    ) -> Result<Vec<(super::Platform, Spanned<String>)>, Problem> {
        let help = format!(
            "with lang = \"prebuilt\", source is a path, or one per platform: {{ \"linux/amd64\" = \"bin/app-amd64\", \"linux/arm64\" = \"bin/app-arm64\" }} (known: {})",
            super::platform::KNOWN
        );
        let mut out: Vec<(super::Platform, Spanned<String>)> = Vec::new();
        for (key, value) in table {
            let field = format!("build.source.{key:?}");
            let platform: super::Platform = key
                .parse()
                .map_err(|e| self.error(raw.span(), &field, e, Some(help.clone())))?;
            if out.iter().any(|(p, _)| p.arch == platform.arch) {
                return Err(self.error(
                    raw.span(),
                    &field,
                    format!("{platform} has two binaries"),
                    Some(help.clone()),
                ));
            }
            match value {
                toml::Value::String(path) if !path.is_empty() => {
                    out.push((platform, Spanned::new(raw.span(), path.clone())));
                }
                _ => {
                    return Err(self.error(
                        raw.span(),
                        &field,
                        format!("expected the path of the {platform} binary"),
                        Some(help.clone()),
                    ));
                }
            }
        }
        if out.is_empty() {
            return Err(self.error(
                raw.span(),
                "build.source",
                "no binary for any platform".into(),
                Some(help),
            ));
        }
        Ok(out)
    }

    /// `[image] platforms`: each known, none twice, at least one.
    fn parse_platforms(
        &self,
        platforms: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Option<Vec<super::Platform>>, Problem> {
        let Some(list) = platforms else {
            return Ok(None);
        };
        let help = format!(
            "write OCI platforms, e.g. platforms = [\"linux/arm64\"] (known: {})",
            super::platform::KNOWN
        );
        let mut parsed: Vec<super::Platform> = Vec::new();
        for p in list.get_ref() {
            let platform: super::Platform = p
                .get_ref()
                .parse()
                .map_err(|e| self.error(p.span(), "image.platforms", e, Some(help.clone())))?;
            if parsed.iter().any(|q| q.arch == platform.arch) {
                return Err(self.error(
                    p.span(),
                    "image.platforms",
                    format!("{:?} is listed twice", p.get_ref()),
                    None,
                ));
            }
            parsed.push(platform);
        }
        if parsed.is_empty() {
            return Err(self.error(
                list.span(),
                "image.platforms",
                "the list is empty".into(),
                Some("leave it out to build for this machine, or name the platforms".into()),
            ));
        }
        Ok(Some(parsed))
    }

    /// `allow_nss_hazards = true` with its `reason`, for a build that links glibc: the one NSS
    /// rule (see the README) relaxed in the recipe, said why.
    fn parse_nss(&self, b: &RawBuild) -> Result<Option<String>, Problem> {
        let allow = b.allow_nss_hazards.as_ref().filter(|a| *a.get_ref());
        let help = "say why the hazard is acceptable, e.g. reason = \"runs as uid 0 only; no name lookups\"";
        match (allow, &b.reason) {
            (None, None) => Ok(None),
            (None, Some(r)) => Err(self.error(
                r.span(),
                "build.reason",
                "`reason` explains allow_nss_hazards = true, which is not set".into(),
                Some("remove it, or set allow_nss_hazards = true".into()),
            )),
            (Some(a), None) => Err(self.error(
                a.span(),
                "build.reason",
                "allow_nss_hazards = true needs a `reason`".into(),
                Some(help.into()),
            )),
            (Some(_), Some(r)) if r.get_ref().trim().is_empty() => Err(self.error(
                r.span(),
                "build.reason",
                "the reason is empty".into(),
                Some(help.into()),
            )),
            (Some(a), Some(r)) => {
                let lang = *b.lang.get_ref();
                let glibc = b.libc.as_ref().map(|l| *l.get_ref()) == Some(LibcChoice::Glibc);
                if !glibc && lang != Lang::Prebuilt {
                    return Err(self.error(
                        a.span(),
                        "build.allow_nss_hazards",
                        "only a static glibc binary loads NSS modules: this build links no glibc"
                            .into(),
                        Some("remove allow_nss_hazards and reason, or set libc = \"glibc\"".into()),
                    ));
                }
                Ok(Some(r.get_ref().trim().to_owned()))
            }
        }
    }

    /// `build.source`: a path, or an archive table.
    fn parse_source(
        &self,
        raw: &Spanned<toml::Value>,
        lang: Lang,
    ) -> Result<(Spanned<String>, Option<ParsedArchive>), Problem> {
        let span = raw.span();
        let err = |field: &str, message: String, help: &str| {
            self.error(span.clone(), field, message, Some(help.into()))
        };
        let table = match raw.get_ref() {
            toml::Value::String(path) if path.is_empty() => {
                return Err(err(
                    "build.source",
                    "the source is empty".into(),
                    match lang {
                        Lang::Prebuilt => {
                            "name the binary to pack, relative to the recipe's folder"
                        }
                        Lang::C | Lang::Go | Lang::Rust => {
                            "name the folder that holds the code, relative to the recipe's folder, e.g. \".\""
                        }
                    },
                ));
            }
            toml::Value::String(path) => return Ok((Spanned::new(span, path.clone()), None)),
            toml::Value::Table(t) => t,
            other => {
                return Err(err(
                    "build.source",
                    format!(
                        "expected a string (a path) or a table, found {}",
                        other.type_str()
                    ),
                    SOURCE_HELP,
                ));
            }
        };
        if lang == Lang::Prebuilt {
            return Err(err(
                "build.source",
                "an archive source is only for lang = \"c\", \"go\" or \"rust\", not \"prebuilt\""
                    .into(),
                "name the binary to pack, relative to the recipe's folder",
            ));
        }
        const FIELDS: [&str; 5] = [
            "archive",
            "url",
            "sha256",
            "strip_components",
            "max_unpack_bytes",
        ];
        if let Some(unknown) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let help = match closest(unknown, &FIELDS) {
                Some(c) => format!("did you mean `{c}`? allowed: {}", FIELDS.join(", ")),
                None => format!("allowed: {}", FIELDS.join(", ")),
            };
            return Err(err(
                &format!("build.source.{unknown}"),
                format!("unknown field `{unknown}`"),
                &help,
            ));
        }
        let text = |key: &str| match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some(v.clone())),
            Some(other) => Err(err(
                &format!("build.source.{key}"),
                format!("expected a string, found {}", other.type_str()),
                SOURCE_HELP,
            )),
        };
        let (location, is_url) = match (text("archive")?, text("url")?) {
            (Some(a), None) => (a, false),
            (None, Some(u)) => (u, true),
            (Some(_), Some(_)) => {
                return Err(err(
                    "build.source",
                    "both `archive` and `url` are given".into(),
                    "name one: archive (a file in the recipe's folder) or url",
                ));
            }
            (None, None) => {
                return Err(err(
                    "build.source",
                    "an archive source needs `archive` or `url`".into(),
                    SOURCE_HELP,
                ));
            }
        };
        let field = if is_url {
            "build.source.url"
        } else {
            "build.source.archive"
        };
        if is_url && !location.starts_with("https://") && !location.starts_with("http://") {
            return Err(err(
                field,
                format!("{location:?} is not an http(s) URL"),
                "use an https:// URL (plain http only to 127.0.0.1), or `archive` for a file",
            ));
        }
        let format = super::ArchiveFormat::from_name(&location).ok_or_else(|| {
            err(
                field,
                format!("{location:?} is not a known archive type"),
                "supported: .tar.gz (.tgz), .tar.xz, .tar.bz2, .tar",
            )
        })?;
        let sha256 = match text("sha256")? {
            Some(h) => {
                let hex = h.strip_prefix("sha256:").unwrap_or(&h).to_ascii_lowercase();
                crate::digest::Digest::parse(&format!("sha256:{hex}")).ok_or_else(|| {
                    err(
                        "build.source.sha256",
                        format!("{h:?} is not a sha256 (64 hex digits)"),
                        "write the archive's digest as `sha256sum` prints it",
                    )
                })?
            }
            None => {
                return Err(err(
                    "build.source.sha256",
                    "an archive source must be pinned by its sha256".into(),
                    "add sha256 = \"…\" as `sha256sum FILE` prints it: it is checked before anything is unpacked",
                ));
            }
        };
        let strip_components = match table.get("strip_components") {
            None => 1,
            Some(toml::Value::Integer(n)) if (0..=64).contains(n) => *n as u32,
            Some(_) => {
                return Err(err(
                    "build.source.strip_components",
                    "strip_components must be a whole number from 0 to 64".into(),
                    "the leading folders dropped from each path (1, the default, drops `project-1.0/`)",
                ));
            }
        };
        let size_help = "a size in bytes, as a number or a string such as \"16G\" or \"512M\": what the archive may unpack to, in place of the default limit (8 GiB, and 100 times the archive's size)";
        let max_unpack_bytes = match table.get("max_unpack_bytes") {
            None => None,
            Some(toml::Value::Integer(n)) if *n > 0 => Some(*n as u64),
            Some(toml::Value::String(t)) => match crate::run::parse_size(t) {
                Ok(n) if n > 0 => Some(n),
                Ok(_) => {
                    return Err(err(
                        "build.source.max_unpack_bytes",
                        "max_unpack_bytes must be more than 0".into(),
                        size_help,
                    ));
                }
                Err(reason) => {
                    return Err(err("build.source.max_unpack_bytes", reason, size_help));
                }
            },
            Some(other) => {
                return Err(err(
                    "build.source.max_unpack_bytes",
                    format!("expected a size, found {}", other.type_str()),
                    size_help,
                ));
            }
        };
        Ok((
            Spanned::new(span, location),
            Some(ParsedArchive {
                is_url,
                sha256,
                strip_components,
                format,
                max_unpack_bytes,
            }),
        ))
    }

    /// A field the language does not use is an error, not silently ignored.
    fn refuse_fields_of_other_languages(&self, b: &RawBuild, lang: Lang) -> Result<(), Problem> {
        let fields: &[FieldUse] = &[
            ("files", span_of(&b.files), &[Lang::C]),
            ("deps", b.deps.first().map(|d| d.recipe.span()), &[Lang::C]),
            ("exclude", span_of(&b.exclude), &[Lang::C]),
            ("include_dirs", span_of(&b.include_dirs), &[Lang::C]),
            ("defines", span_of(&b.defines), &[Lang::C]),
            ("system", span_of(&b.system), &[Lang::C]),
            ("configure_args", span_of(&b.configure_args), &[Lang::C]),
            ("make_args", span_of(&b.make_args), &[Lang::C]),
            ("commands", span_of(&b.commands), &[Lang::C]),
            ("artifact", span_of(&b.artifact), &[Lang::C]),
            ("install", span_of(&b.install), &[Lang::C]),
            ("cflags", span_of(&b.cflags), &[Lang::C]),
            ("package", span_of(&b.package), &[Lang::Go, Lang::Rust]),
            ("cgo", span_of(&b.cgo), &[Lang::Go]),
            ("tags", span_of(&b.tags), &[Lang::Go]),
            ("ldflags", span_of(&b.ldflags), &[Lang::C, Lang::Go]),
            ("strip", span_of(&b.strip), &[Lang::C, Lang::Go, Lang::Rust]),
            ("bin", span_of(&b.bin), &[Lang::Rust]),
            ("features", span_of(&b.features), &[Lang::Rust]),
            (
                "default_features",
                span_of(&b.default_features),
                &[Lang::Rust],
            ),
            ("profile", span_of(&b.profile), &[Lang::Rust]),
        ];
        for (field, at, langs) in fields.iter().cloned() {
            let Some(at) = at else { continue };
            if langs.contains(&lang) {
                continue;
            }
            let help = match (field, lang) {
                ("ldflags", Lang::Rust) => {
                    "a Rust build's flags come from Cargo.toml's profile; remove the field"
                }
                ("strip", Lang::Prebuilt) => {
                    "staticpack packs a prebuilt binary as it is: strip it before (strip --strip-all), or remove the field"
                }
                _ => "remove it",
            };
            return Err(self.error(
                at,
                &format!("build.{field}"),
                format!(
                    "`{field}` is only for lang = {}, not \"{lang}\"",
                    match join_quoted(langs).rsplit_once(", ") {
                        Some((most, last)) => format!("{most} or {last}"),
                        None => join_quoted(langs),
                    }
                ),
                Some(help.into()),
            ));
        }
        Ok(())
    }

    /// A list of strings, each checked by `check`; the first bad one is refused at its place.
    fn checked_list(
        &self,
        list: &Option<Spanned<Vec<Spanned<String>>>>,
        field: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Vec<String>, Problem> {
        let Some(list) = list else {
            return Ok(Vec::new());
        };
        list.get_ref()
            .iter()
            .map(|item| {
                check(item.get_ref()).map_err(|why| {
                    self.error(
                        item.span(),
                        field,
                        format!("invalid entry {:?}: {why}", item.get_ref()),
                        Some(match field {
                            "build.defines" => {
                                "write NAME or NAME=VALUE, e.g. \"NDEBUG\" or \"LUA_USE_LINUX\""
                                    .into()
                            }
                            _ => {
                                "give a path or glob relative to build.source, e.g. \"src/**/*.c\""
                                    .into()
                            }
                        }),
                    )
                })?;
                Ok(item.get_ref().trim_start_matches("./").to_owned())
            })
            .collect()
    }

    /// C `commands` (or `system`) with `artifact` or `install`: each refused alone, and next
    /// to `files`.
    fn parse_commands(&self, b: &RawBuild) -> Result<Option<Commands>, Problem> {
        let install = b.install.as_ref().filter(|i| *i.get_ref());
        let system = self.parse_system(b)?;
        // Where "needs artifact or install" is shown: the field that asked for a commands build.
        let asked_at = match (&b.commands, &b.system) {
            (_, Some(s)) => s.span(),
            (Some(c), None) => c.span(),
            (None, None) => {
                let stray = [
                    ("artifact", span_of(&b.artifact)),
                    ("install", install.map(|i| i.span())),
                ];
                if let Some((field, Some(at))) = stray.into_iter().find(|(_, s)| s.is_some()) {
                    return Err(self.error(
                        at,
                        &format!("build.{field}"),
                        format!("`{field}` is only for a build with `commands` or `system`"),
                        Some(
                            "add commands = [\"make -j$JOBS\"] or system = \"make\", or remove it"
                                .into(),
                        ),
                    ));
                }
                return Ok(None);
            }
        };
        let lines = match &b.commands {
            Some(commands) => self.parse_command_lines(b, commands)?,
            None => Vec::new(),
        };
        let artifact = match (&b.artifact, install) {
            (Some(a), Some(_)) => {
                return Err(self.error(
                    a.span(),
                    "build.artifact",
                    "`artifact` and install = true exclude each other".into(),
                    Some("pack one built file (artifact) or everything installed under $DESTDIR (install = true)".into()),
                ));
            }
            (Some(a), None) => {
                let v = a.get_ref();
                let bad = v.is_empty()
                    || v.starts_with('/')
                    || v.contains('\0')
                    || v.split('/').any(|c| c == "..");
                if bad {
                    return Err(self.error(
                        a.span(),
                        "build.artifact",
                        format!("invalid artifact {v:?}: it must be a path inside the build tree"),
                        Some("give the built binary relative to build.source, e.g. \"jq\" or \"src/app\"".into()),
                    ));
                }
                Some(v.clone())
            }
            (None, Some(_)) => None,
            (None, None) => {
                let field = if system.is_some() {
                    "build.system"
                } else {
                    "build.commands"
                };
                return Err(self.error(
                    asked_at,
                    field,
                    "a commands build needs `artifact` or install = true".into(),
                    Some("name the built binary, e.g. artifact = \"jq\", or set install = true to pack what `make install` puts in $DESTDIR".into()),
                ));
            }
        };
        if let (Some(st), true) = (b.strip.as_ref().filter(|s| *s.get_ref()), install.is_some()) {
            return Err(self.error(
                st.span(),
                "build.strip",
                "strip = true strips one artifact, not an installed tree".into(),
                Some("strip in the commands (e.g. make install-strip), or remove it".into()),
            ));
        }
        if let (Some(o), true) = (&b.output, install.is_some()) {
            return Err(self.error(
                o.span(),
                "build.output",
                "with install = true the installed tree is the image: there is no single output"
                    .into(),
                Some("remove output; name the program in [image] entrypoint".into()),
            ));
        }
        Ok(Some(Commands {
            lines,
            system,
            artifact,
        }))
    }

    /// `commands` as written: not next to `files`, none empty.
    fn parse_command_lines(
        &self,
        b: &RawBuild,
        commands: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<String>, Problem> {
        let help = "e.g. commands = [\"./configure --disable-shared\", \"make -j$JOBS\"]";
        let file_list_fields = [
            ("files", span_of(&b.files)),
            ("exclude", span_of(&b.exclude)),
            ("include_dirs", span_of(&b.include_dirs)),
            ("defines", span_of(&b.defines)),
        ];
        if let Some((field, Some(at))) = file_list_fields.into_iter().find(|(_, s)| s.is_some()) {
            let fix = match field {
                "include_dirs" | "defines" => "pass -I/-D in cflags (CFLAGS), or drop commands",
                _ => "keep one of them",
            };
            return Err(self.error(
                at,
                &format!("build.{field}"),
                format!("`{field}` is for a file-list build; with `commands` the project's build system decides what is compiled"),
                Some(fix.into()),
            ));
        }
        if commands.get_ref().is_empty() {
            return Err(self.error(
                commands.span(),
                "build.commands",
                "the command list is empty".into(),
                Some(help.into()),
            ));
        }
        if let Some(empty) = commands
            .get_ref()
            .iter()
            .find(|c| c.get_ref().trim().is_empty())
        {
            return Err(self.error(
                empty.span(),
                "build.commands",
                "an empty command".into(),
                Some(help.into()),
            ));
        }
        Ok(commands
            .get_ref()
            .iter()
            .map(|c| c.get_ref().clone())
            .collect())
    }

    /// `[[build.deps]]`: each a path, not empty, not listed twice.
    fn parse_deps(&self, deps: &[RawDep]) -> Result<Vec<Spanned<String>>, Problem> {
        let mut out: Vec<Spanned<String>> = Vec::new();
        for d in deps {
            let v = d.recipe.get_ref();
            let help = "name the dependency's recipe file or folder, relative to this recipe's folder, e.g. recipe = \"../zlib\"";
            if v.is_empty() || v.contains('\0') {
                return Err(self.error(
                    d.recipe.span(),
                    "build.deps.recipe",
                    format!("invalid path {v:?}"),
                    Some(help.into()),
                ));
            }
            if out
                .iter()
                .any(|o| o.get_ref().trim_end_matches('/') == v.trim_end_matches('/'))
            {
                return Err(self.error(
                    d.recipe.span(),
                    "build.deps.recipe",
                    format!("{v:?} is listed twice"),
                    Some("list each dependency once".into()),
                ));
            }
            out.push(d.recipe.clone());
        }
        Ok(out)
    }

    /// `system` with `configure_args` and `make_args`: not with `commands` or `files`, and each
    /// argument list only where that system has the step it feeds.
    fn parse_system(&self, b: &RawBuild) -> Result<Option<SystemBuild>, Problem> {
        let Some(system) = &b.system else {
            let stray = [
                ("configure_args", span_of(&b.configure_args)),
                ("make_args", span_of(&b.make_args)),
            ];
            if let Some((field, Some(at))) = stray.into_iter().find(|(_, s)| s.is_some()) {
                return Err(self.error(
                    at,
                    &format!("build.{field}"),
                    format!("`{field}` is only for a build with `system`"),
                    Some("add system = \"autotools\" (or make, cmake, meson), or put the arguments in your commands".into()),
                ));
            }
            return Ok(None);
        };
        let kind = *system.get_ref();
        let other = [
            ("commands", b.commands.is_some()),
            ("files", b.files.is_some()),
            ("exclude", b.exclude.is_some()),
            ("include_dirs", b.include_dirs.is_some()),
            ("defines", b.defines.is_some()),
        ];
        if let Some((field, _)) = other.into_iter().find(|(_, given)| *given) {
            return Err(self.error(
                system.span(),
                "build.system",
                format!("`system` and `{field}` exclude each other: system = \"{kind}\" runs that build system's own commands"),
                Some(format!("keep system (its arguments go in configure_args and make_args), or remove it and keep `{field}`")),
            ));
        }
        let args = |raw: &Option<Spanned<Vec<Spanned<String>>>>, field: &str| {
            let mut out = Vec::new();
            for a in raw.iter().flat_map(|a| a.get_ref()) {
                let v = a.get_ref();
                if v.is_empty() || v.contains('\0') {
                    return Err(self.error(
                        a.span(),
                        field,
                        format!("invalid argument {v:?}"),
                        Some("each item is one argument, e.g. \"--disable-docs\"".into()),
                    ));
                }
                out.push((a.span(), v.clone()));
            }
            Ok(out)
        };
        let configure_args = args(&b.configure_args, "build.configure_args")?;
        let make_args = args(&b.make_args, "build.make_args")?;
        if let (BuildSystem::Make, Some(c)) = (kind, &b.configure_args) {
            return Err(self.error(
                c.span(),
                "build.configure_args",
                "system = \"make\" has no configure step".into(),
                Some("pass variables to make in make_args (e.g. \"PREFIX=/usr\"), or use system = \"autotools\"".into()),
            ));
        }
        if matches!(kind, BuildSystem::Cmake | BuildSystem::Meson) {
            if let Some((at, v)) = make_args
                .iter()
                .find(|(_, v)| v.contains('=') || v.starts_with('-'))
            {
                return Err(self.error(
                    at.clone(),
                    "build.make_args",
                    format!("{v:?}: with system = \"{kind}\" make_args are the targets to build"),
                    Some("set options in configure_args (e.g. \"-DOPTION=ON\" for cmake, \"-Doption=value\" for meson), name targets in make_args".into()),
                ));
            }
        }
        Ok(Some(SystemBuild {
            system: kind,
            configure_args: configure_args.into_iter().map(|(_, v)| v).collect(),
            make_args: make_args.into_iter().map(|(_, v)| v).collect(),
        }))
    }

    fn parse_libc(&self, b: &RawBuild, lang: Lang) -> Result<LibcChoice, Problem> {
        Ok(match (lang, &b.libc) {
            (_, Some(l)) => {
                let value = *l.get_ref();
                let allowed: &[LibcChoice] = match lang {
                    Lang::C | Lang::Rust => &[LibcChoice::Musl, LibcChoice::Glibc],
                    Lang::Go | Lang::Prebuilt => {
                        &[LibcChoice::Musl, LibcChoice::Glibc, LibcChoice::None]
                    }
                };
                if !allowed.contains(&value) {
                    return Err(self.error(
                        l.span(),
                        "build.libc",
                        format!("libc = \"{value}\" is not possible for lang = \"{lang}\""),
                        Some(format!("allowed: {}", join_quoted(allowed))),
                    ));
                }
                value
            }
            (Lang::C | Lang::Rust, None) => LibcChoice::Musl,
            (Lang::Go | Lang::Prebuilt, None) => LibcChoice::None,
        })
    }

    /// Go: only some cgo × libc × link combinations make sense; package and tags as written.
    fn parse_go(
        &self,
        b: &RawBuild,
        libc: LibcChoice,
        link: LinkMode,
        ldflags: Vec<String>,
        strip: bool,
    ) -> Result<(LibcChoice, GoBuild), Problem> {
        let cgo = b.cgo.as_ref().map(|c| *c.get_ref()).unwrap_or(false);
        let libc_span = b.libc.as_ref().map(|l| l.span()).unwrap_or(b.lang.span());
        let libc = match (cgo, link, b.libc.is_some(), libc) {
            // cgo on links a libc: musl unless the recipe says otherwise.
            (true, _, false, _) => LibcChoice::Musl,
            (true, _, true, LibcChoice::None) => {
                return Err(self.error(
                    libc_span,
                    "build.libc",
                    "cgo = true links C code, so it needs a libc".into(),
                    Some("set libc = \"musl\" (or \"glibc\"), or cgo = false".into()),
                ));
            }
            // Go's internal linker makes PIEs that need an interpreter, and the external linker
            // needs runtime/cgo (without it the binary dies at start with SIGTRAP).
            (false, LinkMode::StaticPie, _, _) => {
                let span = b.link.as_ref().map(|l| l.span()).unwrap_or(b.lang.span());
                return Err(self.error(
                    span,
                    "build.link",
                    "a Go static-pie needs cgo: Go's own linker makes a PIE that needs an ELF interpreter, and external linking without runtime/cgo crashes at start".into(),
                    Some("use link = \"static\" with cgo = false (Go's own static linking), or cgo = true with libc = \"musl\"".into()),
                ));
            }
            (
                false,
                LinkMode::Static | LinkMode::Dynamic,
                true,
                LibcChoice::Musl | LibcChoice::Glibc,
            ) => {
                return Err(self.error(
                    libc_span,
                    "build.libc",
                    format!("with cgo = false and link = \"{link}\" Go links no libc at all"),
                    Some(
                        "remove libc (it means none here), or set cgo = true to link C code".into(),
                    ),
                ));
            }
            (_, _, _, chosen) => chosen,
        };
        let package = match &b.package {
            Some(p) => {
                let value = p.get_ref();
                let rel = value.trim_start_matches("./");
                if value.starts_with('/') || rel.split('/').any(|c| c == "..") {
                    return Err(self.error(
                        p.span(),
                        "build.package",
                        format!(
                            "{value:?} is not a package folder or .go file inside build.source"
                        ),
                        Some(PACKAGE_HELP.into()),
                    ));
                }
                if rel.is_empty() || rel == "." {
                    ".".to_owned()
                } else {
                    format!("./{rel}")
                }
            }
            None => ".".to_owned(),
        };
        let mut tags = Vec::new();
        for t in b.tags.iter().flat_map(|t| t.get_ref()) {
            let v = t.get_ref();
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_.".contains(&c))
            {
                return Err(self.error(
                    t.span(),
                    "build.tags",
                    format!("invalid build tag {v:?}"),
                    Some("tags are words of letters, digits, '_' and '.', e.g. \"netgo\"".into()),
                ));
            }
            tags.push(v.clone());
        }
        Ok((
            libc,
            GoBuild {
                package,
                cgo,
                tags,
                ldflags,
                strip,
            },
        ))
    }

    /// Rust: cargo's names as cargo allows them, and the links its static targets can make.
    fn parse_rust(&self, b: &RawBuild, strip: bool) -> Result<RustBuild, Problem> {
        if let Some(l) = b
            .link
            .as_ref()
            .filter(|l| *l.get_ref() == LinkMode::Dynamic)
        {
            return Err(self.error(
                l.span(),
                "build.link",
                "a dynamic Rust binary cannot run in a scratch image".into(),
                Some("use link = \"static-pie\" (the default) or \"static\"".into()),
            ));
        }
        // Cargo's package, target and profile names; features may also say `dep/feature`.
        let name_ok = |v: &str, extra: &[u8]| {
            !v.is_empty()
                && !v.starts_with('-')
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_-".contains(&c) || extra.contains(&c))
        };
        let name = |field: &str, v: &Option<Spanned<String>>, help: &str| match v {
            Some(s) if !name_ok(s.get_ref(), b"") => Err(self.error(
                s.span(),
                field,
                format!("{:?} is not a cargo name", s.get_ref()),
                Some(help.into()),
            )),
            Some(s) => Ok(Some(s.get_ref().clone())),
            None => Ok(None),
        };
        let package = name(
            "build.package",
            &b.package,
            "name the workspace member as its Cargo.toml does, e.g. package = \"mytool\"",
        )?;
        let bin = name(
            "build.bin",
            &b.bin,
            "name the [[bin]] target, e.g. bin = \"mytool\"",
        )?;
        let profile = name(
            "build.profile",
            &b.profile,
            "name a cargo profile: \"release\" (the default), \"dev\" or one of Cargo.toml's [profile.NAME]",
        )?
        .unwrap_or_else(|| "release".to_owned());
        let mut features = Vec::new();
        for f in b.features.iter().flat_map(|f| f.get_ref()) {
            if !name_ok(f.get_ref(), b"/+.") {
                return Err(self.error(
                    f.span(),
                    "build.features",
                    format!("{:?} is not a cargo feature", f.get_ref()),
                    Some(
                        "write one feature per string, e.g. features = [\"tls\", \"serde/derive\"]"
                            .into(),
                    ),
                ));
            }
            features.push(f.get_ref().clone());
        }
        Ok(RustBuild {
            package,
            bin,
            features,
            default_features: b.default_features.as_ref().is_none_or(|d| *d.get_ref()),
            profile,
            strip,
        })
    }

    /// `[image]` as written: paths, users and owners by their syntax, ports, signals. `output`
    /// is the binary's path, the default entrypoint.
    fn parse_image(&self, img: RawImage, output: &str) -> Result<ParsedImage, Problem> {
        let entrypoint = match img.entrypoint {
            Some(e) if e.get_ref().is_empty() => {
                return Err(self.error(
                    e.span(),
                    "image.entrypoint",
                    "the entrypoint is empty".into(),
                    Some(format!(
                        "leave it out to run the binary ({output:?}), or name a program"
                    )),
                ));
            }
            Some(e) => e.into_inner(),
            None => vec![output.to_owned()],
        };
        let mut env = Vec::new();
        for e in img.env {
            if !e.get_ref().contains('=') || e.get_ref().starts_with('=') {
                return Err(self.error(
                    e.span(),
                    "image.env",
                    format!("{:?} is not of the form NAME=VALUE", e.get_ref()),
                    None,
                ));
            }
            env.push(e.into_inner());
        }
        if let Some(w) = &img.workdir {
            if !w.get_ref().starts_with('/') {
                return Err(self.error(
                    w.span(),
                    "image.workdir",
                    format!("{:?} is not an absolute path", w.get_ref()),
                    Some("write it from the image's root, e.g. \"/\" or \"/data\"".into()),
                ));
            }
        }
        let user = img
            .user
            .map(|u| self.parse_as::<User>(u, "image.user", "user", USER_HELP))
            .transpose()?;
        let tag = match &img.tag {
            Some(t) if !is_valid_tag(t.get_ref()) => {
                return Err(self.error(
                    t.span(),
                    "image.tag",
                    format!("invalid tag {:?}", t.get_ref()),
                    Some(
                        "a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'".into(),
                    ),
                ));
            }
            Some(t) => t.get_ref().clone(),
            None => "latest".to_owned(),
        };
        let mut files = Vec::new();
        for f in img.files {
            files.push(self.parse_file(f)?);
        }
        let mut symlinks = Vec::new();
        for l in img.symlinks {
            symlinks.push(self.parse_symlink(l)?);
        }
        let ports = self.parse_ports(&img.ports)?;
        if let Some(sig) = &img.stop_signal {
            self.check_signal(sig)?;
        }
        Ok(ParsedImage {
            base: img.base,
            user,
            files,
            symlinks,
            settings: ImageSettings {
                entrypoint,
                cmd: img.cmd,
                env,
                workdir: img.workdir.map(Spanned::into_inner),
                labels: img.labels,
                annotations: img.annotations,
                tag,
                ports,
                stop_signal: img.stop_signal.map(Spanned::into_inner),
                compression: img.compression,
            },
        })
    }

    /// One `[[image.files]]`: the destination and the owner's syntax; the source is checked at
    /// resolution.
    fn parse_file(&self, f: RawFile) -> Result<ParsedFile, Problem> {
        if let Err(why) = check_image_path(f.dst.get_ref()) {
            return Err(self.error(
                f.dst.span(),
                "image.files.dst",
                format!("invalid path {:?}: {why}", f.dst.get_ref()),
                Some(
                    "give the file's absolute path inside the image, e.g. \"/etc/app.conf\"".into(),
                ),
            ));
        }
        let owner = f
            .owner
            .map(|o| self.parse_as::<Owner>(o, "image.files.owner", "owner", OWNER_HELP))
            .transpose()?;
        Ok(ParsedFile {
            dst: normalize_image_path(f.dst.get_ref()),
            src: f.src,
            mode: f.mode.unwrap_or(0o644) & 0o7777,
            owner,
        })
    }

    /// One `[[image.symlinks]]`: the path like `image.files.dst`; the target as written (relative
    /// or absolute, it is not followed at build time), only not empty.
    fn parse_symlink(&self, l: RawSymlink) -> Result<Symlink, Problem> {
        if let Err(why) = check_image_path(l.path.get_ref()) {
            return Err(self.error(
                l.path.span(),
                "image.symlinks.path",
                format!("invalid path {:?}: {why}", l.path.get_ref()),
                Some("give the link's absolute path inside the image, e.g. \"/bin/sh\"".into()),
            ));
        }
        let target = l.target.get_ref();
        if target.is_empty() || target.contains('\0') {
            return Err(self.error(
                l.target.span(),
                "image.symlinks.target",
                format!("invalid target {target:?}"),
                Some("name what the link points to, e.g. \"busybox\" or \"/bin/busybox\"".into()),
            ));
        }
        Ok(Symlink {
            path: normalize_image_path(l.path.get_ref()),
            target: target.clone(),
        })
    }

    /// A typed value of its own syntax (a user, an owner), kept with the text it was written as.
    fn parse_as<T: std::str::FromStr>(
        &self,
        written: Spanned<String>,
        field: &str,
        what: &str,
        help: &str,
    ) -> Result<(Spanned<String>, T), Problem>
    where
        T::Err: fmt::Display,
    {
        match written.get_ref().parse::<T>() {
            Ok(value) => Ok((written, value)),
            Err(e) => Err(self.error(
                written.span(),
                field,
                format!("invalid {what} {:?}: {e}", written.get_ref()),
                Some(help.into()),
            )),
        }
    }

    /// "8080" or "53/udp" → "8080/tcp", "53/udp".
    fn parse_ports(&self, raw: &[Spanned<String>]) -> Result<Vec<String>, Problem> {
        let mut ports = Vec::new();
        for p in raw {
            let v = p.get_ref();
            let (num, proto) = v.split_once('/').unwrap_or((v, "tcp"));
            if num.parse::<u16>().map(|n| n == 0).unwrap_or(true)
                || !matches!(proto, "tcp" | "udp" | "sctp")
            {
                return Err(self.error(
                    p.span(),
                    "image.ports",
                    format!("invalid port {v:?}"),
                    Some(
                        "write PORT or PORT/PROTOCOL, e.g. \"8080\" or \"53/udp\" (tcp, udp, sctp)"
                            .into(),
                    ),
                ));
            }
            ports.push(format!("{num}/{proto}"));
        }
        Ok(ports)
    }

    fn check_signal(&self, sig: &Spanned<String>) -> Result<(), Problem> {
        let v = sig.get_ref();
        let known = v.strip_prefix("SIG").is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-')
        }) || v.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n));
        if known {
            return Ok(());
        }
        Err(self.error(
            sig.span(),
            "image.stop_signal",
            format!("invalid signal {v:?}"),
            Some("write a signal name like \"SIGTERM\" or a number from 1 to 64".into()),
        ))
    }

    /// `[test]`: what the run proof checks.
    fn parse_test(&self, raw_test: Option<RawTest>) -> Result<Option<TestSpec>, Problem> {
        let Some(t) = raw_test else { return Ok(None) };
        let timeout_seconds = match &t.timeout_seconds {
            Some(s) if *s.get_ref() == 0 || *s.get_ref() > 3600 => {
                return Err(self.error(
                    s.span(),
                    "test.timeout_seconds",
                    format!("{} is out of range", s.get_ref()),
                    Some("allowed: 1 to 3600".into()),
                ));
            }
            Some(s) => *s.get_ref(),
            None => DEFAULT_TEST_TIMEOUT,
        };
        Ok(Some(TestSpec {
            args: t.args,
            expect_exit: t.expect_exit,
            expect_stdout: t.expect_stdout,
            timeout_seconds,
            read_only: t.read_only.map(|r| *r.get_ref()).unwrap_or(false),
        }))
    }
}

/// The longest `[build] timeout_seconds` a recipe may ask for.
const MAX_BUILD_TIMEOUT: u64 = 7 * 24 * 3600;

const SOURCE_HELP: &str = "write a folder (\".\"), or { archive = \"x-1.0.tar.gz\", sha256 = \"…\" }, or { url = \"https://…/x-1.0.tar.gz\", sha256 = \"…\" }";
pub(super) const PACKAGE_HELP: &str = "give the main package's folder relative to build.source, e.g. \".\" or \"./cmd/app\", or one program file (built as `go build prog.go`), e.g. \"prog.go\"";
pub(super) const USER_HELP: &str = "use \"UID\" or \"UID:GID\" like \"65532:65532\", or names from the base's /etc/passwd and /etc/group";
pub(super) const OWNER_HELP: &str =
    "use \"UID:GID\" like \"65532:65532\", or names from the base's /etc/passwd and /etc/group";

/// A static-pie where Rust's Linux targets make working ones (musl and gnu on x86-64 and
/// aarch64); plain static elsewhere.
fn rust_default_link() -> LinkMode {
    match std::env::consts::ARCH {
        "x86_64" | "aarch64" => LinkMode::StaticPie,
        _ => LinkMode::Static,
    }
}

/// A field, where it was written (if it was), and the languages that use it.
type FieldUse = (&'static str, Option<Range<usize>>, &'static [Lang]);

fn span_of<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

fn join_quoted<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A path inside the image: absolute, no `..`, no empty or `.` components.
fn check_image_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("it must be absolute");
    }
    if p.contains('\0') {
        return Err("it contains a NUL byte");
    }
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() {
        return Err("it names the root folder, not a file");
    }
    if parts.iter().any(|c| *c == ".." || *c == ".") {
        return Err("it must not contain '.' or '..'");
    }
    Ok(())
}

fn normalize_image_path(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// The `[table]` header in force at a byte offset, if any.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    before.lines().rev().find_map(|l| {
        let inner = l.trim().strip_prefix('[')?.split(']').next()?;
        Some(inner.trim_matches(['[', ' ']).to_owned())
    })
}

/// The key an error span starts on, when the span covers a `key = value` line's key.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    let line_start = text
        .get(..span.start)?
        .rfind('\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let line = text.get(line_start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and unknown variants): a "did you
/// mean" plus the allowed list.
fn suggestion(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (wrong, rest) = rest.split_once('`')?;
    let allowed: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    if allowed.is_empty() {
        return None;
    }
    let list = allowed.join(", ");
    Some(match closest(wrong, &allowed) {
        Some(c) => format!("did you mean `{c}`? allowed: {list}"),
        None => format!("allowed: {list}"),
    })
}

pub(super) fn closest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
