//! The one C compile helper of the tests.

use std::path::Path;
use std::process::Command;

/// Compiles the C program `source` with `compiler args…` into `out` (the source is written
/// beside it as `out.c` and removed again). A compiler that is missing or fails fails the
/// test, naming what to install.
pub(crate) fn compile_c(compiler: &str, args: &[&str], source: &str, out: &Path) {
    let install = match compiler {
        "musl-gcc" => "apt-get install musl-tools",
        _ => "apt-get install gcc libc6-dev",
    };
    let c = out.with_extension("c");
    std::fs::write(&c, source).unwrap();
    let result = Command::new(compiler)
        .args(args)
        .arg(&c)
        .arg("-o")
        .arg(out)
        .output();
    std::fs::remove_file(&c).unwrap();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("{compiler} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("{compiler} cannot run ({e}): install it: {install}"),
    }
}
