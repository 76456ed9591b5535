//! "Static is not enough": the files a program will look for at run time, read off the paths
//! compiled into it (Go's crypto/x509, time, os/user and net packages, musl's and glibc's
//! getpw*/tz code all carry them as literals) and checked against an image's files. A static
//! binary on scratch starts, then fails without a CA bundle, zoneinfo, a passwd entry for its
//! USER or a hosts file — or, with the image's `User` and `Env` ([`Process`]), without a
//! writable temp folder or a `$HOME`.

use std::path::Path;

use super::image::{dir_in_root, file_in_root as present};
use super::{Finding, Severity};

/// One kind of file a program reads at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    CaCertificates,
    Zoneinfo,
    Passwd,
    Hosts,
    NsswitchConf,
    Services,
    Protocols,
    /// A writable temp folder ($TMPDIR, else /tmp): Go's os.TempDir and its users
    /// (os.CreateTemp, mime/multipart, so net/http servers), mkstemp, tmpfile.
    TempDir,
    /// `$HOME`: Go's os.UserHomeDir, UserCacheDir, UserConfigDir; Rust's env::home_dir.
    Home,
}

/// What the program was written in, for the words of a finding: Go's packages read these files
/// themselves, anything else (C, Rust) through the C library, and each fails in its own way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    Go,
    Rust,
    /// C, or anything else that goes through the C library.
    #[default]
    C,
}

impl Language {
    /// The language verify found in the binary.
    pub fn of(facts: &super::ElfFacts) -> Self {
        if facts.is_go {
            Language::Go
        } else if facts.is_rust {
            Language::Rust
        } else {
            Language::C
        }
    }
}

/// Where Go's crypto/x509 (root_linux.go) and OpenSSL-style code look for the CA bundle.
const CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

