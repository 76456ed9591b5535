//! Recipes: the declarative input. Parsed strictly (unknown fields are errors), validated before
//! anything is built, relative paths resolved against the recipe's own folder. Every error names
//! the file, the line and column, the field, and what is allowed.

use crate::image::base::Base;
use crate::image::users::{Owner, User, Users};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

/// An error at a place in a recipe file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted field name, e.g. `build.source`, when known.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
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
    Prebuilt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LibcChoice {
    Musl,
    Glibc,
    /// No libc at all: Go with cgo off, or a prebuilt binary that needs none.
    None,
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

impl fmt::Display for LibcChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibcChoice::Musl => "musl",
            LibcChoice::Glibc => "glibc",
            LibcChoice::None => "none",
        })
    }
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: Spanned<String>,
    epoch: Option<Spanned<RawEpoch>>,
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

/// Where SOURCE_DATE_EPOCH comes from when the environment does not set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epoch {
    /// Not given: 0.
    Default,
    Fixed(u64),
    /// The last commit time of the recipe's source folder.
    Git,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    lang: Spanned<Lang>,
    source: Spanned<String>,
    libc: Option<Spanned<LibcChoice>>,
    link: Option<Spanned<LinkMode>>,
    /// C: the files to compile, relative to `source`; default: every `*.c` in it.
    files: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    cflags: Vec<String>,
    #[serde(default)]
    ldflags: Vec<String>,
    output: Option<Spanned<String>>,
    #[serde(default)]
    strip: bool,
    /// Go: the package to build, relative to `source` (default ".").
    package: Option<Spanned<String>>,
    /// Go: CGO_ENABLED.
    cgo: Option<Spanned<bool>>,
    /// Go: build tags, e.g. ["netgo", "osusergo"].
    #[serde(default)]
    tags: Vec<Spanned<String>>,
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
    files: Vec<Spanned<RawFile>>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    stop_signal: Option<Spanned<String>>,
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
struct RawTest {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    expect_exit: i32,
    expect_stdout: Option<String>,
    timeout_seconds: Option<Spanned<u64>>,
}

// ---- the validated recipe ------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    pub name: String,
    pub epoch: Epoch,
    pub build: BuildSpec,
    pub image: ImageSpec,
    pub test: Option<TestSpec>,
}

#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub lang: Lang,
    /// Absolute: the source folder (C, Go) or the binary (prebuilt).
    pub source: PathBuf,
    pub libc: LibcChoice,
    pub link: LinkMode,
    /// C files, relative to `source`, sorted.
    pub files: Vec<String>,
    pub cflags: Vec<String>,
    pub ldflags: Vec<String>,
    /// Absolute path of the binary inside the image.
    pub output: String,
    pub strip: bool,
    /// Go: the package path relative to `source`, e.g. "." or "./cmd/app".
    pub package: String,
    /// Go: CGO_ENABLED.
    pub cgo: bool,
    /// Go: build tags.
    pub tags: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The base as the recipe names it ("scratch", "static", "./mybase").
    pub base: String,
    /// The base, loaded once at validation: the pipeline layers it as it is.
    pub base_image: Base,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: Option<User>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations, over the ones staticpack fills in.
    pub annotations: BTreeMap<String, String>,
    pub tag: String,
    /// Extra files, a layer of their own between the base and the binary.
    pub files: Vec<ExtraFile>,
    /// Exposed ports, "8080/tcp" or "53/udp".
    pub ports: Vec<String>,
    pub stop_signal: Option<String>,
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

#[derive(Clone, Debug)]
pub struct TestSpec {
    pub args: Vec<String>,
    pub expect_exit: i32,
    pub expect_stdout: Option<String>,
    pub timeout_seconds: u64,
}

const DEFAULT_TEST_TIMEOUT: u64 = 30;

