//! Parsed → resolved: relative paths anchored at the recipe's folder and checked on disk, the
//! base loaded once, users and owners resolved against it the way the run proof will.

use super::cfiles::FilesError;
use super::parse::{Ctx, PACKAGE_HELP, ParsedBuild, ParsedImage, ParsedLang, closest};
use super::{
    ArchiveOrigin, ArchiveSource, BuildSpec, CBuild, Epoch, ExtraFile, FilePatterns, ImageSpec,
    LangSpec, Parsed, Problem, Recipe,
};
use crate::confine::{Confinement, Escape};
use crate::image::base::{self, Base};
use crate::image::users::Users;
use std::ops::Range;
use std::path::{Path, PathBuf};

impl Parsed {
    /// Resolves the recipe as the file `file` (relative paths are relative to its folder).
    pub fn resolve(self, file: &Path) -> Result<Recipe, Problem> {
        self.resolve_in(file, &mut Vec::new())
    }

    /// [`Parsed::resolve`], its dependencies loaded too; `stack` holds the recipe files whose
    /// dependencies are being loaded (the way here), to refuse a cycle.
    pub(super) fn resolve_in(
        mut self,
        file: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Recipe, Problem> {
        let deps = std::mem::take(&mut self.build.deps);
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let place = Ctx { text: &self.text };
        let mut allowed = Vec::new();
        for a in &self.allow_outside {
            let p = dir.join(a.get_ref());
            let real = p.canonicalize().map_err(|e| {
                place.error(
                    a.span(),
                    "allow_outside",
                    format!("{} cannot be resolved: {e}", p.display()),
                    Some("allow only paths that exist; relative ones are relative to the recipe's folder".into()),
                )
            })?;
            allowed.push(real);
        }
        let confinement = Confinement::new(&dir, &allowed)
            .map_err(|e| place.error(0..0, "", e.to_string(), None))?;
        let at = At {
            place,
            dir: &dir,
            confinement,
        };
        if self.build.archive.is_some() && self.epoch == Epoch::Git {
            return Err(at.place.error(
                self.build.source.span(),
                "epoch",
                "epoch = \"git\" reads the source's git history, and an archive has none".into(),
                Some("give the release's time in seconds, e.g. epoch = 1700000000".into()),
            ));
        }
        let mut build = at.resolve_build(self.build, &dir)?;
        let image = at.resolve_image(self.image, &dir)?;
        let me = file.canonicalize().unwrap_or_else(|_| dir.join(file));
        stack.push(me);
        let loaded = at.resolve_deps(&deps, stack);
        stack.pop();
        build.deps = loaded?;
        Ok(Recipe {
            path: file.to_path_buf(),
            dir,
            name: self.name,
            epoch: self.epoch,
            allow_outside: allowed,
            build,
            nss_allowed: self.nss_allowed,
            image,
            test: self.test,
        })
    }
}

/// Places problems in the recipe's text, and keeps its inputs in its folder.
struct At<'a> {
    place: Ctx<'a>,
    dir: &'a Path,
    confinement: Confinement,
}