impl Need {
    /// Evidence in the binary's bytes: any of these literals.
    fn markers(self) -> &'static [&'static [u8]] {
        match self {
            Need::CaCertificates => &[
                b"/etc/ssl/certs/ca-certificates.crt",
                b"/etc/pki/tls/certs/ca-bundle.crt",
                b"/etc/ssl/cert.pem",
            ],
            // Go: the function itself (every Go program with `time` has the folder's name);
            // C: musl's and glibc's tz code.
            Need::Zoneinfo => &[b"time.LoadLocation", b"/usr/share/zoneinfo/\0", b"TZDIR"],
            Need::Passwd => &[b"/etc/passwd"],
            Need::Hosts => &[b"/etc/hosts"],
            Need::NsswitchConf => &[b"/etc/nsswitch.conf"],
            Need::Services => &[b"/etc/services"],
            Need::Protocols => &[b"/etc/protocols"],
            // Go's function names (pclntab keeps those linked in); libc's entry points and
            // musl's tmpfile template; a C literal "/tmp"; Rust std's legacy-mangled name.
            Need::TempDir => &[
                b"os.TempDir",
                b"mkstemp",
                b"mkdtemp",
                b"/tmp/tmpfile_",
                b"tmpfile\0",
                b"/tmp\0",
                b"3env8temp_dir",
            ],
            Need::Home => &[
                b"os.UserHomeDir",
                b"os.UserCacheDir",
                b"os.UserConfigDir",
                b"3env8home_dir",
            ],
        }
    }

    /// The files of which one must be in the image (none: checked against the process).
    fn files(self) -> &'static [&'static str] {
        match self {
            Need::CaCertificates => CA_FILES,
            Need::Zoneinfo => &["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"],
            Need::Passwd => &["/etc/passwd"],
            Need::Hosts => &["/etc/hosts"],
            Need::NsswitchConf => &["/etc/nsswitch.conf"],
            Need::Services => &["/etc/services"],
            Need::Protocols => &["/etc/protocols"],
            Need::TempDir | Need::Home => &[],
        }
    }

    fn code(self) -> &'static str {
        match self {
            Need::CaCertificates => "missing-ca-certificates",
            Need::Zoneinfo => "missing-zoneinfo",
            Need::Passwd => "missing-passwd",
            Need::Hosts => "missing-hosts",
            Need::NsswitchConf => "missing-nsswitch-conf",
            Need::Services => "missing-services",
            Need::Protocols => "missing-protocols",
            Need::TempDir => "no-writable-tmp",
            Need::Home => "no-home",
        }
    }

    /// The finding for a need the image does not meet, in `lang`'s terms: a C or Rust program
    /// is not told about Go's functions, nor a Go program about the C library's.
    fn finding(self, lang: Language) -> Finding {
        let go = lang == Language::Go;
        let (what, why) = match self {
            Need::CaCertificates => (
                "no CA certificates in the image",
                match lang {
                    Language::Go => {
                        "the program verifies TLS certificates with the system's CA bundle: every HTTPS connection fails with `x509: certificate signed by unknown authority`"
                    }
                    Language::Rust => {
                        "the program verifies TLS certificates with the system's CA bundle: every HTTPS connection fails certificate verification (rustls-native-certs or OpenSSL find no root)"
                    }
                    Language::C => {
                        "the program verifies TLS certificates with the system's CA bundle: every HTTPS connection fails certificate verification (OpenSSL: `certificate verify failed`)"
                    }
                },
            ),
            Need::Zoneinfo => (
                "no zoneinfo in the image",
                if go {
                    "the program loads time zones by name: `time.LoadLocation(\"Europe/Paris\")` fails with `unknown time zone`"
                } else {
                    "the program's C library reads time zones from zoneinfo (TZ=Europe/Paris, localtime): without it, times are silently in UTC"
                },
            ),
            Need::Passwd => (
                "no /etc/passwd in the image",
                if go {
                    "the program looks users up (os/user): `user.Current()` fails with `user: unknown userid`, and $HOME cannot be derived"
                } else {
                    "the program looks users up (getpwuid, getpwnam): they find no entry, so the user has no name and $HOME cannot be derived"
                },
            ),
            Need::Hosts => (
                "no /etc/hosts in the image",
                "the program resolves names: `localhost` then goes to DNS, which in a sandbox or an offline pod fails",
            ),
            Need::NsswitchConf => (
                "no /etc/nsswitch.conf in the image",
                if go {
                    "without it Go's resolver asks DNS before /etc/hosts (glibc's default order), so names in /etc/hosts are slow or fail"
                } else {
                    "without it glibc's resolver takes its built-in order, DNS before /etc/hosts, so names in /etc/hosts are slow or fail"
                },
            ),
            Need::Services => (
                "no /etc/services in the image",
                if go {
                    "the program looks ports up by name (net.LookupPort; gRPC's \"https\" port): named ports fail"
                } else {
                    "the program looks ports up by name (getservbyname, getaddrinfo with a service name): named ports fail"
                },
            ),
            Need::Protocols => (
                "no /etc/protocols in the image",
                if go {
                    "the program looks protocols up by name (Go's IP-protocol names, e.g. net.ListenIP(\"ip4:icmp\")): they fail"
                } else {
                    "the program looks protocols up by name (getprotobyname): they fail"
                },
            ),
            // Said by temp_dir_finding and home_finding, which know the folder and the user.
            Need::TempDir | Need::Home => ("", ""),
        };
        Finding {
            code: self.code(),
            severity: Severity::Warning,
            what: what.into(),
            why: why.into(),
            fix: format!(
                "base = \"static\" (it carries {}), or add it with [[image.files]]",
                self.files()[0]
            ),
        }
    }

    const ALL: [Need; 9] = [
        Need::CaCertificates,
        Need::Zoneinfo,
        Need::Passwd,
        Need::Hosts,
        Need::NsswitchConf,
        Need::Services,
        Need::Protocols,
        Need::TempDir,
        Need::Home,
    ];
}

/// What the program in `bytes` will look for at run time.
pub fn runtime_needs(bytes: &[u8]) -> Vec<Need> {
    runtime_needs_by(&|m| memchr::memmem::find(bytes, m).is_some())
}

/// What the program will look for at run time, `contains` telling whether a literal is in it
/// (a windowed scan of a map for big binaries).
pub fn runtime_needs_by(contains: &dyn Fn(&[u8]) -> bool) -> Vec<Need> {
    // Go's embedded tz database (time/tzdata, -tags timetzdata) answers LoadLocation itself.
    let embedded_tz = contains(b"time/tzdata");
    let mut needs: Vec<Need> = Need::ALL
        .into_iter()
        .filter(|n| !(embedded_tz && *n == Need::Zoneinfo))
        .filter(|n| n.markers().iter().any(|m| contains(m)))
        .collect();
    // Both resolvers read nsswitch.conf only to order hosts lookups: a need only with hosts.
    if !needs.contains(&Need::Hosts) {
        needs.retain(|n| *n != Need::NsswitchConf);
    }
    needs
}

