//! What an image is made of, as staticpack knows it from the build (never from a scan): the
//! application, what is statically linked into it, and the base's files by package. Both SBOM
//! formats are written from this one value.

use super::SupplyError;
use crate::image::BasePackage;
use crate::recipe::{ArchiveOrigin, LangSpec, LibcChoice, Recipe};
use crate::verify::ElfFacts;
use std::collections::BTreeMap;
use std::path::Path;

/// What a component is, for the formats' type fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Container,
    Application,
    Library,
    /// Files of the base (CA certificates, time zones).
    Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Component {
    /// Unique in the document, stable across builds: the element id of both formats.
    pub id: String,
    pub kind: Kind,
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// sha256, hex.
    pub sha256: Option<String>,
    /// Where its source was fetched from.
    pub download: Option<String>,
    /// Facts without a field in the formats (a Go module's go.sum hash, a base file's path).
    pub properties: BTreeMap<String, String>,
}

/// The image, its application and the rest, each list sorted by id.
#[derive(Clone, Debug)]
pub(crate) struct Bom {
    pub image: Component,
    pub application: Component,
    /// Statically linked into the application.
    pub linked: Vec<Component>,
    /// Contained in the image beside the application (the base's packages).
    pub contained: Vec<Component>,
}

/// The facts a BOM is made from: the recipe, the build's record and the binary's ELF facts.
pub(crate) struct BomInput<'a> {
    pub recipe: &'a Recipe,
    pub toolchain: &'a BTreeMap<String, String>,
    pub facts: &'a ElfFacts,
    /// The source folder the toolchain built (an unpacked archive's folder), for Cargo.lock.
    pub source_dir: &'a Path,
    /// The packages the toolchain compiled into the binary, where it says (cargo does).
    pub linked_packages: Option<&'a [(String, String)]>,
    pub binary_sha256: &'a str,
    pub manifest_sha256: &'a str,
}

pub(crate) fn bom(input: &BomInput) -> Result<Bom, SupplyError> {
    let recipe = input.recipe;
    let arch = debian_arch(input.facts.oci_arch.as_deref());
    let label_version = recipe
        .image
        .settings
        .labels
        .get("org.opencontainers.image.version")
        .cloned();
    let image = Component {
        id: "image".into(),
        kind: Kind::Container,
        name: recipe.name.clone(),
        version: Some(format!("sha256:{}", input.manifest_sha256)),
        purl: Some(format!(
            "pkg:oci/{}@sha256%3A{}?tag={}",
            purl_name(&recipe.name),
            input.manifest_sha256,
            purl_escape(&recipe.image.settings.tag)
        )),
        sha256: Some(input.manifest_sha256.to_owned()),
        download: None,
        properties: BTreeMap::new(),
    };
    let mut application = Component {
        id: "application".into(),
        kind: Kind::Application,
        name: recipe.name.clone(),
        version: label_version.clone(),
        purl: None,
        sha256: Some(input.binary_sha256.to_owned()),
        download: None,
        properties: BTreeMap::from([("staticpack:path".to_owned(), recipe.build.output.clone())]),
    };
    let mut linked = Vec::new();
    if let Some(archive) = &recipe.build.archive {
        if let ArchiveOrigin::Url(url) = &archive.origin {
            application.download = Some(url.clone());
        }
        application.properties.insert(
            "staticpack:source-archive-sha256".into(),
            archive.sha256.hex().to_owned(),
        );
    }
    match &recipe.build.lang {
        LangSpec::Go(_) => go_components(input.facts, &mut application, &mut linked),
        LangSpec::Rust(_) => {
            cargo_components(
                input.source_dir,
                input.linked_packages,
                &mut application,
                &mut linked,
            )?;
            rust_std(input.toolchain, recipe.build.libc, &mut linked);
        }
        LangSpec::C(_) | LangSpec::Prebuilt => {}
    }
    if application.version.is_none() {
        application.version =
            label_version.or_else(|| recipe.build.archive.as_ref().and_then(archive_version));
    }
    c_deps(recipe, &mut linked);
    runtime_packages(input.toolchain, &recipe.build, arch, &mut linked);
    let contained = recipe
        .image
        .base_image
        .packages
        .iter()
        .map(base_component)
        .collect();
    Ok(Bom {
        image,
        application,
        linked: sorted_unique(linked),
        contained: sorted_unique(contained),
    })
}

fn sorted_unique(mut v: Vec<Component>) -> Vec<Component> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v.dedup_by(|a, b| a.id == b.id);
    v
}

/// Debian's name of an OCI architecture (the same for the common ones).
fn debian_arch(oci: Option<&str>) -> &str {
    match oci {
        Some("arm") => "armhf",
        Some("386") => "i386",
        Some("ppc64le") => "ppc64el",
        Some(a) => a,
        None => "amd64",
    }
}