impl At<'_> {
    /// `path` (named by `field` at `span`) must resolve inside the recipe's folder or an
    /// `allow_outside` path.
    fn confined(&self, path: &Path, span: Range<usize>, field: &str) -> Result<(), Problem> {
        match self.confinement.check(path) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.escape(e, span, field)),
        }
    }

    fn escape(&self, e: Escape, span: Range<usize>, field: &str) -> Problem {
        let help = match &e {
            // Suggest the path as the recipe wrote it, which stays valid on another machine.
            Escape::Outside { path, real, .. } => Some(format!(
                "keep the recipe's inputs in its folder, or allow this one explicitly: allow_outside = [\"{}\"]",
                path.strip_prefix(self.dir).unwrap_or(real).display()
            )),
            Escape::Unresolvable { .. } => None,
        };
        let message = match &e {
            Escape::Outside { path, real, root } => format!(
                "{} resolves to {}, outside the recipe's folder {}",
                path.display(),
                real.display(),
                root.display()
            ),
            Escape::Unresolvable { .. } => e.to_string(),
        };
        self.place.error(span, field, message, help)
    }

    /// The source (which must exist, a file for prebuilt, a folder otherwise), C files, Go's
    /// package folder and go.mod.
    fn resolve_build(&self, b: ParsedBuild, dir: &Path) -> Result<BuildSpec, Problem> {
        if b.archive.is_some() {
            return self.resolve_archive(b, dir);
        }
        if !b.per_platform.is_empty() {
            return self.resolve_per_platform(b, dir);
        }
        let source = dir.join(b.source.get_ref());
        let source_error = |message: String, help: String| {
            self.place
                .error(b.source.span(), "build.source", message, Some(help))
        };
        let wants_file = matches!(b.lang, ParsedLang::Prebuilt);
        if !source.exists() {
            return Err(source_error(
                format!("{} does not exist", source.display()),
                format!(
                    "relative paths are resolved against the recipe's folder {}",
                    dir.display()
                ),
            ));
        }
        if wants_file && !source.is_file() {
            return Err(source_error(
                format!("{} is not a file", source.display()),
                "with lang = \"prebuilt\", source names the binary to pack".into(),
            ));
        }
        if !wants_file && !source.is_dir() {
            return Err(source_error(
                format!("{} is not a folder", source.display()),
                "source names the folder that holds the code".into(),
            ));
        }
        self.confined(&source, b.source.span(), "build.source")?;
        if source.is_dir() {
            if let Some(e) = self.confinement.first_escaping_link(&source) {
                return Err(self.escape(e, b.source.span(), "build.source"));
            }
        }
        let lang = match b.lang {
            // A commands build compiles what its build system says: no file list to find.
            ParsedLang::C { build, .. } if build.commands.is_some() => LangSpec::C(build),
            ParsedLang::C { files, build } => LangSpec::C(CBuild {
                files: self.c_files(files, &build.patterns, &source, &b.source.span())?,
                ..build
            }),
            ParsedLang::Go {
                build,
                package_span,
            } => {
                if let Some(span) = package_span {
                    if !go_package_exists(&source, &build.package) {
                        return Err(self.place.error(
                            span,
                            "build.package",
                            format!(
                                "{:?} is not a {} inside {}",
                                build.package,
                                go_package_kind(&build.package),
                                source.display()
                            ),
                            Some(PACKAGE_HELP.into()),
                        ));
                    }
                }
                if !source.join("go.mod").is_file() {
                    return Err(source_error(
                        format!("no go.mod in {}", source.display()),
                        "the source folder must be a Go module (go mod init example.com/app)"
                            .into(),
                    ));
                }
                LangSpec::Go(build)
            }
            ParsedLang::Rust { build } => {
                check_cargo_project(&source).map_err(|(m, h)| source_error(m, h))?;
                LangSpec::Rust(build)
            }
            ParsedLang::Prebuilt => LangSpec::Prebuilt,
        };
        Ok(BuildSpec {
            source,
            archive: None,
            output: b.output,
            timeout_seconds: b.timeout_seconds,
            libc: b.libc,
            link: b.link,
            lang,
            deps: Vec::new(),
            platform: b.platform,
            platforms: b.platforms,
            per_platform: Vec::new(),
        })
    }

    /// A prebuilt binary per platform: each a file inside the recipe's folder.
    fn resolve_per_platform(&self, b: ParsedBuild, dir: &Path) -> Result<BuildSpec, Problem> {
        let mut per_platform = Vec::new();
        for (platform, rel) in &b.per_platform {
            let path = dir.join(rel.get_ref());
            let field = format!("build.source.\"{platform}\"");
            if !path.is_file() {
                return Err(self.place.error(
                    rel.span(),
                    &field,
                    format!("{} is not a file", path.display()),
                    Some(format!(
                        "name the {platform} binary relative to the recipe's folder {}",
                        dir.display()
                    )),
                ));
            }
            self.confined(&path, rel.span(), &field)?;
            per_platform.push((platform.clone(), path));
        }
        let mut spec = BuildSpec {
            source: PathBuf::new(),
            archive: None,
            output: b.output,
            timeout_seconds: b.timeout_seconds,
            libc: b.libc,
            link: b.link,
            lang: LangSpec::Prebuilt,
            deps: Vec::new(),
            platform: b.platform.clone(),
            platforms: b.platforms.clone(),
            per_platform,
        };
        spec.set_platforms(&b.platforms);
        Ok(spec)
    }

    /// `[[build.deps]]`: each a recipe file (or a folder with recipe.toml) inside the recipe's
    /// folder (or allowed outside), loaded as a dependency: a C recipe with install = true.
    fn resolve_deps(
        &self,
        deps: &[toml::Spanned<String>],
        stack: &mut Vec<PathBuf>,
    ) -> Result<Vec<Recipe>, Problem> {
        const FIELD: &str = "build.deps.recipe";
        let mut out = Vec::new();
        for d in deps {
            let span = d.span();
            let path = self.dir.join(d.get_ref());
            if !path.exists() {
                return Err(self.place.error(
                    span,
                    FIELD,
                    format!("{} does not exist", path.display()),
                    Some(format!(
                        "name a recipe file or a folder holding {}, relative to {}",
                        super::RECIPE_FILE,
                        self.dir.display()
                    )),
                ));
            }
            self.confined(&path, span.clone(), FIELD)?;
            let file = super::recipe_file(&path);
            let real = file.canonicalize().map_err(|e| {
                self.place.error(
                    span.clone(),
                    FIELD,
                    format!("{}: {e}", file.display()),
                    Some(format!("a folder must hold {}", super::RECIPE_FILE)),
                )
            })?;
            if let Some(at) = stack.iter().position(|p| *p == real) {
                let chain: Vec<String> = stack[at..]
                    .iter()
                    .chain(std::iter::once(&real))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(self.place.error(
                    span,
                    FIELD,
                    format!("a dependency cycle: {}", chain.join(" → ")),
                    Some("a recipe cannot depend on itself, directly or through others: remove one of these dependencies".into()),
                ));
            }
            let dep =
                super::load_as(&file, super::parse::Purpose::Dependency, stack).map_err(|e| {
                    self.place.error(
                        span.clone(),
                        FIELD,
                        format!("the dependency {} is not valid: {e}", file.display()),
                        Some("fix the dependency's recipe".into()),
                    )
                })?;
            let installs = matches!(
                &dep.build.lang,
                LangSpec::C(CBuild { commands: Some(c), .. }) if c.artifact.is_none()
            );
            if !installs {
                return Err(self.place.error(
                    span,
                    FIELD,
                    format!(
                        "{} is not a library recipe: a dependency is built for what it installs",
                        file.display()
                    ),
                    Some("give the dependency lang = \"c\", commands or system, and install = true (its $DESTDIR/usr becomes this build's sysroot)".into()),
                ));
            }
            out.push(dep);
        }
        Ok(out)
    }

    /// An archive source: a local one must be a file inside the recipe's folder. What is inside
    /// is checked once it is unpacked ([`check_unpacked`]).
    fn resolve_archive(&self, b: ParsedBuild, dir: &Path) -> Result<BuildSpec, Problem> {
        let Some(a) = b.archive else {
            return Err(self.place.error(
                b.source.span(),
                "build.source",
                "not an archive".into(),
                None,
            ));
        };
        let origin = if a.is_url {
            ArchiveOrigin::Url(b.source.get_ref().clone())
        } else {
            let path = dir.join(b.source.get_ref());
            if !path.is_file() {
                return Err(self.place.error(
                    b.source.span(),
                    "build.source.archive",
                    format!("{} is not a file", path.display()),
                    Some(format!(
                        "the archive is relative to the recipe's folder {}",
                        dir.display()
                    )),
                ));
            }
            self.confined(&path, b.source.span(), "build.source.archive")?;
            ArchiveOrigin::File(path)
        };
        let lang = match b.lang {
            // Matched once the archive is unpacked (`check_unpacked`).
            ParsedLang::C { build, .. } => LangSpec::C(build),
            ParsedLang::Go { build, .. } => LangSpec::Go(build),
            ParsedLang::Rust { build } => LangSpec::Rust(build),
            ParsedLang::Prebuilt => LangSpec::Prebuilt,
        };
        Ok(BuildSpec {
            // Until the pipeline unpacks the archive and points the source there.
            source: dir.to_path_buf(),
            archive: Some(ArchiveSource {
                origin,
                sha256: a.sha256,
                strip_components: a.strip_components,
                format: a.format,
                max_unpack_bytes: a.max_unpack_bytes,
            }),
            output: b.output,
            timeout_seconds: b.timeout_seconds,
            libc: b.libc,
            link: b.link,
            lang,
            deps: Vec::new(),
            platform: b.platform,
            platforms: b.platforms,
            per_platform: Vec::new(),
        })
    }

    /// The files `build.files` and `build.exclude` select (plain paths must exist, globs must
    /// match), or every `*.c` at the top of the source folder; sorted.
    fn c_files(
        &self,
        listed: Option<Vec<toml::Spanned<String>>>,
        patterns: &FilePatterns,
        source: &Path,
        source_span: &Range<usize>,
    ) -> Result<Vec<String>, Problem> {
        let listed = listed.unwrap_or_default();
        let files = super::cfiles::expand(source, patterns).map_err(|e| {
            let (span, field) = match &e {
                FilesError::Missing(i) | FilesError::NoMatch(i) => (
                    listed.get(*i).map_or(source_span.clone(), |f| f.span()),
                    "build.files",
                ),
                FilesError::Empty => (source_span.clone(), "build.source"),
                FilesError::AllExcluded => (source_span.clone(), "build.exclude"),
            };
            self.place.error(
                span,
                field,
                format!("{} ({})", e.describe(patterns), source.display()),
                Some("files are paths or globs relative to build.source: \"main.c\", \"src/**/*.c\"; exclude takes the same".into()),
            )
        })?;
        for f in &files {
            let span = listed.first().map_or(source_span.clone(), |f| f.span());
            self.confined(&source.join(f), span, "build.files")?;
        }
        Ok(files)
    }

    /// The base (loaded here, once), the user and the files' owners resolved against it.
    fn resolve_image(&self, img: ParsedImage, dir: &Path) -> Result<ImageSpec, Problem> {
        let (base_name, base_image) = match &img.base {
            Some(bs) => {
                let wanted = bs.get_ref();
                if base::is_path_reference(wanted) && dir.join(wanted).exists() {
                    self.confined(&dir.join(wanted), bs.span(), "image.base")?;
                }
                let loaded = base::load(wanted, dir).map_err(|e| {
                    let names = base::embedded_names();
                    let help = match closest(wanted, &names) {
                        Some(c) if !base::is_path_reference(wanted) => {
                            format!("did you mean \"{c}\"? available: {}", names.join(", "))
                        }
                        _ => format!(
                            "name a shipped base ({}) or a folder with a base.toml, e.g. \"./mybase\"",
                            names.join(", ")
                        ),
                    };
                    self.place.error(bs.span(), "image.base", error_chain(&e), Some(help))
                })?;
                (wanted.clone(), loaded)
            }
            None => ("scratch".to_owned(), scratch()),
        };
        // scratch has no users: names are refused against an empty database.
        let users = &base_image.users;
        let user = match img.user {
            Some((written, user)) => {
                users.resolve(&user).map_err(|e| {
                    self.place.error(
                        written.span(),
                        "image.user",
                        format!("invalid user {:?}: {e}", written.get_ref()),
                        Some(users_help(
                            &base_name,
                            users,
                            "\"UID\" or \"UID:GID\" like \"65532:65532\"",
                        )),
                    )
                })?;
                Some(user)
            }
            None => None,
        };
        let mut files = Vec::new();
        for f in img.files {
            let src = dir.join(f.src.get_ref());
            if !src.is_file() {
                return Err(self.place.error(
                    f.src.span(),
                    "image.files.src",
                    format!("{} is not a file", src.display()),
                    Some("src is relative to the recipe's folder".into()),
                ));
            }
            self.confined(&src, f.src.span(), "image.files.src")?;
            let (uid, gid) = match &f.owner {
                None => (0, 0),
                Some((written, owner)) => users.resolve_owner(owner).map_err(|e| {
                    self.place.error(
                        written.span(),
                        "image.files.owner",
                        format!("invalid owner {:?}: {e}", written.get_ref()),
                        Some(users_help(
                            &base_name,
                            users,
                            "\"UID:GID\", e.g. \"65532:65532\"",
                        )),
                    )
                })?,
            };
            files.push(ExtraFile {
                src,
                dst: f.dst,
                mode: f.mode,
                uid,
                gid,
            });
        }
        Ok(ImageSpec {
            base: base_name,
            base_image,
            user,
            files,
            symlinks: img.symlinks,
            settings: img.settings,
        })
    }
}