/// The needs the image unpacked at `root` does not meet, and a `user` (the config's `User`)
/// without a passwd entry where the program looks users up; worded for a program in `lang`.
pub fn unmet(root: &Path, needs: &[Need], user: Option<&str>, lang: Language) -> Vec<Finding> {
    let mut findings = Vec::new();
    for need in needs {
        // Folders and variables: see [`unmet_for`], which knows the process.
        if need.files().is_empty() {
            continue;
        }
        if need.files().iter().any(|f| present(root, f).is_some()) {
            if *need == Need::Passwd {
                if let Some(f) = user.and_then(|u| user_without_entry(root, u, lang)) {
                    findings.push(f);
                }
            }
            continue;
        }
        findings.push(need.finding(lang));
    }
    findings
}

/// The process a runtime starts from the image config: its `User` and `Env`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Process<'a> {
    pub user: Option<&'a str>,
    pub env: &'a [String],
    /// What the program is written in: the findings are worded for it.
    pub lang: Language,
}

impl Process<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        // The last assignment wins, as in a runtime's environment.
        self.env.iter().rev().find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }

    /// The user's name or uid, `None` for root (no `User`, `root`, `0`).
    fn non_root(&self) -> Option<&str> {
        let name = self.user?.split(':').next().unwrap_or_default();
        (!name.is_empty() && name != "root" && name != "0").then_some(name)
    }
}

/// [`unmet`], and the needs only the process decides: a temp folder its user can write, a
/// `$HOME`.
pub fn unmet_for(root: &Path, needs: &[Need], process: &Process<'_>) -> Vec<Finding> {
    let mut findings = unmet(root, needs, process.user, process.lang);
    if needs.contains(&Need::TempDir) {
        findings.extend(temp_dir_finding(root, process));
    }
    if needs.contains(&Need::Home) {
        findings.extend(home_finding(root, process));
    }
    findings
}

/// No `$TMPDIR` (else `/tmp`) folder in the image, or one a non-root user cannot write.
fn temp_dir_finding(root: &Path, process: &Process<'_>) -> Option<Finding> {
    use std::os::unix::fs::MetadataExt;
    let dir = process
        .var("TMPDIR")
        .filter(|d| !d.is_empty())
        .unwrap_or("/tmp");
    let why = match process.lang {
        Language::Go => {
            "the program makes temporary files (os.TempDir, os.CreateTemp, multipart form uploads in net/http)"
        }
        Language::Rust => {
            "the program makes temporary files (std::env::temp_dir, the tempfile crate)"
        }
        Language::C => "the program makes temporary files (mkstemp, tmpfile)",
    };
    let fix =
        "base = \"static\" (it has /tmp, mode 1777), or add the folder with mode 1777 to the image";
    let Some(host) = dir_in_root(root, dir) else {
        return Some(Finding {
            code: Need::TempDir.code(),
            severity: Severity::Warning,
            what: format!("no {dir} folder in the image"),
            why: format!("{why}: they fail with `no such file or directory`"),
            fix: fix.into(),
        });
    };
    let user = process.non_root()?;
    let md = std::fs::metadata(&host).ok()?;
    let mode = md.mode() & 0o7777;
    // Owners are the image's when unpacked as root (as CI and the run proof do).
    let owner = passwd_entry(root, user)
        .and_then(|fields| fields.get(2).and_then(|u| u.parse::<u32>().ok()))
        .or_else(|| user.parse().ok());
    let writable = mode & 0o002 != 0 || (owner == Some(md.uid()) && mode & 0o200 != 0);
    (!writable).then(|| Finding {
        code: Need::TempDir.code(),
        severity: Severity::Warning,
        what: format!(
            "{dir} is not writable by USER {user} (mode {mode:04o}, owner {})",
            md.uid()
        ),
        why: format!("{why}: they fail with `permission denied`"),
        fix: fix.into(),
    })
}