/// Percent-encodes what a purl segment must not hold raw (purl spec: `+` too).
pub(crate) fn purl_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A name segment: lowercase (purl types oci and deb are case-insensitive), escaped.
pub(crate) fn purl_name(s: &str) -> String {
    purl_escape(&s.to_lowercase())
}

/// The main module names the application; each dependency module is linked in, and so is the
/// Go standard library of the toolchain that built it.
fn go_components(facts: &ElfFacts, app: &mut Component, linked: &mut Vec<Component>) {
    let Some(info) = &facts.go else { return };
    if let Some(main) = &info.main_module {
        // "(devel)": a module built from its own folder has no version.
        let version =
            (!main.version.is_empty() && main.version != "(devel)").then(|| main.version.clone());
        app.purl = Some(go_purl(&main.path, version.as_deref()));
        if app.version.is_none() {
            app.version = version;
        }
        app.properties
            .insert("staticpack:go-main-module".into(), main.path.clone());
    }
    for m in &info.deps {
        let mut properties = BTreeMap::new();
        if !m.sum.is_empty() {
            properties.insert("staticpack:go-sum".into(), m.sum.clone());
        }
        if let Some(r) = &m.replaced_by {
            properties.insert("staticpack:go-replaced-by".into(), r.clone());
        }
        linked.push(Component {
            id: format!("go-module-{}@{}", m.path, m.version),
            kind: Kind::Library,
            name: m.path.clone(),
            version: Some(m.version.clone()),
            purl: Some(go_purl(&m.path, Some(&m.version))),
            sha256: None,
            download: None,
            properties,
        });
    }
    if !info.go_version.is_empty() {
        let version = info.go_version.trim_start_matches("go").to_owned();
        linked.push(Component {
            id: "go-stdlib".into(),
            kind: Kind::Library,
            name: "stdlib".into(),
            purl: Some(go_purl("stdlib", Some(&version))),
            version: Some(version),
            sha256: None,
            download: None,
            properties: BTreeMap::from([(
                "staticpack:go-version".to_owned(),
                info.go_version.clone(),
            )]),
        });
    }
}

fn go_purl(path: &str, version: Option<&str>) -> String {
    // The module path's slashes are the purl's namespace/name separators.
    let path: Vec<String> = path.split('/').map(purl_escape).collect();
    match version {
        Some(v) => format!("pkg:golang/{}@{}", path.join("/"), purl_escape(v)),
        None => format!("pkg:golang/{}", path.join("/")),
    }
}

