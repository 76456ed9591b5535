//! Real processes, real namespaces, real runc: no mocks. Tools that are missing make the test
//! fail with the install command.

use super::*;
use crate::digest::Digest;
use crate::image::layout::LocalBlob;
use crate::test_support::cc::compile_c;
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Instant;
use tar::EntryType;

// ----------------------------------------------------------------------------- helpers

/// How long a proof run of the probe may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One tar entry, written with raw header bytes so hostile paths can be expressed.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Raw(EntryType, &'a str, Option<&'a str>, u32),
}

fn layer_bytes(entries: &[E]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let (kind, path, link, mode, data): (EntryType, &str, Option<&str>, u32, &[u8]) = match *e {
            E::File(p, d, m) => (EntryType::Regular, p, None, m, d),
            E::Dir(p, m) => (EntryType::Directory, p, None, m, b""),
            E::Symlink(p, t) => (EntryType::Symlink, p, Some(t), 0o777, b""),
            E::Hardlink(p, t) => (EntryType::Link, p, Some(t), 0o644, b""),
            E::Raw(k, p, l, m) => (k, p, l, m, b""),
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

fn config(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> ImageConfiguration {
    ImageConfigurationBuilder::default()
        .config(f(ConfigBuilder::default()).build().unwrap())
        .build()
        .unwrap()
}

/// A LoadedImage (as the image module would return it) over layer blobs in `dir`.
fn image(dir: &Path, layers: &[Vec<u8>], config: ImageConfiguration) -> LoadedImage {
    let layers = layers
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.join(format!("layer{i}.tar.gz"));
            fs::write(&path, bytes).unwrap();
            LocalBlob {
                digest: Digest::of_bytes(bytes),
                size: bytes.len() as u64,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                path,
            }
        })
        .collect();
    LoadedImage {
        dir: dir.to_path_buf(),
        tag: None,
        manifest_digest: Digest::of_bytes(b"test"),
        manifest: oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .config(
                oci_spec::image::DescriptorBuilder::default()
                    .media_type(oci_spec::image::MediaType::ImageConfig)
                    .digest(
                        Digest::of_bytes(b"config")
                            .to_string()
                            .parse::<oci_spec::image::Digest>()
                            .unwrap(),
                    )
                    .size(0u64)
                    .build()
                    .unwrap(),
            )
            .layers(vec![])
            .build()
            .unwrap(),
        config,
        layers,
        index_annotations: Default::default(),
    }
}

fn unpack_layers(layers: &[Vec<u8>]) -> (tempfile::TempDir, PathBuf, Result<usize, RunError>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let img = image(tmp.path(), layers, config(|c| c));
    let res = unpack(&img, &root, &UnpackLimits::default());
    (tmp, root, res)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Prints what the process sees of itself and of its root; exits 3.
const PROBE_C: &str = r#"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    printf("ok\nuid=%d gid=%d pid=%d\n", (int)getuid(), (int)getgid(), (int)getpid());
    printf("etc_hostname=%s\n", access("/etc/hostname", F_OK) == 0 ? "present" : "absent");
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    char cwd[256] = {0};
    getcwd(cwd, sizeof cwd - 1);
    printf("hostname=%s cwd=%s\n", host, cwd);
    printf("root=");
    DIR *d = opendir("/");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s,", e->d_name);
    }
    printf("\nargs=");
    for (int i = 1; i < argc; i++) printf("%s,", argv[i]);
    printf("\nGREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "");
    printf("devnull=%s proc=%s\n",
           open("/dev/null", O_WRONLY) >= 0 ? "yes" : "no",
           access("/proc/self/status", F_OK) == 0 ? "yes" : "no");
    fprintf(stderr, "to stderr\n");
    return 3;
}
"#;

const SLEEPER_C: &str = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n";

struct Binaries {
    _dir: tempfile::TempDir,
    probe_static: Vec<u8>,
    probe_dynamic: Vec<u8>,
    sleeper_static: Vec<u8>,
}

fn binaries() -> Binaries {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    compile_c("musl-gcc", &["-static", "-O2"], PROBE_C, &p("probe-static"));
    compile_c("gcc", &["-O2"], PROBE_C, &p("probe-dynamic"));
    compile_c("musl-gcc", &["-static", "-O2"], SLEEPER_C, &p("sleeper"));
    Binaries {
        probe_static: fs::read(p("probe-static")).unwrap(),
        probe_dynamic: fs::read(p("probe-dynamic")).unwrap(),
        sleeper_static: fs::read(p("sleeper")).unwrap(),
        _dir: dir,
    }
}

/// Runs an image of one layer holding exactly `entries` with `cfg`.
fn run_entries(
    entries: &[E],
    cfg: ImageConfiguration,
    args: Option<&[String]>,
    runtime: Runtime,
    timeout: Duration,
) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), &[layer_bytes(entries)], cfg);
    run_image(&img, args, &RunOptions::new(runtime, timeout))
        .unwrap_or_else(|e| panic!("run_image: {e}"))
}