/// Finishes resolving a spec whose source was just unpacked at `spec.source`: the C files
/// (listed ones must exist, else every `*.c`), Go's go.mod and package folder.
pub(crate) fn check_unpacked(spec: &mut BuildSpec) -> Result<(), String> {
    let source = spec.source.clone();
    match &mut spec.lang {
        // The project's own build system finds its files: nothing to list or check.
        LangSpec::C(c) if c.commands.is_some() => {}
        LangSpec::C(c) => {
            c.files = super::cfiles::expand(&source, &c.patterns).map_err(|e| {
                format!(
                    "build.files: {} of the unpacked archive (after strip_components)",
                    e.describe(&c.patterns)
                )
            })?;
        }
        LangSpec::Go(g) => {
            if !source.join("go.mod").is_file() {
                return Err("the archive holds no go.mod at its top (after strip_components): it must be a Go module".into());
            }
            if !go_package_exists(&source, &g.package) {
                return Err(format!(
                    "build.package: {:?} is not a {} in the unpacked archive",
                    g.package,
                    go_package_kind(&g.package)
                ));
            }
        }
        LangSpec::Rust(_) => {
            check_cargo_project(&source).map_err(|(m, h)| format!("{m}; {h}"))?;
        }
        LangSpec::Prebuilt => {}
    }
    Ok(())
}

