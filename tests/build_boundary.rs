//! The build is a boundary (issue 26): a hostile build step — a recipe's `commands`, and the
//! same script in a sha256-pinned tarball's Makefile — run by staticpack as root, tries what an
//! attacker would: see and reach host processes, read host secrets, reach the host's loopback,
//! kill a host process, mount, write a host sysctl, remount its inputs read-write, embed a
//! host secret into the image, and leave processes running. Every attempt must be blocked,
//! nothing may outlive the build (a `kill -9` of staticpack included), and real builds still
//! work in the jail.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the build jail tests prove the jail holds *as root*: run them as root (CI does)"
    );
}

/// What the probe checks; each prints `PROBE <name> BLOCKED` or `PROBE <name> OPEN`.
const PROBES: &[&str] = &[
    "host-pid-visible",
    "host-proc-root",
    "init-proc-root",
    "etc-shadow",
    "root-home",
    "outside-secret",
    "capability-effective",
    "capability-permitted",
    "capability-bounding",
    "no-new-privs",
    "seccomp",
    "host-loopback",
    "nsenter-host-net",
    "kill-host-process",
    "mount-proc",
    "write-sysctl",
    "remount-recipe-rw",
    "write-recipe",
    "unshare-user",
];

/// The host's pid namespace, as `/proc/self/ns/pid` names it.
fn host_pid_ns() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The probe as a shell script. It refuses to run outside a jail (in the host's pid
/// namespace, or where it is not one of the first few processes of its own): on the host it
/// would be an attack on the host.
/// `tag` tells the background processes of one test's probe from another's (the tests run at
/// once, in one process).
fn probe_script(
    tag: u32,
    host_pid: u32,
    victim: u32,
    port: u16,
    recipe_dir: &Path,
    secret: &Path,
) -> String {
    let recipe = recipe_dir.display();
    let secret = secret.display();
    let host_ns = host_pid_ns();
    format!(
        r#"set +e
if [ "$(readlink /proc/self/ns/pid)" = "{host_ns}" ] || [ "$$" -gt 10 ]; then echo "REFUSED: not in a jail (pid $$)"; exit 99; fi
p() {{ if "$@" >/dev/null 2>&1; then echo "PROBE $name OPEN"; else echo "PROBE $name BLOCKED"; fi; }}
name=host-pid-visible p test -e /proc/{host_pid}
name=host-proc-root p ls /proc/{host_pid}/root/
name=init-proc-root p ls /proc/1/root/
name=etc-shadow p cat /etc/shadow
name=root-home p ls /root
name=outside-secret p cat {secret}
name=capability-effective p sh -c 'grep -q "^CapEff:.*[1-9a-f]" /proc/self/status'
name=capability-permitted p sh -c 'grep -q "^CapPrm:.*[1-9a-f]" /proc/self/status'
name=capability-bounding p sh -c 'grep -q "^CapBnd:.*[1-9a-f]" /proc/self/status'
name=no-new-privs p sh -c '! grep -q "^NoNewPrivs:.1" /proc/self/status'
name=seccomp p sh -c '! grep -q "^Seccomp:.2" /proc/self/status'
name=host-loopback p python3 -c 'import socket; socket.create_connection(("127.0.0.1", {port}), 2)'
name=nsenter-host-net p nsenter --net=/proc/{host_pid}/ns/net true
name=kill-host-process p kill -9 {victim}
mkdir -p /tmp/p 2>/dev/null
name=mount-proc p mount -t proc proc /tmp/p
name=write-sysctl p sh -c 'echo 1 > /proc/sys/kernel/core_uses_pid'
name=remount-recipe-rw p mount -o remount,rw,bind {recipe}
name=write-recipe p sh -c 'echo pwned > {recipe}/pwned'
name=unshare-user p unshare -r true
setsid sleep 777{tag}{host_pid} &
( (sleep 778{tag}{host_pid}) & )
sleep 779{tag}{host_pid} &
echo PROBES DONE
exit 1
"#
    )
}

/// A host process the probe tries to kill, a listener on the host's loopback, a secret next
/// to the recipe (outside what it declares): the attacker's targets, and their checks.
struct Targets {
    victim: std::process::Child,
    _listener: std::net::TcpListener,
    port: u16,
    secret: PathBuf,
}

impl Targets {
    fn new(work: &Path) -> Targets {
        let victim = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = work.join("secret.txt");
        std::fs::write(&secret, "host secret\n").unwrap();
        Targets {
            victim,
            _listener: listener,
            port,
            secret,
        }
    }

    fn victim_alive(&mut self) -> bool {
        self.victim.try_wait().unwrap().is_none()
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

fn running(pattern: &str) -> Vec<String> {
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(pattern) && !l.contains("ps -eo"))
        .map(str::to_owned)
        .collect()
}

/// Checks the probe's report in the kept build log and the host afterwards.
fn check_report(tag: u32, log: &Path, recipe_dir: &Path, targets: &mut Targets) {
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("the build log {}: {e}", log.display()));
    assert!(
        !text.contains("REFUSED"),
        "the probe ran outside a jail:\n{text}"
    );
    assert!(text.contains("PROBES DONE"), "{text}");
    for probe in PROBES {
        assert!(
            text.contains(&format!("PROBE {probe} BLOCKED")),
            "{probe} was not blocked:\n{text}"
        );
    }
    assert!(targets.victim_alive(), "the host process was killed");
    assert!(
        !recipe_dir.join("pwned").exists(),
        "the recipe folder was written"
    );
    let host_pid = std::process::id();
    // init killed them when the step ended: nothing is left by the time the build returns.
    let left = running(&format!("{tag}{host_pid}"))
        .into_iter()
        .filter(|l| l.contains("sleep 77"))
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "left running after the build: {left:?}");
    assert!(
        text.contains("left 3 processes running: killed"),
        "the log says what was killed:\n{text}"
    );
}