/// Runs an image holding only `file`, its config nothing but the entrypoint `entrypoint`.
fn run_alone(entrypoint: &str, file: E, runtime: Runtime) -> Outcome {
    run_alone_for(entrypoint, file, runtime, TIMEOUT)
}

fn run_alone_for(entrypoint: &str, file: E, runtime: Runtime, timeout: Duration) -> Outcome {
    let cfg = config(|c| c.entrypoint(s(&[entrypoint])));
    run_entries(&[file], cfg, None, runtime, timeout)
}

/// Runs the probe (in `entries`) with `cfg`; it must have started and exited 3. Returns the
/// outcome and its stdout.
fn run_probe(
    entries: &[E],
    cfg: ImageConfiguration,
    args: Option<&[String]>,
    runtime: Runtime,
) -> (Outcome, String) {
    let out = run_entries(entries, cfg, args, runtime, TIMEOUT);
    let stdout = text(&out.stdout);
    assert_eq!(
        (out.exit_code, out.exec_error.as_deref()),
        (Some(3), None),
        "{stdout} {}",
        text(&out.stderr)
    );
    (out, stdout)
}

/// Runs the sleeper with `timeout`: the run must be killed (SIGKILL) within `bound`.
fn sleeper_is_killed(runtime: Runtime, timeout: Duration, bound: Duration) -> Outcome {
    let bins = binaries();
    let started = Instant::now();
    let file = E::File("sleep", &bins.sleeper_static, 0o755);
    let out = run_alone_for("/sleep", file, runtime, timeout);
    let took = started.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.signal, Some(9));
    assert!(took < bound, "took {took:?}");
    out
}