/// Loads a recipe from a file, or from `recipe.toml` inside a folder.
pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
    let file = if path.is_dir() {
        path.join(RECIPE_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| RecipeError::Read {
        path: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// Parses and validates recipe text; `file` names it in errors and anchors relative paths.
pub fn parse(file: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let ctx = Ctx { file, text };
    let raw: RawRecipe = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    ctx.validate(raw, dir)
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn error(
        &self,
        span: Range<usize>,
        field: &str,
        message: String,
        help: Option<String>,
    ) -> RecipeError {
        let (line, column) = line_col(self.text, span.start);
        RecipeError::Invalid(Box::new(Located {
            file: self.file.to_path_buf(),
            line,
            column,
            field: (!field.is_empty()).then(|| field.to_owned()),
            message,
            help,
        }))
    }

    fn toml_error(&self, e: &toml::de::Error) -> RecipeError {
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

    fn validate(&self, raw: RawRecipe, dir: PathBuf) -> Result<Recipe, RecipeError> {
        let name = self.validate_name(&raw.name)?;
        let epoch = self.validate_epoch(raw.epoch.as_ref())?;
        let build = self.validate_build(raw.build, &dir, &name)?;
        let image = self.validate_image(raw.image, &dir, &build.output)?;
        let test = self.validate_test(raw.test)?;
        Ok(Recipe {
            path: self.file.to_path_buf(),
            dir,
            name,
            epoch,
            build,
            image,
            test,
        })
    }

    /// `name`: it names the output folder and the image.
    fn validate_name(&self, raw_name: &Spanned<String>) -> Result<String, RecipeError> {
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

    /// `epoch`: seconds or "git".
    fn validate_epoch(&self, raw_epoch: Option<&Spanned<RawEpoch>>) -> Result<Epoch, RecipeError> {
        Ok(match raw_epoch {
            None => Epoch::Default,
            Some(e) => match e.get_ref() {
                RawEpoch::Seconds(n) if *n >= 0 && *n <= 253_402_300_799 => Epoch::Fixed(*n as u64),
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

    /// `[build]`: the source (which must exist), the language's own fields, libc × link.
    fn validate_build(
        &self,
        raw_build: Spanned<RawBuild>,
        dir: &Path,
        name: &str,
    ) -> Result<BuildSpec, RecipeError> {
        let build_span = raw_build.span();
        let b = raw_build.into_inner();
        let lang = *b.lang.get_ref();
        let source = dir.join(b.source.get_ref());
        match (lang, source.exists()) {
            (_, false) => {
                return Err(self.error(
                    b.source.span(),
                    "build.source",
                    format!("{} does not exist", source.display()),
                    Some(format!(
                        "relative paths are resolved against the recipe's folder {}",
                        dir.display()
                    )),
                ));
            }
            (Lang::Prebuilt, true) if !source.is_file() => {
                return Err(self.error(
                    b.source.span(),
                    "build.source",
                    format!("{} is not a file", source.display()),
                    Some("with lang = \"prebuilt\", source names the binary to pack".into()),
                ));
            }
            (Lang::C | Lang::Go, true) if !source.is_dir() => {
                return Err(self.error(
                    b.source.span(),
                    "build.source",
                    format!("{} is not a folder", source.display()),
                    Some("source names the folder that holds the code".into()),
                ));
            }
            _ => {}
        }

        let libc = match (lang, &b.libc) {
            (_, Some(l)) => {
                let value = *l.get_ref();
                let allowed: &[LibcChoice] = match lang {
                    Lang::C => &[LibcChoice::Musl, LibcChoice::Glibc],
                    Lang::Go | Lang::Prebuilt => {
                        &[LibcChoice::Musl, LibcChoice::Glibc, LibcChoice::None]
                    }
                };
                if !allowed.contains(&value) {
                    return Err(self.error(
                        l.span(),
                        "build.libc",
                        format!(
                            "libc = \"{value}\" is not possible for lang = \"{}\"",
                            lang_name(lang)
                        ),
                        Some(format!("allowed: {}", join_quoted(allowed))),
                    ));
                }
                value
            }
            (Lang::C, None) => LibcChoice::Musl,
            (Lang::Go | Lang::Prebuilt, None) => LibcChoice::None,
        };
        let link = b
            .link
            .as_ref()
            .map(|l| *l.get_ref())
            // C defaults to the strongest form; Go and prebuilt to plain static, as ko does.
            .unwrap_or(if lang == Lang::C {
                LinkMode::StaticPie
            } else {
                LinkMode::Static
            });
        let go = self.validate_go(&b, lang, libc, link, &source)?;
        let libc = go.libc;

        let files = match (lang, b.files) {
            (Lang::C, Some(list)) => {
                let mut out = Vec::new();
                for f in list {
                    let p = source.join(f.get_ref());
                    if !p.is_file() {
                        return Err(self.error(
                            f.span(),
                            "build.files",
                            format!("{} does not exist", p.display()),
                            Some("files are relative to build.source".into()),
                        ));
                    }
                    out.push(f.into_inner());
                }
                out.sort();
                out
            }
            (Lang::C, None) => {
                let found = c_files_in(&source);
                if found.is_empty() {
                    return Err(self.error(
                        b.source.span(),
                        "build.source",
                        format!("no *.c file in {}", source.display()),
                        Some("put the C sources there, or list them in build.files".into()),
                    ));
                }
                found
            }
            (_, Some(list)) => {
                let span = list.first().map(|f| f.span()).unwrap_or(build_span.clone());
                return Err(self.error(
                    span,
                    "build.files",
                    format!(
                        "`files` is only for lang = \"c\", not \"{}\"",
                        lang_name(lang)
                    ),
                    Some("remove it".into()),
                ));
            }
            (_, None) => Vec::new(),
        };

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

        Ok(BuildSpec {
            lang,
            source,
            libc,
            link,
            files,
            cflags: b.cflags,
            ldflags: b.ldflags,
            output,
            strip: b.strip,
            package: go.package,
            cgo: go.cgo,
            tags: go.tags,
        })
    }

    /// `[image]`: the base (loaded here, once), users and owners resolved against it, paths,
    /// ports, signals. `output` is the binary's path, the default entrypoint.
    fn validate_image(
        &self,
        img: RawImage,
        dir: &Path,
        output: &str,
    ) -> Result<ImageSpec, RecipeError> {
        let (base, base_image) = match &img.base {
            Some(bs) => {
                let wanted = bs.get_ref();
                let loaded = crate::image::base::load(wanted, dir).map_err(|e| {
                    let names = crate::image::base::embedded_names();
                    let help = match closest(wanted, &names) {
                        Some(c) if !crate::image::base::is_path_reference(wanted) => {
                            format!("did you mean \"{c}\"? available: {}", names.join(", "))
                        }
                        _ => format!(
                            "name a shipped base ({}) or a folder with a base.toml, e.g. \"./mybase\"",
                            names.join(", ")
                        ),
                    };
                    self.error(bs.span(), "image.base", error_chain(&e), Some(help))
                })?;
                (wanted.clone(), loaded)
            }
            None => ("scratch".to_owned(), scratch()),
        };
        // scratch has no users: names are refused against an empty database.
        let users = base_image.users.clone();
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
        let user = match &img.user {
            Some(u) => Some(self.validate_user(u, &base, &users)?),
            None => None,
        };
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

        let mut extra_files = Vec::new();
        for f in &img.files {
            let f = f.get_ref();
            let src = dir.join(f.src.get_ref());
            if !src.is_file() {
                return Err(self.error(
                    f.src.span(),
                    "image.files.src",
                    format!("{} is not a file", src.display()),
                    Some("src is relative to the recipe's folder".into()),
                ));
            }
            if let Err(why) = check_image_path(f.dst.get_ref()) {
                return Err(self.error(
                    f.dst.span(),
                    "image.files.dst",
                    format!("invalid path {:?}: {why}", f.dst.get_ref()),
                    Some(
                        "give the file's absolute path inside the image, e.g. \"/etc/app.conf\""
                            .into(),
                    ),
                ));
            }
            let (uid, gid) = match &f.owner {
                None => (0, 0),
                Some(o) => o
                    .get_ref()
                    .parse::<Owner>()
                    .and_then(|owner| users.resolve_owner(&owner))
                    .map_err(|e| {
                        self.error(
                            o.span(),
                            "image.files.owner",
                            format!("invalid owner {:?}: {e}", o.get_ref()),
                            Some(users_help(
                                &base,
                                &users,
                                "\"UID:GID\", e.g. \"65532:65532\"",
                            )),
                        )
                    })?,
            };
            extra_files.push(ExtraFile {
                src,
                dst: normalize_image_path(f.dst.get_ref()),
                mode: f.mode.unwrap_or(0o644) & 0o7777,
                uid,
                gid,
            });
        }
        let mut ports = Vec::new();
        for p in &img.ports {
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
        if let Some(sig) = &img.stop_signal {
            let v = sig.get_ref();
            let known = v.strip_prefix("SIG").is_some_and(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| {
                        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'
                    })
            }) || v.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n));
            if !known {
                return Err(self.error(
                    sig.span(),
                    "image.stop_signal",
                    format!("invalid signal {v:?}"),
                    Some("write a signal name like \"SIGTERM\" or a number from 1 to 64".into()),
                ));
            }
        }

        Ok(ImageSpec {
            base,
            base_image,
            entrypoint,
            cmd: img.cmd,
            user,
            env,
            workdir: img.workdir.map(Spanned::into_inner),
            labels: img.labels,
            annotations: img.annotations,
            tag,
            files: extra_files,
            ports,
            stop_signal: img.stop_signal.map(Spanned::into_inner),
        })
    }

    /// `[test]`: what the run proof checks.
    fn validate_test(&self, raw_test: Option<RawTest>) -> Result<Option<TestSpec>, RecipeError> {
        Ok(match raw_test {
            Some(t) => {
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
                Some(TestSpec {
                    args: t.args,
                    expect_exit: t.expect_exit,
                    expect_stdout: t.expect_stdout,
                    timeout_seconds,
                })
            }
            None => None,
        })
    }
}

impl Ctx<'_> {
    /// `image.user`, resolved against the base's /etc/passwd and /etc/group the way the run
    /// proof will resolve it.
    fn validate_user(
        &self,
        u: &Spanned<String>,
        base: &str,
        users: &Users,
    ) -> Result<User, RecipeError> {
        u.get_ref()
            .parse::<User>()
            .and_then(|user| users.resolve(&user).map(|_| user))
            .map_err(|e| {
                self.error(
                    u.span(),
                    "image.user",
                    format!("invalid user {:?}: {e}", u.get_ref()),
                    Some(users_help(
                        base,
                        users,
                        "\"UID\" or \"UID:GID\" like \"65532:65532\"",
                    )),
                )
            })
    }
}

struct GoSettings {
    package: String,
    cgo: bool,
    tags: Vec<String>,
    libc: LibcChoice,
}

impl Ctx<'_> {
    /// Go's fields are only for Go, and only some cgo × libc × link combinations make sense.
    fn validate_go(
        &self,
        b: &RawBuild,
        lang: Lang,
        libc: LibcChoice,
        link: LinkMode,
        source: &Path,
    ) -> Result<GoSettings, RecipeError> {
        if lang != Lang::Go {
            let stray = [
                b.package.as_ref().map(|p| ("build.package", p.span())),
                b.cgo.as_ref().map(|c| ("build.cgo", c.span())),
                b.tags.first().map(|t| ("build.tags", t.span())),
            ];
            if let Some((field, span)) = stray.into_iter().flatten().next() {
                return Err(self.error(
                    span,
                    field,
                    format!(
                        "`{}` is only for lang = \"go\", not \"{}\"",
                        &field[6..],
                        lang_name(lang)
                    ),
                    Some("remove it".into()),
                ));
            }
            return Ok(GoSettings {
                package: String::new(),
                cgo: false,
                tags: Vec::new(),
                libc,
            });
        }
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
                if value.starts_with('/')
                    || rel.split('/').any(|c| c == "..")
                    || !source.join(rel).is_dir()
                {
                    return Err(self.error(
                        p.span(),
                        "build.package",
                        format!("{value:?} is not a package folder inside {}", source.display()),
                        Some("give the main package's folder relative to build.source, e.g. \".\" or \"./cmd/app\"".into()),
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
        if !source.join("go.mod").is_file() {
            return Err(self.error(
                b.source.span(),
                "build.source",
                format!("no go.mod in {}", source.display()),
                Some("the source folder must be a Go module (go mod init example.com/app)".into()),
            ));
        }
        let mut tags = Vec::new();
        for t in &b.tags {
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
        Ok(GoSettings {
            package,
            cgo,
            tags,
            libc,
        })
    }
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::C => "c",
        Lang::Go => "go",
        Lang::Prebuilt => "prebuilt",
    }
}

fn join_quoted<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn c_files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".c"))
        .collect();
    files.sort();
    files
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

/// The empty base: no layer, no users.
fn scratch() -> Base {
    Base {
        name: "scratch".to_owned(),
        description: String::new(),
        layer: None,
        users: Users::default(),
    }
}

/// What the base offers to a user or owner field, for its help line.
fn users_help(base: &str, users: &Users, numeric: &str) -> String {
    let list = |names: Vec<&str>| match names.join(", ") {
        s if s.is_empty() => "none".to_owned(),
        s => s,
    };
    format!(
        "use numbers, {numeric}, or names of the base: base {base:?} has users {} and groups {}",
        list(users.user_names()),
        list(users.group_names())
    )
}

/// An error's message followed by its causes, for a [`Located`] message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
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

fn closest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("src/hello.c"),
            "int main(void){return 0;}\n",
        )
        .unwrap();
        dir
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Recipe, RecipeError> {
        parse(&dir.join("recipe.toml"), text)
    }

    fn err(dir: &Path, text: &str) -> Located {
        match parse_in(dir, text) {
            Err(RecipeError::Invalid(l)) => *l,
            Err(e) => panic!("unexpected error kind: {e}"),
            Ok(_) => panic!("recipe was accepted:\n{text}"),
        }
    }

    const MINIMAL: &str = "name = \"hello\"\n[build]\nlang = \"c\"\nsource = \"src\"\n";

    #[test]
    fn minimal_recipe_gets_the_defaults() {
        let d = fixture();
        let r = parse_in(d.path(), MINIMAL).unwrap();
        assert_eq!(r.build.libc, LibcChoice::Musl);
        assert_eq!(r.build.link, LinkMode::StaticPie);
        assert_eq!(r.build.files, vec!["hello.c"]);
        assert_eq!(r.build.output, "/hello");
        assert_eq!(r.build.source, d.path().join("src"));
        assert_eq!(r.image.entrypoint, vec!["/hello"]);
        assert_eq!(r.image.base, "scratch");
        assert_eq!(r.image.tag, "latest");
        assert!(r.test.is_none());
        assert_eq!(r.epoch, Epoch::Default);
        let r = parse_in(d.path(), &format!("epoch = 1700000000\n{MINIMAL}")).unwrap();
        assert_eq!(r.epoch, Epoch::Fixed(1_700_000_000));
        let r = parse_in(d.path(), &format!("epoch = \"git\"\n{MINIMAL}")).unwrap();
        assert_eq!(r.epoch, Epoch::Git);
        let e = err(d.path(), &format!("epoch = \"yesterday\"\n{MINIMAL}"));
        assert_eq!((e.line, e.field.as_deref()), (1, Some("epoch")));
        let e = err(d.path(), &format!("epoch = -5\n{MINIMAL}"));
        assert_eq!(e.message, "epoch must be seconds since 1970 or \"git\"");
    }

    #[test]
    fn unknown_field_names_file_line_column_field_and_suggests() {
        let d = fixture();
        let e = err(
            d.path(),
            "name = \"hello\"\n[build]\nlang = \"c\"\nsorce = \"src\"\n",
        );
        assert_eq!((e.line, e.column), (4, 1));
        assert_eq!(e.field.as_deref(), Some("build.sorce"));
        assert!(e.message.contains("unknown field `sorce`"), "{}", e.message);
        let help = e.help.unwrap();
        assert!(help.starts_with("did you mean `source`?"), "{help}");
        let shown = err(
            d.path(),
            "name = \"hello\"\n[build]\nlang = \"c\"\nsorce = \"src\"\n",
        )
        .to_string();
        assert!(
            shown.starts_with(&format!(
                "{}:4:1: `build.sorce`: unknown field `sorce`",
                d.path().join("recipe.toml").display()
            )),
            "{shown}"
        );
    }

    #[test]
    fn unknown_top_level_table_is_refused() {
        let d = fixture();
        let e = err(d.path(), &format!("{MINIMAL}[imgae]\nbase = \"scratch\"\n"));
        assert!(e.message.contains("unknown field `imgae`"), "{}", e.message);
        assert!(e.help.unwrap().contains("did you mean `image`"));
    }

    #[test]
    fn wrong_type_is_located() {
        let d = fixture();
        let e = err(
            d.path(),
            "name = \"hello\"\n[build]\nlang = \"c\"\nsource = 7\n",
        );
        assert_eq!(e.line, 4);
        assert_eq!(e.field.as_deref(), Some("build.source"));
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }

    #[test]
    fn bad_enum_value_lists_the_allowed_ones() {
        let d = fixture();
        let e = err(d.path(), &MINIMAL.replace("lang = \"c\"", "lang = \"cc\""));
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown variant `cc`"), "{}", e.message);
        assert_eq!(
            e.help.as_deref(),
            Some("did you mean `c`? allowed: c, go, prebuilt")
        );
    }

    #[test]
    fn missing_source_names_the_resolved_path() {
        let d = fixture();
        let e = err(d.path(), &MINIMAL.replace("\"src\"", "\"nowhere\""));
        assert_eq!((e.line, e.column), (4, 10));
        assert_eq!(e.field.as_deref(), Some("build.source"));
        assert_eq!(
            e.message,
            format!("{} does not exist", d.path().join("nowhere").display())
        );
    }

    #[test]
    fn missing_required_field_is_reported() {
        let d = fixture();
        let e = err(d.path(), "name = \"hello\"\n[build]\nlang = \"c\"\n");
        assert!(
            e.message.contains("missing field `source`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn semantic_checks() {
        let d = fixture();
        let e = err(d.path(), &format!("{MINIMAL}libc = \"none\"\n"));
        assert_eq!(e.field.as_deref(), Some("build.libc"));
        assert_eq!(
            e.message,
            "libc = \"none\" is not possible for lang = \"c\""
        );
        let e = err(d.path(), &format!("{MINIMAL}output = \"hello\"\n"));
        assert_eq!(e.message, "invalid path \"hello\": it must be absolute");
        let e = err(d.path(), &format!("{MINIMAL}output = \"/../x\"\n"));
        assert!(e.message.contains("'..'"));
        let e = err(d.path(), &format!("{MINIMAL}[image]\nbase = \"scrach\"\n"));
        assert_eq!(
            e.help.as_deref(),
            Some("did you mean \"scratch\"? available: scratch, static")
        );
        let e = err(d.path(), &format!("{MINIMAL}[image]\nenv = [\"TZ\"]\n"));
        assert_eq!(e.field.as_deref(), Some("image.env"));
        let e = err(d.path(), &format!("{MINIMAL}[image]\nuser = \"nobody\"\n"));
        assert_eq!(e.field.as_deref(), Some("image.user"));
        assert!(
            e.message.contains("the image has no /etc/passwd"),
            "{}",
            e.message
        );
        let e = err(
            d.path(),
            &format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"nobody\"\n"),
        );
        assert!(
            e.message.contains("is not in the image's /etc/passwd"),
            "{}",
            e.message
        );
        let ok = parse_in(
            d.path(),
            &format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"nonroot\"\n"),
        );
        assert!(ok.is_ok());
        let e = err(d.path(), &format!("{MINIMAL}[image]\ntag = \"-x\"\n"));
        assert_eq!(e.field.as_deref(), Some("image.tag"));
        let e = err(d.path(), &MINIMAL.replace("hello", "Hello World"));
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = err(d.path(), &format!("{MINIMAL}[test]\ntimeout_seconds = 0\n"));
        assert_eq!(e.help.as_deref(), Some("allowed: 1 to 3600"));
    }

    #[test]
    fn user_group_missing_from_the_base_is_refused_at_validation() {
        let d = fixture();
        let text = format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"nonroot:staff\"\n");
        let e = err(d.path(), &text);
        assert_eq!((e.line, e.column), (7, 8));
        assert_eq!(e.field.as_deref(), Some("image.user"));
        assert_eq!(
            e.message,
            "invalid user \"nonroot:staff\": group \"staff\" is not in the image's /etc/group (it has: root, nonroot)"
        );
        assert_eq!(
            e.help.as_deref(),
            Some(
                "use numbers, \"UID\" or \"UID:GID\" like \"65532:65532\", or names of the base: base \"static\" has users root, nonroot and groups root, nonroot"
            )
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!(
                "{}:7:8: `image.user`: ",
                d.path().join("recipe.toml").display()
            )),
            "{shown}"
        );
        let ok = |user: &str| {
            parse_in(
                d.path(),
                &format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"{user}\"\n"),
            )
            .map(|r| r.image.user.map(|u| u.to_string()))
            .map_err(|e| e.to_string())
        };
        for user in [
            "nonroot:nonroot",
            "nonroot:0",
            "65532:65532",
            "root",
            "1000",
        ] {
            assert_eq!(ok(user), Ok(Some(user.to_owned())));
        }
        let e = err(d.path(), &format!("{MINIMAL}[image]\nuser = \"1:\"\n"));
        assert!(e.message.contains("is not of the form"), "{}", e.message);
    }

    #[test]
    fn the_base_is_loaded_once_with_a_layer_independent_of_the_epoch() {
        let d = fixture();
        let digest = |epoch: &str| {
            let r = parse_in(
                d.path(),
                &format!("epoch = {epoch}\n{MINIMAL}[image]\nbase = \"static\"\n"),
            )
            .unwrap();
            let layer = r.image.base_image.layer.unwrap();
            assert_eq!(layer.mtime, crate::image::base::BASE_MTIME);
            let blobs = tempfile::tempdir().unwrap();
            crate::image::layer::write_layer(&layer, blobs.path())
                .unwrap()
                .digest
        };
        assert_eq!(digest("1"), digest("1700000000"));
        assert_eq!(digest("1"), digest("\"git\""));
        let r = parse_in(d.path(), MINIMAL).unwrap();
        assert!(r.image.base_image.layer.is_none());
    }

    #[test]
    fn file_owners_resolve_against_the_base() {
        let d = fixture();
        std::fs::write(d.path().join("app.conf"), "x\n").unwrap();
        let with = |base: &str, owner: &str| {
            format!(
                "{MINIMAL}[image]\nbase = \"{base}\"\n[[image.files]]\nsrc = \"app.conf\"\ndst = \"/etc/app.conf\"\nowner = \"{owner}\"\n"
            )
        };
        let r = parse_in(d.path(), &with("static", "nonroot")).unwrap();
        assert_eq!((r.image.files[0].uid, r.image.files[0].gid), (65532, 65532));
        let r = parse_in(d.path(), &with("scratch", "7")).unwrap();
        assert_eq!((r.image.files[0].uid, r.image.files[0].gid), (7, 7));
        let e = err(d.path(), &with("static", "nonroot:staff"));
        assert_eq!(e.field.as_deref(), Some("image.files.owner"));
        assert!(e.message.contains("group \"staff\""), "{}", e.message);
        let e = err(d.path(), &with("scratch", "nonroot"));
        assert!(e.message.contains("no /etc/passwd"), "{}", e.message);
    }

    fn go_fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/cmd/app")).unwrap();
        std::fs::write(dir.path().join("src/go.mod"), "module x\n").unwrap();
        dir
    }

    const GO: &str = "name = \"app\"\n[build]\nlang = \"go\"\nsource = \"src\"\n";

    #[test]
    fn go_defaults_and_cgo_combinations() {
        let d = go_fixture();
        let r = parse_in(d.path(), GO).unwrap();
        assert_eq!(
            (r.build.cgo, r.build.libc, r.build.link),
            (false, LibcChoice::None, LinkMode::Static)
        );
        assert_eq!(r.build.package, ".");
        let r = parse_in(
            d.path(),
            &format!(
                "{GO}cgo = true\nlink = \"static-pie\"\npackage = \"cmd/app\"\ntags = [\"netgo\"]\n"
            ),
        )
        .unwrap();
        assert_eq!(
            (r.build.libc, r.build.package.as_str()),
            (LibcChoice::Musl, "./cmd/app")
        );
        assert_eq!(r.build.tags, vec!["netgo"]);

        let e = err(d.path(), &format!("{GO}link = \"static-pie\"\n"));
        assert_eq!(e.field.as_deref(), Some("build.link"));
        assert!(
            e.message.starts_with("a Go static-pie needs cgo"),
            "{}",
            e.message
        );
        let e = err(d.path(), &format!("{GO}cgo = true\nlibc = \"none\"\n"));
        assert_eq!(e.message, "cgo = true links C code, so it needs a libc");
        let e = err(d.path(), &format!("{GO}libc = \"musl\"\n"));
        assert_eq!(
            e.message,
            "with cgo = false and link = \"static\" Go links no libc at all"
        );
        let e = err(d.path(), &format!("{GO}package = \"../x\"\n"));
        assert_eq!(e.field.as_deref(), Some("build.package"));
        let e = err(d.path(), &format!("{GO}tags = [\"net go\"]\n"));
        assert_eq!(e.field.as_deref(), Some("build.tags"));
        std::fs::remove_file(d.path().join("src/go.mod")).unwrap();
        let e = err(d.path(), GO);
        assert!(e.message.starts_with("no go.mod in"), "{}", e.message);
    }

    #[test]
    fn go_fields_are_refused_for_c() {
        let d = fixture();
        let e = err(d.path(), &format!("{MINIMAL}cgo = true\n"));
        assert_eq!(e.field.as_deref(), Some("build.cgo"));
        assert_eq!(e.message, "`cgo` is only for lang = \"go\", not \"c\"");
    }

    /// A section's validation alone, from the section's own text.
    fn section<T: serde::de::DeserializeOwned, R>(
        text: &str,
        check: impl FnOnce(&Ctx<'_>, T) -> Result<R, RecipeError>,
    ) -> Result<R, Located> {
        let ctx = Ctx {
            file: Path::new("r.toml"),
            text,
        };
        let raw: T = toml::from_str(text).map_err(|e| match ctx.toml_error(&e) {
            RecipeError::Invalid(l) => *l,
            other => panic!("{other}"),
        })?;
        check(&ctx, raw).map_err(|e| match e {
            RecipeError::Invalid(l) => *l,
            other => panic!("{other}"),
        })
    }

    #[derive(Deserialize)]
    struct NameOnly {
        name: Spanned<String>,
    }

    #[test]
    fn name_section() {
        let name = |t: &str| section(t, |c, n: NameOnly| c.validate_name(&n.name));
        assert_eq!(name("name = \"curl-8.1\""), Ok("curl-8.1".to_owned()));
        for bad in ["\"\"", "\"-x\"", "\"A\"", "\"a b\""] {
            let e = name(&format!("name = {bad}")).unwrap_err();
            assert_eq!((e.line, e.column, e.field.as_deref()), (1, 8, Some("name")));
        }
    }

    #[test]
    fn test_section() {
        let test = |t: &str| section(t, |c, raw: RawTest| c.validate_test(Some(raw)));
        let t = test("args = [\"-v\"]\nexpect_stdout = \"ok\"")
            .unwrap()
            .unwrap();
        assert_eq!((t.args, t.timeout_seconds), (vec!["-v".to_owned()], 30));
        let e = test("args = []\ntimeout_seconds = 3601").unwrap_err();
        assert_eq!((e.line, e.column), (2, 19));
        assert_eq!(e.field.as_deref(), Some("test.timeout_seconds"));
        assert_eq!(e.message, "3601 is out of range");
    }

    #[test]
    fn image_section() {
        let d = tempfile::tempdir().unwrap();
        let image = |t: &str| {
            section(t, |c, raw: RawImage| {
                c.validate_image(raw, d.path(), "/app")
            })
        };
        let i =
            image("base = \"static\"\nuser = \"nonroot\"\nports = [\"53/udp\", \"80\"]").unwrap();
        assert_eq!(i.entrypoint, vec!["/app"]);
        assert_eq!(i.user.map(|u| u.to_string()).as_deref(), Some("nonroot"));
        assert_eq!(i.ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(i.base_image.name, "static");
        let e = image("base = \"static\"\nuser = \"nonroot:staff\"").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.field.as_deref()),
            (2, 8, Some("image.user"))
        );
        let e = image("stop_signal = \"TERM\"").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("image.stop_signal"));
        let e = image("ports = [\"0\"]").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("image.ports"));
    }

    #[test]
    fn build_section() {
        let d = fixture();
        let build = |t: &str| {
            section(t, |c, raw: Spanned<RawBuild>| {
                c.validate_build(raw, d.path(), "hello")
            })
        };
        let b = build("lang = \"c\"\nsource = \"src\"").unwrap();
        assert_eq!((b.output.as_str(), b.files.len()), ("/hello", 1));
        let e = build("lang = \"c\"\nsource = \"src\"\ntags = [\"x\"]").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (3, Some("build.tags")));
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(line_col("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn no_panic_on_garbage() {
        let d = fixture();
        for text in [
            "",
            "\u{0}",
            "[",
            "name = ",
            "[build]\n[build]\n",
            "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"\"\n",
        ] {
            assert!(parse_in(d.path(), text).is_err(), "{text:?}");
        }
    }
}