/// `HOME` not in the config's `Env` and no passwd entry to take it from.
fn home_finding(root: &Path, process: &Process<'_>) -> Option<Finding> {
    if process.var("HOME").is_some_and(|h| !h.is_empty()) {
        return None;
    }
    let name = process.non_root().unwrap_or("root");
    if passwd_entry(root, name).is_some() || (name == "root" && passwd_entry(root, "0").is_some()) {
        return None;
    }
    Some(Finding {
        code: Need::Home.code(),
        severity: Severity::Warning,
        what: format!("no $HOME: HOME is not in the image's Env and /etc/passwd has no entry for {name}"),
        why: match process.lang {
            Language::Go => "the program asks for its home folder (os.UserHomeDir, UserCacheDir, UserConfigDir): docker and containerd then set HOME=/ (not writable by a non-root user), a bare runc spec leaves it unset and Go fails with `$HOME is not defined`",
            Language::Rust | Language::C => "the program asks for its home folder (std::env::home_dir, $HOME): docker and containerd then set HOME=/ (not writable by a non-root user), a bare runc spec leaves it unset and the passwd lookup it falls back to finds nothing",
        }
        .into(),
        fix: "set HOME in [image] env (e.g. \"HOME=/home/nonroot\"), or base = \"static\" with user = \"nonroot\" (home /home/nonroot)".into(),
    })
}

/// The image's /etc/passwd, when it has a readable one.
fn passwd_text(root: &Path) -> Option<String> {
    let passwd = present(root, "/etc/passwd")?;
    // Bounded: a real passwd file is a few KiB.
    let text = std::fs::read(&passwd)
        .ok()
        .filter(|t| t.len() < (16 << 20))?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The fields of `user`'s line in the image's /etc/passwd (by name, or by uid when numeric).
fn passwd_entry(root: &Path, user: &str) -> Option<Vec<String>> {
    entry_in(&passwd_text(root)?, user)
}

fn entry_in(text: &str, user: &str) -> Option<Vec<String>> {
    let by_uid = user.bytes().all(|b| b.is_ascii_digit());
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let hit = match (by_uid, fields.as_slice()) {
            (true, [_, _, uid, ..]) => *uid == user,
            (false, [n, ..]) => *n == user,
            _ => false,
        };
        hit.then(|| fields.iter().map(|f| (*f).to_owned()).collect())
    })
}