/// The two start failures under `runtime`, each as the outcome and its exec_error: the dynamic
/// probe without its interpreter (at /hello), and an entrypoint (/nope) the image lacks.
fn exec_failures(bins: &Binaries, runtime: Runtime) -> [(Outcome, String); 2] {
    let failure = |entrypoint: &str, bytes: &[u8]| {
        let out = run_alone(entrypoint, E::File("hello", bytes, 0o755), runtime);
        let err = out
            .exec_error
            .clone()
            .unwrap_or_else(|| panic!("no exec_error: {out:?}"));
        (out, err)
    };
    [
        failure("/hello", &bins.probe_dynamic),
        failure("/nope", &bins.probe_static),
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn line_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {out:?}"))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

// ----------------------------------------------------------------------------- unpack

#[test]
fn unpack_refuses_dotdot_entries() {
    for path in ["../evil", "a/../../evil", "./.."] {
        let (_t, root, res) = unpack_layers(&[layer_bytes(&[E::File(path, b"x", 0o644)])]);
        match res {
            Err(RunError::UnsafeEntry { entry, reason, .. }) => {
                assert_eq!(entry, path);
                assert!(reason.contains(".."), "{reason}");
            }
            other => panic!("{path}: expected UnsafeEntry, got {other:?}"),
        }
        assert!(!root.parent().unwrap().join("evil").exists());
    }
}

#[test]
fn unpack_refuses_absolute_paths() {
    let (_t, _root, res) =
        unpack_layers(&[layer_bytes(&[E::File("/tmp/staticpack-evil", b"x", 0o644)])]);
    assert!(
        matches!(&res, Err(RunError::UnsafeEntry { reason, .. }) if reason.contains("absolute")),
        "{res:?}"
    );
    assert!(!Path::new("/tmp/staticpack-evil").exists());
    // A hard link may not point out either.
    let (_t, _root, res) = unpack_layers(&[layer_bytes(&[E::Hardlink("h", "/etc/passwd")])]);
    assert!(matches!(res, Err(RunError::UnsafeEntry { .. })), "{res:?}");
    let (_t, _root, res) = unpack_layers(&[layer_bytes(&[E::Hardlink("h", "../../etc/passwd")])]);
    assert!(matches!(res, Err(RunError::UnsafeEntry { .. })), "{res:?}");
}

#[test]
fn unpack_keeps_symlinked_parents_inside_the_root() {
    let (tmp, root, res) = unpack_layers(&[layer_bytes(&[
        E::Symlink("a", "/"),
        E::File("a/etc/x", b"via a", 0o644),
        E::Symlink("b", "../../../../../../tmp"),
        E::File("b/y", b"via b", 0o644),
        E::Symlink("c", "/etc/passwd"),
        // A hard link to the symlink itself, not to the host's /etc/passwd.
        E::Hardlink("d", "c"),
        // A hard link whose target path crosses `a -> /`: resolved inside the root.
        E::Hardlink("e", "a/etc/x"),
    ])]);
    assert_eq!(res.unwrap(), 3, "etc/x, tmp/y and its hard link e");
    assert_eq!(fs::read(root.join("etc/x")).unwrap(), b"via a");
    assert_eq!(fs::read(root.join("tmp/y")).unwrap(), b"via b");
    assert!(
        fs::symlink_metadata(root.join("d"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(root.join("e")).unwrap(), b"via a");
    assert_eq!(
        names_in(tmp.path()),
        ["layer0.tar.gz", "root"],
        "nothing beside the root"
    );
    assert!(!Path::new("/tmp/y").exists() || fs::read("/tmp/y").unwrap() != b"via b");
}

#[test]
fn unpack_replaces_instead_of_writing_through() {
    let host_target = tempfile::NamedTempFile::new().unwrap();
    fs::write(host_target.path(), b"host").unwrap();
    let host = host_target.path().to_str().unwrap();
    let (_t, root, res) = unpack_layers(&[
        layer_bytes(&[
            E::Symlink("s", host),
            E::File("a", b"one", 0o644),
            E::Hardlink("b", "a"),
        ]),
        layer_bytes(&[E::File("s", b"image", 0o644), E::File("b", b"two", 0o644)]),
    ]);
    res.unwrap();
    assert_eq!(fs::read(host_target.path()).unwrap(), b"host");
    assert_eq!(fs::read(root.join("s")).unwrap(), b"image");
    assert_eq!(
        fs::read(root.join("a")).unwrap(),
        b"one",
        "the hard link was not written through"
    );
    assert_eq!(fs::read(root.join("b")).unwrap(), b"two");
}

#[test]
fn unpack_applies_whiteouts_and_opaque_dirs() {
    let (_t, root, res) = unpack_layers(&[
        layer_bytes(&[
            E::Dir("d/", 0o755),
            E::File("d/a", b"a", 0o644),
            E::Dir("d/sub/", 0o755),
            E::File("d/sub/deep", b"deep", 0o644),
            E::Dir("e/", 0o755),
            E::File("e/x", b"x", 0o644),
            E::File("e/keep", b"keep", 0o644),
            E::File("f", b"f", 0o644),
        ]),
        layer_bytes(&[
            // Written before the opaque marker in the same layer: must survive it.
            E::File("d/new", b"new", 0o644),
            E::Dir("d/sub/", 0o700),
            E::File("d/.wh..wh..opq", b"", 0o644),
            E::File(".wh.f", b"", 0o644),
            E::File("e/.wh.x", b"", 0o644),
            E::File("gone/.wh.nothing", b"", 0o644),
        ]),
    ]);
    assert_eq!(res.unwrap(), 2, "d/new and e/keep");
    assert_eq!(names_in(&root), ["d", "e"]);
    assert_eq!(names_in(&root.join("d")), ["new", "sub"]);
    assert!(
        names_in(&root.join("d/sub")).is_empty(),
        "lower content of d/sub is hidden"
    );
    assert_eq!(
        fs::metadata(root.join("d/sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    assert_eq!(names_in(&root.join("e")), ["keep"]);

    let (_t, _root, res) = unpack_layers(&[layer_bytes(&[E::File("x/.wh...", b"", 0o644)])]);
    assert!(matches!(res, Err(RunError::UnsafeEntry { .. })), "{res:?}");
}

#[test]
fn unpack_applies_modes_and_skips_devices() {
    let (_t, root, res) = unpack_layers(&[layer_bytes(&[
        E::Dir("ro/", 0o555),
        E::File("ro/inside", b"i", 0o4755),
        E::File("secret", b"s", 0o600),
        E::Raw(EntryType::Char, "null", None, 0o666),
        E::Raw(EntryType::Block, "sda", None, 0o660),
        E::Raw(EntryType::Fifo, "fifo", None, 0o640),
    ])]);
    assert_eq!(res.unwrap(), 2);
    let mode = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("ro"), 0o555);
    assert_eq!(mode("ro/inside"), 0o4755);
    assert_eq!(mode("secret"), 0o600);
    assert_eq!(mode("fifo"), 0o640);
    assert!(!root.join("null").exists() && !root.join("sda").exists());
}

// ----------------------------------------------------------------------------- process spec

#[test]
fn process_from_config_follows_docker() {
    let full = config(|c| {
        c.entrypoint(s(&["/app", "--flag"]))
            .cmd(s(&["default"]))
            .env(s(&["A=1"]))
    });
    let p = process_from_config(&full, None).unwrap();
    assert_eq!(p.argv, ["/app", "--flag", "default"]);
    assert_eq!(p.env, ["A=1", &format!("PATH={DEFAULT_PATH}")]);
    assert_eq!((p.cwd.as_str(), p.uid, p.gid), ("/", 0, 0));

    let args = s(&["x", "y"]);
    assert_eq!(
        process_from_config(&full, Some(&args)).unwrap().argv,
        ["/app", "--flag", "x", "y"]
    );
    assert_eq!(
        process_from_config(&full, Some(&[])).unwrap().argv,
        ["/app", "--flag"]
    );

    let cmd_only = config(|c| c.cmd(s(&["/bin/sh", "-c", "true"])).env(s(&["PATH=/bin"])));
    let p = process_from_config(&cmd_only, None).unwrap();
    assert_eq!(p.argv, ["/bin/sh", "-c", "true"]);
    assert_eq!(
        p.env,
        ["PATH=/bin"],
        "an explicit PATH is kept and not duplicated"
    );
    assert_eq!(
        process_from_config(&cmd_only, Some(&args)).unwrap().argv,
        ["x", "y"]
    );

    let nothing = config(|c| c);
    assert!(matches!(
        process_from_config(&nothing, None),
        Err(RunError::Config(_))
    ));
    assert!(matches!(
        process_from_config(&full_with(|c| c.entrypoint(Vec::<String>::new())), None),
        Err(RunError::Config(_))
    ));

    let p = process_from_config(
        &full_with(|c| c.working_dir("/srv").user("1000:2000")),
        None,
    )
    .unwrap();
    assert_eq!((p.cwd.as_str(), p.uid, p.gid), ("/srv", 1000, 2000));
    let p = process_from_config(&full_with(|c| c.user("1000")), None).unwrap();
    assert_eq!((p.uid, p.gid), (1000, 0));
    assert!(matches!(
        process_from_config(&full_with(|c| c.working_dir("rel")), None),
        Err(RunError::Config(_))
    ));
    match process_from_config(&full_with(|c| c.user("app")), None) {
        Err(RunError::Config(msg)) => {
            assert!(msg.contains("\"app\"") && msg.contains("numeric"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

fn full_with(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> ImageConfiguration {
    config(|c| f(c.entrypoint(s(&["/app"]))))
}

#[test]
fn user_names_resolve_in_the_image() {
    let (_t, root, res) = unpack_layers(&[layer_bytes(&[
        E::File(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/sbin/nologin\n",
            0o644,
        ),
        E::File("etc/group", b"root:x:0:\nstaff:x:50:app\n", 0o644),
    ])]);
    res.unwrap();
    let r = Some(root.as_path());
    assert_eq!(resolve_user("app", r).unwrap(), (1000, 1001));
    assert_eq!(resolve_user("app:staff", r).unwrap(), (1000, 50));
    assert_eq!(
        resolve_user("1000", r).unwrap(),
        (1000, 1001),
        "primary group of a listed uid"
    );
    assert_eq!(resolve_user("4242", r).unwrap(), (4242, 0));
    assert_eq!(resolve_user("0:staff", r).unwrap(), (0, 50));
    match resolve_user("nobody", r) {
        Err(RunError::Config(msg)) => assert!(
            msg.contains("nobody") && msg.contains("/etc/passwd"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        resolve_user("app:wheel", r),
        Err(RunError::Config(_))
    ));
    assert!(matches!(
        resolve_user("4294967295", r),
        Err(RunError::Config(_))
    ));
    let empty = tempfile::tempdir().unwrap();
    match resolve_user("app", Some(empty.path())) {
        Err(RunError::Config(msg)) => assert!(msg.contains("no /etc/passwd"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

// ----------------------------------------------------------------------------- builtin sandbox

#[test]
fn builtin_runs_a_static_binary_alone_in_its_root() {
    let bins = binaries();
    let cfg = config(|c| {
        c.entrypoint(s(&["/probe"]))
            .cmd(s(&["from-cmd"]))
            .env(s(&["GREETING=hi"]))
    });
    let args = s(&["a1", "a 2"]);
    let probe = E::File("probe", &bins.probe_static, 0o755);
    let (out, stdout) = run_probe(&[probe], cfg, Some(&args), Runtime::Builtin);
    assert_eq!((out.signal, out.timed_out), (None, false), "{stdout}");
    assert!(stdout.starts_with("ok\n"), "{stdout}");
    assert_eq!(line_value(&stdout, "uid"), "0");
    let pid = line_value(&stdout, "pid");
    assert!(pid == "1" || pid == "2", "pid {pid}");
    assert_eq!(line_value(&stdout, "etc_hostname"), "absent");
    let mut root: Vec<&str> = line_value(&stdout, "root")
        .split(',')
        .filter(|e| !e.is_empty())
        .collect();
    root.sort_unstable();
    assert_eq!(
        root,
        ["dev", "probe", "proc"],
        "the root holds the binary and the mount points every runtime gives"
    );
    assert_eq!(line_value(&stdout, "hostname"), SANDBOX_HOSTNAME);
    assert!(stdout.contains("args=a1,a 2,\n"), "{stdout}");
    assert!(stdout.contains("GREETING=hi\n"), "{stdout}");
    assert_eq!(text(&out.stderr), "to stderr\n");
    assert_eq!((out.rootfs_files, out.libc_files.len()), (1, 0));
}

#[test]
fn builtin_user_path_lookup_workdir_proc_and_dev() {
    let bins = binaries();
    let cfg = config(|c| {
        c.entrypoint(s(&["probe"]))
            .env(s(&["PATH=/nowhere:/bin"]))
            .user("65532:65533")
            .working_dir("/work")
    });
    let entries = [
        E::Dir("proc/", 0o555),
        E::Dir("dev/", 0o755),
        E::File("bin/probe", &bins.probe_static, 0o755),
    ];
    let (_, stdout) = run_probe(&entries, cfg, None, Runtime::Builtin);
    assert_eq!(line_value(&stdout, "uid"), "65532");
    assert_eq!(line_value(&stdout, "gid"), "65533");
    assert_eq!(line_value(&stdout, "cwd"), "/work");
    assert_eq!(line_value(&stdout, "devnull"), "yes");
    assert_eq!(line_value(&stdout, "proc"), "yes");
}

#[test]
fn builtin_dynamic_binary_fails_for_want_of_its_interpreter() {
    let bins = binaries();
    let dir = tempfile::tempdir().unwrap();
    let dynamic = dir.path().join("dyn");
    fs::write(&dynamic, &bins.probe_dynamic).unwrap();
    let Some(diagnose::Interp::Elf(interp)) = diagnose::interpreter_of(&dynamic) else {
        panic!("gcc's output has no PT_INTERP")
    };

    let [(dynamic, err), (_, nope)] = exec_failures(&bins, Runtime::Builtin);
    assert_eq!(
        err,
        format!(
            "exec /hello: No such file or directory (ENOENT): its ELF interpreter {interp} is not in the image"
        )
    );
    assert_eq!(dynamic.exit_code, Some(127));
    assert!(dynamic.stdout.is_empty());
    assert_eq!(
        nope,
        "exec /nope: No such file or directory (ENOENT): /nope is not in the image"
    );
    let out = run_alone(
        "/hello",
        E::File("hello", b"not a program", 0o644),
        Runtime::Builtin,
    );
    assert_eq!(
        out.exec_error.as_deref(),
        Some("exec /hello: Permission denied (EACCES)")
    );
}

#[test]
fn builtin_timeout_kills_the_sandbox() {
    let out = sleeper_is_killed(
        Runtime::Builtin,
        Duration::from_millis(300),
        Duration::from_secs(3),
    );
    assert_eq!(out.exit_code, None);
}

// ----------------------------------------------------------------------------- runc

#[test]
fn runc_runs_a_static_binary() {
    let bins = binaries();
    let cfg = config(|c| c.entrypoint(s(&["/probe"])).env(s(&["GREETING=hi"])));
    let probe = E::File("probe", &bins.probe_static, 0o755);
    let (out, stdout) = run_probe(&[probe], cfg, None, Runtime::Runc);
    assert_eq!(out.runtime, Runtime::Runc);
    assert_eq!(line_value(&stdout, "uid"), "0");
    assert_eq!(line_value(&stdout, "pid"), "1");
    assert_eq!(line_value(&stdout, "etc_hostname"), "absent");
    assert_eq!(line_value(&stdout, "hostname"), SANDBOX_HOSTNAME);
    assert!(stdout.contains("GREETING=hi\n"), "{stdout}");
    assert_eq!(text(&out.stderr), "to stderr\n");

    // A non-root image user: as root, mapped; rootless runc cannot map it (a clear error).
    let cfg = config(|c| c.entrypoint(s(&["/probe"])).user("65532:65533"));
    let tmp = tempfile::tempdir().unwrap();
    let img = image(
        tmp.path(),
        &[layer_bytes(&[E::File("probe", &bins.probe_static, 0o755)])],
        cfg,
    );
    match run_image(&img, None, &RunOptions::new(Runtime::Runc, TIMEOUT)) {
        Ok(out) if nix::unistd::geteuid().is_root() => {
            let stdout = text(&out.stdout);
            assert_eq!(out.exit_code, Some(3), "{stdout}");
            assert_eq!(
                (line_value(&stdout, "uid"), line_value(&stdout, "gid")),
                ("65532", "65533")
            );
        }
        Err(RunError::Runc(msg)) if !nix::unistd::geteuid().is_root() => {
            assert!(msg.contains("rootless") && msg.contains("builtin"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn runc_reports_exec_failures() {
    let bins = binaries();
    let [(dynamic, err), (missing, nope)] = exec_failures(&bins, Runtime::Runc);
    assert!(err.contains("no such file or directory"), "{err}");
    assert!(
        err.contains("its ELF interpreter /lib") && err.contains("is not in the image"),
        "{err}"
    );
    assert_ne!(dynamic.exit_code, Some(0));
    assert!(
        nope.contains("/nope") && nope.contains("no such file or directory"),
        "{nope}"
    );
    assert_ne!(missing.exit_code, Some(0));
}

#[test]
fn runc_timeout_kills_the_container() {
    sleeper_is_killed(
        Runtime::Runc,
        Duration::from_millis(500),
        Duration::from_secs(4),
    );
}

#[test]
fn a_signal_is_said_with_what_it_usually_means() {
    assert!(signal_meaning(11).contains("link = \"static\""));
    assert!(signal_meaning(4).contains("newer CPU"));
    assert!(signal_meaning(9).contains("timeout"));
    assert_eq!(signal_meaning(64), "see `man 7 signal`");
}
