//! Toolchains: recipe build spec → a binary in the build folder. One toolchain per file; the
//! hermetic process plumbing is shared in `process`.

mod c;
mod commands;
mod go;
pub(crate) mod musl;
pub(crate) mod process;
mod rust;
pub mod second;
mod systems;

use crate::fsio::{IoContext, IoError};
use crate::recipe::{BuildSpec, LangSpec, LibcChoice, LinkMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} is not installed ({why}); install it with: {install}")]
    ToolMissing {
        tool: String,
        why: String,
        install: String,
    },
    #[error("musl was not found: {0}; install it with: apt-get install musl-tools")]
    MuslMissing(String),
    #[error("{program} failed ({status}):\n  command: {command}\n{output}")]
    Failed {
        program: String,
        command: String,
        status: String,
        output: String,
    },
    /// One of the recipe's `commands` failed; the tail of the build log shows why.
    #[error(
        "command {index} of {total} failed ({status}): {command}\n{excerpt}\n  whole log: {}",
        log.display()
    )]
    CommandFailed {
        index: usize,
        total: usize,
        command: String,
        status: String,
        /// The log's lines that say what failed (`error:`, `***`, …), then its last lines.
        excerpt: String,
        /// Where the whole log is now (kept beside the output when the pipeline said where).
        log: PathBuf,
    },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Unsupported(String),
    #[error("the build jail could not run a step: {0}")]
    Jail(String),
    /// The jail stopped a step at one of the build's limits.
    #[error("{}\n  command: {command}", stopped_words(.stopped))]
    Stopped {
        command: String,
        stopped: crate::run::Stopped,
    },
}

fn stopped_words(stopped: &crate::run::Stopped) -> String {
    use crate::run::Stopped;
    match stopped {
        Stopped::Timeout { seconds } => format!(
            "the build ran past its time limit of {seconds} s and was stopped; if it needs longer, raise timeout_seconds in the recipe's [build]"
        ),
        Stopped::Bytes { limit } => format!(
            "the build wrote more than {limit} bytes into its build folder (the limit) and was stopped; if it needs more, raise it with --max-build-bytes"
        ),
        Stopped::Processes { limit } => format!(
            "the build kept {limit} processes running at once (the limit: a fork bomb?) and was stopped; if it needs more, raise it with --max-build-processes"
        ),
    }
}

/// Where a build happens and what it may depend on.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// An empty folder outside the source tree; the toolchain's scratch space.
    pub build_dir: PathBuf,
    /// SOURCE_DATE_EPOCH handed to the toolchain.
    pub epoch: u64,
    /// The jail toolchain steps run in (see `run::jail`); `None` where namespaces are not
    /// available, and the pipeline has said so.
    pub jail: Option<crate::run::JailSpec>,
    /// Where a commands build copies its log when a command fails: the build folder goes away.
    pub keep_log: Option<PathBuf>,
    /// The shared cache folder; `None`: caches live (cold) in the build folder.
    pub cache: Option<crate::cache::CacheDir>,
}

/// The shared cache folders a build of this spec writes (created here, so that the jail can
/// bind them): Go's build cache when builds may reuse it.
pub fn writable_caches(
    spec: &BuildSpec,
    cache: Option<&crate::cache::CacheDir>,
) -> Result<Vec<PathBuf>, BuildError> {
    let Some(cache) = cache else {
        return Ok(Vec::new());
    };
    let dirs: Vec<PathBuf> = match &spec.lang {
        LangSpec::Go(_) => cache.go_build(&trust_domain(spec)).into_iter().collect(),
        // The cargo home is written by `cargo fetch` alone (see `rust.rs`).
        LangSpec::Rust(_) | LangSpec::C(_) | LangSpec::Prebuilt => Vec::new(),
    };
    for dir in &dirs {
        std::fs::create_dir_all(dir).at("creating the cache folder", dir)?;
    }
    Ok(dirs)
}

/// Whose build caches a build may share: the builds of the same source (the same folder, or
/// the same pinned archive). Go's build cache is kept per trust domain because go trusts what
/// it finds in it: a recipe can only ever spoil its own cache, never another recipe's image.
pub(crate) fn trust_domain(spec: &BuildSpec) -> String {
    let identity = match &spec.archive {
        Some(archive) => format!("archive {}", archive.sha256.hex()),
        None => format!("folder {}", spec.source.display()),
    };
    crate::digest::Digest::of_bytes(identity.as_bytes()).hex()[..16].to_owned()
}