/// Cargo.lock's packages that cargo compiled into the binary (all of them when it did not
/// say): the registry crates with their .crate sha256; the package without a source that the
/// recipe built is the application. The lock also lists dev-dependencies, build-only crates
/// and other platforms' crates, which a binary does not contain.
fn cargo_components(
    source_dir: &Path,
    compiled: Option<&[(String, String)]>,
    app: &mut Component,
    linked: &mut Vec<Component>,
) -> Result<(), SupplyError> {
    let path = source_dir.join("Cargo.lock");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(SupplyError::Read { path, source }),
    };
    let lock: toml::Table = toml::from_str(&text).map_err(|e| SupplyError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let packages = lock
        .get("package")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let str_of =
        |p: &toml::Value, key: &str| p.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let locals: Vec<&toml::Value> = packages
        .iter()
        .filter(|p| p.get("source").is_none())
        .collect();
    // The application: the local package named like the recipe, else the only local one.
    let main = locals
        .iter()
        .find(|p| str_of(p, "name").as_deref() == Some(app.name.as_str()))
        .or(match locals.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    for p in &packages {
        let (Some(name), Some(version)) = (str_of(p, "name"), str_of(p, "version")) else {
            continue;
        };
        let purl = format!("pkg:cargo/{}@{}", purl_escape(&name), purl_escape(&version));
        if main.is_some_and(|m| std::ptr::eq(*m, p)) {
            app.purl = Some(purl);
            app.version = Some(version);
            continue;
        }
        if compiled.is_some_and(|c| !c.iter().any(|(n, v)| *n == name && *v == version)) {
            continue;
        }
        let source = str_of(p, "source");
        let mut properties = BTreeMap::new();
        let mut download = None;
        if let Some(s) = &source {
            properties.insert("staticpack:cargo-source".into(), s.clone());
            if s == "registry+https://github.com/rust-lang/crates.io-index" {
                download = Some(format!(
                    "https://static.crates.io/crates/{name}/{name}-{version}.crate"
                ));
            }
        }
        linked.push(Component {
            id: format!("cargo-{name}@{version}"),
            kind: Kind::Library,
            name,
            version: Some(version),
            purl: Some(purl),
            // The checksum Cargo.lock pins is the sha256 of the .crate file.
            sha256: str_of(p, "checksum").filter(|c| is_sha256_hex(c)),
            download,
            properties,
        });
    }
    Ok(())
}

/// Rust's standard library comes with the toolchain: its version is rustc's.
fn rust_std(toolchain: &BTreeMap<String, String>, libc: LibcChoice, linked: &mut Vec<Component>) {
    let Some(rustc) = toolchain.get("rustc") else {
        return;
    };
    let release = rustc
        .split("; ")
        .find_map(|p| p.strip_prefix("release: "))
        .map(str::to_owned);
    let Some(release) = release else { return };
    let mut properties = BTreeMap::new();
    if let Some(target) = toolchain.get("rust target") {
        properties.insert("staticpack:rust-target".to_owned(), target.clone());
    }
    linked.push(Component {
        id: "rust-std".into(),
        kind: Kind::Library,
        name: "std".into(),
        purl: Some(format!("pkg:generic/rust-std@{}", purl_escape(&release))),
        version: Some(release.clone()),
        sha256: None,
        download: None,
        properties: properties.clone(),
    });
    if libc == LibcChoice::Musl {
        // The musl target links the musl libc.a shipped inside the Rust toolchain.
        properties.insert("staticpack:shipped-by".into(), format!("rust {release}"));
        linked.push(Component {
            id: "rust-self-contained-musl".into(),
            kind: Kind::Library,
            name: "musl (rust self-contained)".into(),
            purl: None,
            version: None,
            sha256: None,
            download: None,
            properties,
        });
    }
}

/// `[[build.deps]]`, transitively: the C libraries built from other recipes and linked in.
fn c_deps(recipe: &Recipe, linked: &mut Vec<Component>) {
    for dep in &recipe.build.deps {
        let version = dep
            .image
            .settings
            .labels
            .get("org.opencontainers.image.version")
            .cloned()
            .or_else(|| dep.build.archive.as_ref().and_then(archive_version));
        let mut component = Component {
            id: format!("recipe-{}", dep.name),
            kind: Kind::Library,
            name: dep.name.clone(),
            version: version.clone(),
            purl: None,
            sha256: None,
            download: None,
            properties: BTreeMap::new(),
        };
        if let Some(archive) = &dep.build.archive {
            let hex = archive.sha256.hex().to_owned();
            let mut purl = format!("pkg:generic/{}", purl_escape(&dep.name));
            if let Some(v) = &version {
                purl.push_str(&format!("@{}", purl_escape(v)));
            }
            purl.push_str(&format!("?checksum=sha256:{hex}"));
            if let ArchiveOrigin::Url(url) = &archive.origin {
                purl.push_str(&format!("&download_url={}", purl_escape(url)));
                component.download = Some(url.clone());
            }
            component.purl = Some(purl);
            component.sha256 = Some(hex);
        }
        linked.push(component);
        c_deps(dep, linked);
    }
}

/// "zlib-1.3.1.tar.gz" → "1.3.1", "libonig_6.9.8.orig.tar.gz" → "6.9.8" (Debian's
/// `name_version.orig` spelling): the version in an archive's file name, when it has one.
fn archive_version(archive: &crate::recipe::ArchiveSource) -> Option<String> {
    let file = match &archive.origin {
        ArchiveOrigin::Url(u) => u.rsplit('/').next()?.to_owned(),
        ArchiveOrigin::File(p) => p.file_name()?.to_string_lossy().into_owned(),
    };
    version_in_file_name(&file)
}

fn version_in_file_name(file: &str) -> Option<String> {
    let stem = [
        ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tar", ".crate", ".zip",
    ]
    .iter()
    .find_map(|ext| file.strip_suffix(ext))
    .unwrap_or(file);
    let stem = stem.strip_suffix(".orig").unwrap_or(stem);
    let (_, version) = stem.rsplit_once(['-', '_'])?;
    let version = version.strip_prefix('v').unwrap_or(version);
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| version.to_owned())
}