/// `USER 65532` with no line for uid 65532 (or `USER app` with no user `app`) in /etc/passwd.
fn user_without_entry(root: &Path, user: &str, lang: Language) -> Option<Finding> {
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    let found = entry_in(&passwd_text(root)?, name).is_some();
    (!found).then(|| Finding {
        code: "user-without-passwd-entry",
        severity: Severity::Warning,
        what: format!("USER {user} has no entry in /etc/passwd"),
        why: if lang == Language::Go {
            "the program looks users up: `user.Current()` fails with `user: unknown userid`, and there is no $HOME"
        } else {
            "the program looks users up: getpwuid finds no entry for it, and there is no $HOME"
        }
        .into(),
        fix: format!("add a line for {name} to /etc/passwd (the static base has nonroot, uid 65532), or run as a user it lists"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_worded_for_the_language_that_was_built() {
        let root = tempfile::tempdir().unwrap();
        // musl's or glibc's tz, passwd and resolver code, with no Go function in sight.
        let needs = runtime_needs(
            b"/usr/share/zoneinfo/\0/etc/passwd\0/etc/hosts\0/etc/nsswitch.conf\0/etc/services\0mkstemp",
        );
        let env: [String; 0] = [];
        let words = |lang: Language| -> String {
            let process = Process {
                user: Some("65532"),
                env: &env,
                lang,
            };
            unmet_for(root.path(), &needs, &process)
                .iter()
                .map(|f| format!("{}: {}\n", f.what, f.why))
                .collect()
        };
        for lang in [Language::C, Language::Rust] {
            let text = words(lang);
            for go in [
                "LoadLocation",
                "Go's",
                "user.Current",
                "os.TempDir",
                "net.Lookup",
            ] {
                assert!(!text.contains(go), "{lang:?} told about {go}:\n{text}");
            }
            assert!(text.contains("no zoneinfo in the image"), "{text}");
            assert!(text.contains("glibc's resolver"), "{text}");
        }
        let go = words(Language::Go);
        assert!(go.contains("time.LoadLocation"), "{go}");
        assert!(go.contains("Go's resolver"), "{go}");
    }

    #[test]
    fn needs_are_read_off_the_paths_compiled_in() {
        let bin = b"\x7fELF...time.LoadLocation\0/etc/ssl/certs/ca-certificates.crt\0/etc/hosts\0/etc/nsswitch.conf\0/etc/passwd\0";
        assert_eq!(
            runtime_needs(bin),
            [
                Need::CaCertificates,
                Need::Zoneinfo,
                Need::Passwd,
                Need::Hosts,
                Need::NsswitchConf
            ]
        );
        // Embedded tzdata needs no zoneinfo; nsswitch.conf alone (no hosts) is no need.
        assert_eq!(
            runtime_needs(b"time.LoadLocation time/tzdata /etc/nsswitch.conf"),
            []
        );
        assert_eq!(runtime_needs(b"nothing here"), []);
    }

    #[test]
    fn unmet_needs_and_a_user_without_an_entry() {
        let root = tempfile::tempdir().unwrap();
        let all = runtime_needs(b"time.LoadLocation /etc/ssl/cert.pem /etc/passwd /etc/hosts");
        let codes = |f: Vec<Finding>| f.iter().map(|f| f.code).collect::<Vec<_>>();
        assert_eq!(
            codes(unmet(root.path(), &all, Some("65532"), Language::Go)),
            [
                "missing-ca-certificates",
                "missing-zoneinfo",
                "missing-passwd",
                "missing-hosts"
            ]
        );
        std::fs::create_dir_all(root.path().join("etc/ssl/certs")).unwrap();
        std::fs::write(root.path().join("etc/ssl/certs/ca-certificates.crt"), "x").unwrap();
        std::fs::write(root.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::create_dir_all(root.path().join("usr/share/zoneinfo")).unwrap();
        std::fs::write(root.path().join("usr/share/zoneinfo/UTC"), "TZif").unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(
            codes(unmet(root.path(), &all, Some("65532:65532"), Language::Go)),
            ["user-without-passwd-entry"]
        );
        assert_eq!(
            codes(unmet(root.path(), &all, Some("root"), Language::Go)),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(unmet(root.path(), &all, Some("0"), Language::Go)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_temp_folder_the_user_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let needs = runtime_needs(b"os.TempDir");
        assert_eq!(needs, [Need::TempDir]);
        let env = ["PATH=/bin".to_owned()];
        let nonroot = Process {
            user: Some("65532:65532"),
            env: &env,
            lang: Language::Go,
        };
        let found = |p: &Process<'_>| {
            unmet_for(r, &needs, p)
                .into_iter()
                .map(|f| f.what)
                .collect::<Vec<_>>()
        };
        assert_eq!(found(&nonroot), ["no /tmp folder in the image"]);
        // Root, as without USER, writes whatever the mode.
        std::fs::create_dir(r.join("tmp")).unwrap();
        std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(found(&Process::default()), Vec::<String>::new());
        let owner = std::fs::metadata(r.join("tmp")).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        assert_eq!(
            found(&nonroot),
            [format!(
                "/tmp is not writable by USER 65532 (mode 0755, owner {})",
                owner.unwrap()
            )]
        );
        std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(found(&nonroot), Vec::<String>::new());
        // $TMPDIR names the folder instead, as Go's os.TempDir reads it.
        let env = ["TMPDIR=/var/tmp".to_owned()];
        let elsewhere = Process {
            user: Some("65532"),
            env: &env,
            lang: Language::Go,
        };
        assert_eq!(found(&elsewhere), ["no /var/tmp folder in the image"]);
    }

    #[test]
    fn a_home_from_env_or_passwd() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let needs = runtime_needs(b"os.UserHomeDir");
        assert_eq!(needs, [Need::Home]);
        let codes = |p: &Process<'_>| {
            unmet_for(r, &needs, p)
                .iter()
                .map(|f| f.code)
                .collect::<Vec<_>>()
        };
        let none: [String; 0] = [];
        let nonroot = Process {
            user: Some("65532"),
            env: &none,
            lang: Language::Go,
        };
        assert_eq!(codes(&nonroot), ["no-home"]);
        assert_eq!(codes(&Process::default()), ["no-home"]);
        let env = ["HOME=/data".to_owned()];
        let with_home = Process {
            user: Some("65532"),
            env: &env,
            lang: Language::Go,
        };
        assert_eq!(codes(&with_home), Vec::<&str>::new());
        std::fs::create_dir(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(codes(&nonroot), Vec::<&str>::new());
        assert_eq!(codes(&Process::default()), Vec::<&str>::new());
        let stranger = Process {
            user: Some("1000:1000"),
            env: &none,
            lang: Language::Go,
        };
        let findings = unmet_for(r, &needs, &stranger);
        assert_eq!(
            findings[0].what,
            "no $HOME: HOME is not in the image's Env and /etc/passwd has no entry for 1000"
        );
    }
}
