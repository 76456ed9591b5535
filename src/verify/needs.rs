//! "Static is not enough": the files a program will look for at run time, read off the paths
//! compiled into it (Go's crypto/x509, time, os/user and net packages, musl's and glibc's
//! getpw*/tz code all carry them as literals) and checked against an image's files. A static
//! binary on scratch starts, then fails without a CA bundle, zoneinfo, a passwd entry for its
//! USER or a hosts file.

use std::path::Path;

use super::image::file_in_root as present;
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
        }
    }

    /// The files of which one must be in the image.
    fn files(self) -> &'static [&'static str] {
        match self {
            Need::CaCertificates => CA_FILES,
            Need::Zoneinfo => &["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"],
            Need::Passwd => &["/etc/passwd"],
            Need::Hosts => &["/etc/hosts"],
            Need::NsswitchConf => &["/etc/nsswitch.conf"],
            Need::Services => &["/etc/services"],
            Need::Protocols => &["/etc/protocols"],
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
        }
    }

    fn finding(self) -> Finding {
        let (what, why) = match self {
            Need::CaCertificates => (
                "no CA certificates in the image",
                "the program verifies TLS certificates with the system's CA bundle: every HTTPS connection fails with `x509: certificate signed by unknown authority` (or its library's words)",
            ),
            Need::Zoneinfo => (
                "no zoneinfo in the image",
                "the program loads time zones by name: `time.LoadLocation(\"Europe/Paris\")` fails with `unknown time zone`, and C's localtime silently uses UTC",
            ),
            Need::Passwd => (
                "no /etc/passwd in the image",
                "the program looks users up (os/user, getpwuid): `user.Current()` fails with `user: unknown userid`, and $HOME cannot be derived",
            ),
            Need::Hosts => (
                "no /etc/hosts in the image",
                "the program resolves names: `localhost` then goes to DNS, which in a sandbox or an offline pod fails",
            ),
            Need::NsswitchConf => (
                "no /etc/nsswitch.conf in the image",
                "without it Go's resolver asks DNS before /etc/hosts (glibc's default order), so names in /etc/hosts are slow or fail",
            ),
            Need::Services => (
                "no /etc/services in the image",
                "the program looks ports up by name (net.LookupPort, getservbyname; gRPC's \"https\" port): named ports fail",
            ),
            Need::Protocols => (
                "no /etc/protocols in the image",
                "the program looks protocols up by name (getprotobyname, Go's IP-protocol names): they fail",
            ),
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

    const ALL: [Need; 7] = [
        Need::CaCertificates,
        Need::Zoneinfo,
        Need::Passwd,
        Need::Hosts,
        Need::NsswitchConf,
        Need::Services,
        Need::Protocols,
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
/// without a passwd entry where the program looks users up.
pub fn unmet(root: &Path, needs: &[Need], user: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for need in needs {
        if need.files().iter().any(|f| present(root, f).is_some()) {
            if *need == Need::Passwd {
                if let Some(f) = user.and_then(|u| user_without_entry(root, u)) {
                    findings.push(f);
                }
            }
            continue;
        }
        findings.push(need.finding());
    }
    findings
}

/// `USER 65532` with no line for uid 65532 (or `USER app` with no user `app`) in /etc/passwd.
fn user_without_entry(root: &Path, user: &str) -> Option<Finding> {
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    let passwd = present(root, "/etc/passwd")?;
    // Bounded: a real passwd file is a few KiB.
    let text = std::fs::read(&passwd)
        .ok()
        .filter(|t| t.len() < (16 << 20))?;
    let text = String::from_utf8_lossy(&text);
    let by_uid = name.bytes().all(|b| b.is_ascii_digit());
    let found = text.lines().any(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match (by_uid, fields.as_slice()) {
            (true, [_, _, uid, ..]) => *uid == name,
            (false, [n, ..]) => *n == name,
            _ => false,
        }
    });
    (!found).then(|| Finding {
        code: "user-without-passwd-entry",
        severity: Severity::Warning,
        what: format!("USER {user} has no entry in /etc/passwd"),
        why: "the program looks users up: `user.Current()` fails with `user: unknown userid`, and there is no $HOME".into(),
        fix: format!("add a line for {name} to /etc/passwd (the static base has nonroot, uid 65532), or run as a user it lists"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            codes(unmet(root.path(), &all, Some("65532"))),
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
            codes(unmet(root.path(), &all, Some("65532:65532"))),
            ["user-without-passwd-entry"]
        );
        assert_eq!(
            codes(unmet(root.path(), &all, Some("root"))),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(unmet(root.path(), &all, Some("0"))),
            Vec::<&str>::new()
        );
    }
}