/// A build's progress, for a build that runs commands one by one.
#[derive(Debug)]
pub enum Step<'a> {
    Started {
        /// 1-based.
        index: usize,
        total: usize,
        command: &'a str,
    },
    Finished {
        index: usize,
        total: usize,
        elapsed: std::time::Duration,
    },
    /// A file-list build compiled these many files and took the others' objects from the cache.
    Compiled { compiled: usize, reused: usize },
    /// A cache entry did not match the digest recorded (or pinned) for it: not used, and
    /// rebuilt or downloaded again.
    CacheRejected { entry: PathBuf, reason: String },
    /// A command ended with processes of its own still running; the jail killed them.
    LeftRunning {
        index: usize,
        total: usize,
        killed: u32,
    },
}

/// What a toolchain produced.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The binary, inside the build folder.
    pub binary: PathBuf,
    /// One line naming the toolchain and its version, e.g. "gcc 12.2.0 + musl (/usr/lib/x86_64-linux-musl)".
    pub toolchain: String,
    /// The commands run, as shell-quoted lines, for the report.
    pub commands: Vec<String>,
    /// The environment those commands ran with (the hermetic one).
    pub environment: BTreeMap<String, String>,
    /// With `install = true`: the `$DESTDIR` tree that becomes the application layer (then
    /// `binary` is that folder too).
    pub installed: Option<PathBuf>,
    /// The packages compiled into the binary, as `(name, version)`, where the toolchain says
    /// (cargo's messages); `None` where it does not, and then the lock file is all we know.
    pub linked_packages: Option<Vec<(String, String)>>,
}

/// Builds with the toolchain the spec's language calls for.
pub fn build(spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
    build_reporting(spec, ctx, &mut |_| {})
}

/// [`build`], telling `report` each command as it starts and ends.
pub fn build_reporting(
    spec: &BuildSpec,
    ctx: &BuildContext,
    report: &mut dyn FnMut(Step),
) -> Result<Artifact, BuildError> {
    match &spec.lang {
        LangSpec::C(c) => match &c.commands {
            Some(cmds) => commands::build(spec, c, cmds, ctx, report),
            None => c::build(spec, c, ctx, report),
        },
        LangSpec::Go(go) => go::build(spec, go, ctx),
        LangSpec::Rust(rb) => rust::build(spec, rb, ctx, report),
        LangSpec::Prebuilt => prebuilt(spec, ctx),
    }
}

/// Tool → version line for everything whose version decides the output bytes of this spec.
/// Versions of Debian packages are read from dpkg's status file; compilers are asked.
pub fn toolchain_versions(spec: &BuildSpec) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let needs_cc = match &spec.lang {
        LangSpec::C(_) => true,
        LangSpec::Go(go) => go.cgo || spec.link == LinkMode::StaticPie,
        // gcc drives the link; the gnu target's crt and libc.a are libc6-dev's (the musl
        // target's are in the Rust toolchain, whose version says which).
        LangSpec::Rust(_) => true,
        LangSpec::Prebuilt => false,
    };
    let platform = &spec.platform;
    // A foreign platform keys every cache on itself (a native build's inputs stay as they were:
    // the host is implied by the toolchain's own version lines).
    if !platform.is_host() {
        v.insert("platform".to_owned(), platform.to_string());
    }
    if needs_cc {
        let gcc_name = platform.gcc();
        if let Some(gcc) = process::find_program(&gcc_name) {
            v.insert(gcc_name, process::version_line(&gcc));
        }
        let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
        let pkg = match spec.libc {
            LibcChoice::Musl if matches!(spec.lang, LangSpec::Rust(_)) => None,
            LibcChoice::Musl => Some("musl-dev"),
            LibcChoice::Glibc => Some("libc6-dev"),
            LibcChoice::None => None,
        };
        if let Some(pkg) = pkg {
            // Another architecture's libc is the multiarch package of that name.
            let pkg = if platform.is_host() {
                pkg.to_owned()
            } else {
                format!("{pkg}:{}", platform.debian_arch())
            };
            let version = crate::provenance::debian_package_version(&status, &pkg)
                .unwrap_or_else(|| "not from a Debian package".into());
            v.insert(pkg, version);
        }
        // musl builds see the kernel's headers (musl::kernel_headers).
        if spec.libc == LibcChoice::Musl {
            if let Some(version) =
                crate::provenance::debian_package_version(&status, "linux-libc-dev")
            {
                v.insert("linux-libc-dev".to_owned(), version);
            }
        }
    }
    // A build system's tools decide the output as much as the compiler does.
    if let LangSpec::C(crate::recipe::CBuild {
        commands: Some(crate::recipe::Commands {
            system: Some(s), ..
        }),
        ..
    }) = &spec.lang
    {
        for tool in systems::tools(s.system) {
            let version = process::find_program(tool)
                .map(|p| process::version_line(&p))
                .unwrap_or_else(|| "not installed".into());
            v.insert((*tool).to_owned(), version);
        }
    }
    if let LangSpec::Rust(_) = spec.lang {
        match rust::Toolchain::find(Path::new("/")).ok() {
            Some(tc) => v.extend(tc.versions()),
            None => {
                v.insert("rustc".to_owned(), "not installed".to_owned());
            }
        }
        v.insert(
            "rust target".to_owned(),
            crate::recipe::RustBuild::target(spec.libc, &spec.platform),
        );
    }
    if matches!(spec.lang, LangSpec::Go(_)) {
        if let Some(go) = process::find_program("go") {
            let out = std::process::Command::new(go)
                .arg("version")
                .env("GOTOOLCHAIN", "local")
                .stdin(std::process::Stdio::null())
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .unwrap_or_default();
            v.insert("go".to_owned(), out.trim().to_owned());
        }
    }
    v
}