#[test]
fn a_hostile_commands_step_as_root_is_blocked_and_leaves_nothing() {
    const TAG: u32 = 1;
    require_root();
    let work = tempfile::tempdir().unwrap();
    let mut targets = Targets::new(work.path());
    let dir = work.path().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let script = probe_script(
        TAG,
        std::process::id(),
        targets.victim.id(),
        targets.port,
        &dir,
        &targets.secret,
    );
    std::fs::write(dir.join("probe.sh"), &script).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        "name = \"hostile\"\n[build]\nlang = \"c\"\nsource = \".\"\ncommands = [\"sh probe.sh\"]\nartifact = \"app\"\n[image]\nbase = \"scratch\"\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let run = staticpack(
        work.path(),
        &["build", "hostile", "--out", out.to_str().unwrap()],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("left 3 processes running: killed"),
        "{}",
        run.stderr
    );
    check_report(
        TAG,
        &work.path().join(".hostile.build.log"),
        &dir,
        &mut targets,
    );
}

#[test]
fn a_hostile_makefile_in_a_pinned_tarball_is_blocked_the_same() {
    const TAG: u32 = 2;
    require_root();
    let work = tempfile::tempdir().unwrap();
    let mut targets = Targets::new(work.path());
    let dir = work.path().join("tarball");
    let src = work.path().join("pkg-1.0");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&src).unwrap();
    let script = probe_script(
        TAG,
        std::process::id(),
        targets.victim.id(),
        targets.port,
        &dir,
        &targets.secret,
    );
    std::fs::write(src.join("probe.sh"), &script).unwrap();
    std::fs::write(src.join("Makefile"), "all:\n\tsh probe.sh\n").unwrap();
    let tar = need("tar", "tar");
    tool(
        &tar,
        &["czf", "tarball/pkg-1.0.tar.gz", "pkg-1.0"],
        work.path(),
    )
    .ok();
    let sha = sha256_hex(&std::fs::read(dir.join("pkg-1.0.tar.gz")).unwrap());
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"tarball\"\n[build]\nlang = \"c\"\nsource = {{ archive = \"pkg-1.0.tar.gz\", sha256 = \"{sha}\" }}\nsystem = \"make\"\nartifact = \"app\"\n[image]\nbase = \"scratch\"\n"
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let run = staticpack(
        work.path(),
        &["build", "tarball", "--out", out.to_str().unwrap()],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    check_report(
        TAG,
        &work.path().join(".tarball.build.log"),
        &dir,
        &mut targets,
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// `install = true` and `.incbin` cannot name a host secret: it is not there.
#[test]
fn an_image_bound_input_cannot_name_a_host_secret() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("steal");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        "name = \"steal\"\n[build]\nlang = \"c\"\nsource = \".\"\ninstall = true\ncommands = [\"mkdir -p $DESTDIR/usr/bin $DESTDIR/usr/share && printf 'int main(){return 0;}' > m.c && cc -o $DESTDIR/usr/bin/app m.c && cp /etc/shadow $DESTDIR/usr/share/x\"]\n[image]\nbase = \"scratch\"\nentrypoint = [\"/usr/bin/app\"]\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let run = staticpack(
        work.path(),
        &["build", "steal", "--out", out.to_str().unwrap()],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("/etc/shadow"), "{}", run.stderr);
    assert!(!out.exists(), "nothing is published");

    let dir = work.path().join("incbin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.c"),
        "__asm__(\".section .rodata\\n.incbin \\\"/etc/shadow\\\"\\n.previous\");\nint main(void) { return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        "name = \"incbin\"\n[build]\nlang = \"c\"\nsource = \".\"\n[image]\nbase = \"scratch\"\n",
    )
    .unwrap();
    let out = work.path().join("out2");
    let run = staticpack(
        work.path(),
        &["build", "incbin", "--out", out.to_str().unwrap()],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("shadow"), "{}", run.stderr);
    assert!(!out.exists(), "nothing is published");
}