/// A cargo project staticpack can build offline: a Cargo.toml and the Cargo.lock that pins
/// every dependency (`--locked` refuses to invent one). What is wrong, and the fix.
fn check_cargo_project(source: &Path) -> Result<(), (String, String)> {
    if !source.join("Cargo.toml").is_file() {
        return Err((
            format!("no Cargo.toml in {}", source.display()),
            "the source folder must be a cargo package or workspace (cargo init)".into(),
        ));
    }
    if !source.join("Cargo.lock").is_file() {
        return Err((
            format!("no Cargo.lock in {}", source.display()),
            "staticpack builds with --locked so that every dependency is pinned: run `cargo generate-lockfile` in the source folder and commit Cargo.lock".into(),
        ));
    }
    Ok(())
}

/// A Go `package`: a folder, or one `.go` file (`go build prog.go`, which builds that file
/// alone, `//go:build ignore` or not).
fn go_package_exists(source: &Path, package: &str) -> bool {
    let p = source.join(package);
    if package.ends_with(".go") {
        p.is_file()
    } else {
        p.is_dir()
    }
}

fn go_package_kind(package: &str) -> &'static str {
    if package.ends_with(".go") {
        ".go file"
    } else {
        "package folder"
    }
}

/// The empty base: no layer, no users.
fn scratch() -> Base {
    Base {
        name: "scratch".to_owned(),
        description: String::new(),
        layer: None,
        users: Users::default(),
        packages: Vec::new(),
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

/// An error's message followed by its causes, for a [`Problem`] message.
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
