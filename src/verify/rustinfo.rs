//! What a Rust binary says about how it was built: the rustc version from `.comment`, and the
//! crate list from the `.dep-v0` section `cargo auditable` embeds (zlib-compressed JSON,
//! <https://github.com/rust-secure-code/cargo-auditable>). A pure function of bytes, bounded:
//! hostile input gives no crate list, never a panic or an unbounded allocation.

use serde::{Deserialize, Serialize};
use std::io::Read;

/// The most decompressed `.dep-v0` bytes read (cargo auditable's own limit is 8 MiB).
const MAX_DEPS_JSON: u64 = 8 << 20;
/// Crates kept (real lock files have hundreds).
const MAX_CRATES: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RustInfo {
    /// "1.95.0 (59807616e 2026-04-14)", from `.comment`'s "rustc version …" (gone when stripped
    /// with `--strip-all`; kept by `-C strip=symbols`).
    pub rustc: Option<String>,
    /// The crates compiled in, from cargo auditable data; `None` when the binary has none.
    pub crates: Option<Vec<RustCrate>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RustCrate {
    pub name: String,
    pub version: String,
    /// "crates.io", "git", "local", "registry", …
    #[serde(default)]
    pub source: String,
    /// "build" for build-time only crates (build scripts, proc macros); else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Deserialize)]
struct Auditable {
    packages: Vec<RustCrate>,
}

/// The rustc version among `.comment` strings.
pub(super) fn rustc_version(compilers: &[String]) -> Option<String> {
    compilers
        .iter()
        .find_map(|c| c.strip_prefix("rustc version "))
        .map(str::to_owned)
}

/// The crate list in `.dep-v0`'s bytes, or `None` when they are not cargo auditable data.
pub(super) fn crates(dep_v0: &[u8]) -> Option<Vec<RustCrate>> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(dep_v0)
        .take(MAX_DEPS_JSON)
        .read_to_end(&mut json)
        .ok()?;
    let mut packages = serde_json::from_slice::<Auditable>(&json).ok()?.packages;
    packages.truncate(MAX_CRATES);
    Some(packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn cargo_auditable_data_gives_the_crate_list() {
        let json = br#"{"packages":[
            {"name":"tool","version":"1.0.0","source":"local","root":true,"dependencies":[1]},
            {"name":"libc","version":"0.2.150","source":"crates.io"},
            {"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"}]}"#;
        let got = crates(&zlib(json)).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[1].name.as_str(), got[1].version.as_str()),
            ("libc", "0.2.150")
        );
        assert_eq!(got[2].kind.as_deref(), Some("build"));
        assert_eq!(crates(b"not zlib"), None);
        assert_eq!(crates(&zlib(b"{\"no\":1}")), None);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let bomb = zlib(&vec![b' '; (MAX_DEPS_JSON as usize) * 2]);
        assert_eq!(crates(&bomb), None);
    }

    #[test]
    fn rustc_version_comes_from_the_comment() {
        let c = vec![
            "GCC: (Debian 14.2.0-19) 14.2.0".to_owned(),
            "rustc version 1.95.0 (59807616e 2026-04-14)".to_owned(),
        ];
        assert_eq!(
            rustc_version(&c).as_deref(),
            Some("1.95.0 (59807616e 2026-04-14)")
        );
        assert_eq!(rustc_version(&c[..1]), None);
    }
}