/// The libc and compiler runtime linked in, from the Debian packages recorded at build time:
/// musl-dev's (or libc6-dev's) libc.a, and gcc's libgcc.a, whose package shares gcc's version.
fn runtime_packages(
    toolchain: &BTreeMap<String, String>,
    build: &crate::recipe::BuildSpec,
    arch: &str,
    linked: &mut Vec<Component>,
) {
    let deb = |package: &str, upstream: &str, version: &str, what: &str| Component {
        id: format!("deb-{package}"),
        kind: Kind::Library,
        name: package.to_owned(),
        version: Some(version.to_owned()),
        purl: Some(format!(
            "pkg:deb/debian/{package}@{}?arch={arch}&upstream={upstream}",
            purl_escape(version)
        )),
        sha256: None,
        download: None,
        properties: BTreeMap::from([("staticpack:linked".to_owned(), what.to_owned())]),
    };
    let is_debian_version = |v: &&String| v.starts_with(|c: char| c.is_ascii_digit());
    if let Some(v) = toolchain.get("musl-dev").filter(is_debian_version) {
        linked.push(deb("musl-dev", "musl", v, "libc.a, crt1.o (musl)"));
    }
    if let Some(v) = toolchain.get("libc6-dev").filter(is_debian_version) {
        linked.push(deb("libc6-dev", "glibc", v, "libc.a, crt1.o (glibc)"));
    }
    // "gcc (Debian 12.2.0-14+deb12u1) 12.2.0": the Debian version and the major version.
    let links_libgcc = matches!(build.lang, LangSpec::C(_) | LangSpec::Go(_))
        || (matches!(build.lang, LangSpec::Rust(_)) && build.libc == LibcChoice::Glibc);
    if let (Some(line), true) = (toolchain.get("gcc"), links_libgcc) {
        if let Some((debian, upstream)) = gcc_versions(line) {
            let major = upstream.split('.').next().unwrap_or_default();
            linked.push(deb(
                &format!("libgcc-{major}-dev"),
                &format!("gcc-{major}"),
                &debian,
                "libgcc.a, crtbegin*.o (gcc)",
            ));
        }
    }
}

fn gcc_versions(line: &str) -> Option<(String, String)> {
    let inner = line.split_once("(Debian ")?.1;
    let (debian, rest) = inner.split_once(')')?;
    let upstream = rest.split_whitespace().next()?;
    Some((debian.to_owned(), upstream.to_owned()))
}

fn base_component(p: &BasePackage) -> Component {
    let (name, version) = p.name_version();
    let purl = version.as_ref().map(|v| {
        format!(
            "pkg:deb/debian/{}@{}?arch=all",
            purl_name(&name),
            purl_escape(v)
        )
    });
    let mut properties = BTreeMap::from([
        ("staticpack:path".to_owned(), p.path.clone()),
        ("staticpack:package".to_owned(), p.package.clone()),
    ]);
    if let Some(d) = &p.digest {
        properties.insert("staticpack:pinned-digest".into(), d.clone());
    }
    Component {
        id: format!("base-{name}-{}", p.path),
        kind: Kind::Data,
        name,
        version,
        purl,
        // A file's pin is its sha256; a tree's is over its listing, no file's hash.
        sha256: (p.digest.as_deref())
            .and_then(|d| d.strip_prefix("sha256:"))
            .filter(|h| !p.tree && is_sha256_hex(h))
            .map(str::to_owned),
        download: None,
        properties,
    }
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcc_version_line() {
        assert_eq!(
            gcc_versions("gcc (Debian 12.2.0-14+deb12u1) 12.2.0"),
            Some(("12.2.0-14+deb12u1".into(), "12.2.0".into()))
        );
        assert_eq!(gcc_versions("clang version 16"), None);
    }

    #[test]
    fn purl_escapes_plus_and_colon() {
        assert_eq!(purl_escape("12.2.0-14+deb12u1"), "12.2.0-14%2Bdeb12u1");
        assert_eq!(
            go_purl("golang.org/x/sys", Some("v0.1.0")),
            "pkg:golang/golang.org/x/sys@v0.1.0"
        );
    }

    #[test]
    fn versions_in_archive_names() {
        for (file, want) in [
            ("zlib-1.3.1.tar.gz", Some("1.3.1")),
            ("libonig_6.9.8.orig.tar.gz", Some("6.9.8")),
            ("jq-1.7.1.tar.gz", Some("1.7.1")),
            ("v2.1.0.tar.gz", None),
            ("hexyl-v0.16.0.tar.gz", Some("0.16.0")),
            ("brotli-1.1.0.tar.zst", Some("1.1.0")),
            ("source.tar.gz", None),
            ("", None),
        ] {
            assert_eq!(version_in_file_name(file).as_deref(), want, "{file}");
        }
    }

    #[test]
    fn base_package_words() {
        let p = BasePackage {
            path: "/usr/share/zoneinfo".into(),
            package: "tzdata 2025b-0+deb12u2 (Debian 12), without posix/".into(),
            digest: None,
            tree: true,
        };
        assert_eq!(
            p.name_version(),
            ("tzdata".into(), Some("2025b-0+deb12u2".into()))
        );
    }
}