/// gcc takes `__DATE__` and `__TIME__` from SOURCE_DATE_EPOCH, but `__TIMESTAMP__` from the
/// source file's mtime (a checkout's time): it is defined as the epoch instead.
pub(crate) fn timestamp_macro(epoch: u64) -> [String; 2] {
    [
        "-Wno-builtin-macro-redefined".to_owned(),
        format!("-D__TIMESTAMP__=\"{}\"", asctime_utc(epoch)),
    ]
}

/// `Thu Jan  1 00:00:00 1970`, as C's asctime writes it.
fn asctime_utc(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The commit time of the last commit touching `dir` (for `epoch = "git"`).
pub fn git_epoch(dir: &Path) -> Result<u64, BuildError> {
    let git = require("git", "epoch = \"git\" reads the last commit time", "git")?;
    let mut cmd = std::process::Command::new(git);
    cmd.args(["log", "-1", "--format=%ct", "--", "."])
        .current_dir(dir);
    let out = process::run(cmd)?;
    out.trim().parse().map_err(|_| {
        BuildError::Unsupported(format!(
            "epoch = \"git\": {} has no commit (git log printed {:?}); commit it or set epoch = <seconds>",
            dir.display(),
            out.trim()
        ))
    })
}

/// A binary built elsewhere: copied in, so that later stages see one kind of artifact.
fn prebuilt(spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
    let binary = ctx.build_dir.join("prebuilt");
    copy(&spec.source, &binary)?;
    Ok(Artifact {
        binary,
        toolchain: "prebuilt".into(),
        commands: vec![format!("cp {} <build>/prebuilt", spec.source.display())],
        environment: BTreeMap::new(),
        installed: None,
        linked_packages: None,
    })
}

/// Runs the one command of a toolchain that writes `binary`; the artifact records the command
/// and its environment.
fn run_one(
    cmd: std::process::Command,
    binary: PathBuf,
    toolchain: String,
    ctx: &BuildContext,
) -> Result<Artifact, BuildError> {
    let line = process::render(&cmd);
    let environment = process::environment(&cmd);
    process::run_step(cmd, ctx)?;
    Ok(Artifact {
        binary,
        toolchain,
        commands: vec![line],
        environment,
        installed: None,
        linked_packages: None,
    })
}

/// The C compiler for the platform: gcc, or the cross gcc for another CPU.
fn c_compiler(platform: &crate::recipe::Platform) -> Result<PathBuf, BuildError> {
    let why = if platform.is_host() {
        "lang = \"c\" compiles with gcc".to_owned()
    } else {
        format!("C for {platform} compiles with the cross gcc")
    };
    require(&platform.gcc(), &why, &platform.gcc_package())
}

/// The program on PATH, or the error that names the package to install.
fn require(program: &str, why: &str, package: &str) -> Result<PathBuf, BuildError> {
    process::find_program(program).ok_or_else(|| BuildError::ToolMissing {
        tool: program.into(),
        why: why.into(),
        install: format!("apt-get install {package}"),
    })
}

/// Where a toolchain puts the binary: `<build>/out/<file name of the recipe's output>`, its
/// folder created.
fn output_path(ctx: &BuildContext, output: &str) -> Result<PathBuf, BuildError> {
    let name = output
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("app");
    let dir = ctx.build_dir.join("out");
    std::fs::create_dir_all(&dir).at("creating", &dir)?;
    Ok(dir.join(name))
}

fn copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::copy(from, to).at("copying", from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn asctime_matches_c() {
        assert_eq!(super::asctime_utc(0), "Thu Jan  1 00:00:00 1970");
        // date -u -d @1700000000 +'%a %b %e %H:%M:%S %Y'
        assert_eq!(
            super::asctime_utc(1_700_000_000),
            "Tue Nov 14 22:13:20 2023"
        );
        assert_eq!(super::asctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
    }
}