/// `kill -9` of staticpack during a step: the jail's init dies with it, and the kernel ends
/// every process of the step.
#[test]
fn killing_staticpack_mid_step_leaves_no_process() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("slow");
    std::fs::create_dir_all(&dir).unwrap();
    let marker = format!("9{}", std::process::id());
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"slow\"\n[build]\nlang = \"c\"\nsource = \".\"\ncommands = [\"setsid sleep {marker} & sleep {marker}1 & sleep {marker}2\"]\nartifact = \"app\"\n[image]\nbase = \"scratch\"\n"
        ),
    )
    .unwrap();
    let mut child = staticpack_command(work.path(), &["build", "slow", "--out", "out"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while running(&format!("sleep {marker}2")).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let left = running(&format!("sleep {marker}"));
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "still running after kill -9 of staticpack: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A step past `[build] timeout_seconds`, a disk filler and a fork bomb stop with an error that
/// names the limit and how to raise it.
#[test]
fn limits_stop_a_build_with_the_flag_to_raise_them() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let write = |name: &str, extra: &str, command: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = std::fs::File::create(dir.join("recipe.toml")).unwrap();
        write!(
            f,
            "name = \"{name}\"\n[build]\nlang = \"c\"\nsource = \".\"\n{extra}commands = [\"{command}\"]\nartifact = \"app\"\n[image]\nbase = \"scratch\"\n"
        )
        .unwrap();
        dir
    };
    write("slow", "timeout_seconds = 2\n", "sleep 60");
    let started = Instant::now();
    let run = staticpack(work.path(), &["build", "slow", "--out", "o1"]);
    assert_ne!(run.code, 0);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        run.stderr.contains("time limit of 2 s") && run.stderr.contains("timeout_seconds"),
        "{}",
        run.stderr
    );

    write("filler", "", "head -c 200000000 /dev/zero > big");
    let run = staticpack(
        work.path(),
        &["build", "filler", "--out", "o2", "--max-build-bytes", "16M"],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--max-build-bytes"), "{}", run.stderr);

    let bomb = write("bomb", "", "exec python3 bomb.py");
    std::fs::write(
        bomb.join("bomb.py"),
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    )
    .unwrap();
    let started = Instant::now();
    let run = staticpack(
        work.path(),
        &[
            "build",
            "bomb",
            "--out",
            "o3",
            "--max-build-processes",
            "50",
        ],
    );
    assert_ne!(run.code, 0);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        run.stderr.contains("--max-build-processes"),
        "{}",
        run.stderr
    );
    // The host is still usable: a process starts.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}
