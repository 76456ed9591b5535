//! Go build information, read straight from the `.go.buildinfo` blob that `go build` embeds
//! (the same data `go version -m` prints). Bounded and panic-free on hostile bytes.
//!
//! Layout (cmd/go, debug/buildinfo): a 32-byte header, 16-byte aligned:
//! `"\xff Go buildinf:"` (14 bytes), pointer size (1 byte), flags (1 byte).
//! - flags & 2 (Go ≥ 1.18): the version and the module info follow the header inline, each as a
//!   uvarint length and the bytes.
//! - otherwise (Go < 1.18): two pointers at offset 16 and 16+ptrsize point to Go string headers
//!   (data pointer, length) somewhere in the loaded image; flags & 1 means big-endian pointers.
//!
//! The module info is wrapped in 16-byte sentinels and holds tab-separated lines:
//! `path\t<main package>`, `mod\t<path>\t<version>\t<sum>`, `dep\t…`, `=>\t…` (replacement of the
//! line above) and `build\t<key>=<value>`, where key and value may be Go-quoted.

use std::collections::BTreeMap;

use serde::Serialize;

pub(crate) const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Generous bounds: real build info is a few KiB; anything bigger is hostile or corrupt.
const MAX_STRING: usize = 1 << 20;
const MAX_DEPS: usize = 10_000;
const MAX_SETTINGS: usize = 1_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    /// The go.sum hash ("h1:…"), empty for the main module and for replaced modules.
    pub sum: String,
    /// "path version" of the replacement when go.mod has a `replace` for this module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoBuildInfo {
    /// "go1.19.8", as the toolchain wrote it.
    pub go_version: String,
    /// The main package's import path (`path` line), e.g. "example.com/hello/cmd/hello".
    pub path: Option<String>,
    /// The main module (`mod` line).
    pub main_module: Option<GoModule>,
    pub deps: Vec<GoModule>,
    /// `build` lines: "-compiler", "-ldflags", "-tags", "-trimpath", "-buildmode",
    /// "CGO_ENABLED", "GOARCH", "GOOS", "vcs.revision", …
    pub settings: BTreeMap<String, String>,
}

impl GoBuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// `CGO_ENABLED` as recorded by the go command (absent in very old toolchains).
    pub fn cgo_enabled(&self) -> Option<bool> {
        self.setting("CGO_ENABLED").map(|v| v == "1")
    }

    /// The `-tags` build setting, split on commas.
    pub fn tags(&self) -> Vec<String> {
        self.setting("-tags")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `-ldflags` setting split into arguments the way the go command splits them.
    pub fn ldflags(&self) -> Vec<String> {
        self.setting("-ldflags")
            .map(split_quoted)
            .unwrap_or_default()
    }

    /// Value of a linker flag given in `-ldflags` (`-name value`, `-name=value`, `--name…`).
    /// The last occurrence wins, as with Go's flag package.
    pub fn linker_flag(&self, name: &str) -> Option<String> {
        let args = self.ldflags();
        let mut found = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].trim_start_matches('-');
            if args[i].starts_with('-') {
                if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                    found = Some(v.to_string());
                } else if a == name {
                    found = args.get(i + 1).cloned();
                    i += 1;
                }
            }
            i += 1;
        }
        found
    }

    /// True when `-ldflags` asks for the external linker (`-linkmode external`).
    pub fn external_linkmode(&self) -> bool {
        self.linker_flag("linkmode").as_deref() == Some("external")
    }

    /// True when `-extldflags` carries `-static` or `-static-pie`.
    pub fn extldflags_static(&self) -> bool {
        self.linker_flag("extldflags")
            .map(|f| {
                split_quoted(&f)
                    .iter()
                    .any(|a| a == "-static" || a == "-static-pie")
            })
            .unwrap_or(false)
    }
}

/// Parses the build info blob starting at `blob[0]` (the magic). `read_vaddr` resolves the
/// pointers of the pre-1.18 format: it returns the bytes of the loaded image at a virtual address.
pub(crate) fn parse<'a>(
    blob: &'a [u8],
    read_vaddr: &dyn Fn(u64) -> Option<&'a [u8]>,
) -> Option<GoBuildInfo> {
    if blob.len() < 32 || !blob.starts_with(MAGIC) {
        return None;
    }
    let ptr_size = blob[14] as usize;
    let flags = blob[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (v, rest) = read_varint_string(&blob[32..])?;
        let (m, _) = read_varint_string(rest)?;
        (v, m)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let big = flags & 1 != 0;
        let vptr = read_uint(blob.get(16..16 + ptr_size)?, big)?;
        let mptr = read_uint(blob.get(16 + ptr_size..16 + 2 * ptr_size)?, big)?;
        let v = read_go_string(vptr, ptr_size, big, read_vaddr)?;
        // The module info is optional in old toolchains (GOPATH builds).
        let m = read_go_string(mptr, ptr_size, big, read_vaddr).unwrap_or(&[]);
        (v, m)
    };
    let mut info = GoBuildInfo {
        go_version: String::from_utf8_lossy(version).into_owned(),
        ..GoBuildInfo::default()
    };
    parse_modinfo(
        &String::from_utf8_lossy(strip_sentinels(modinfo)),
        &mut info,
    );
    Some(info)
}

fn read_go_string<'a>(
    header_addr: u64,
    ptr_size: usize,
    big: bool,
    read_vaddr: &dyn Fn(u64) -> Option<&'a [u8]>,
) -> Option<&'a [u8]> {
    let hdr = read_vaddr(header_addr)?;
    let data = read_uint(hdr.get(..ptr_size)?, big)?;
    let len = usize::try_from(read_uint(hdr.get(ptr_size..2 * ptr_size)?, big)?).ok()?;
    if len > MAX_STRING {
        return None;
    }
    read_vaddr(data)?.get(..len)
}

fn read_uint(b: &[u8], big: bool) -> Option<u64> {
    match b.len() {
        4 => {
            let a: [u8; 4] = b.try_into().ok()?;
            Some(u64::from(if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }))
        }
        8 => {
            let a: [u8; 8] = b.try_into().ok()?;
            Some(if big {
                u64::from_be_bytes(a)
            } else {
                u64::from_le_bytes(a)
            })
        }
        _ => None,
    }
}

/// A uvarint length followed by that many bytes; returns the string and what follows it.
fn read_varint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut i = 0;
    loop {
        let byte = *b.get(i)?;
        i += 1;
        if shift >= 63 {
            return None;
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let len = usize::try_from(len).ok()?;
    if len > MAX_STRING {
        return None;
    }
    let rest = b.get(i..)?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The go command wraps the module info in two 16-byte sentinels; debug/buildinfo strips them
/// only when the end sentinel is preceded by a newline, and so do we.
fn strip_sentinels(m: &[u8]) -> &[u8] {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        &[]
    }
}

fn parse_modinfo(text: &str, info: &mut GoBuildInfo) {
    // Which module a following `=>` line replaces: the main module or the last dep.
    let mut last_is_dep = false;
    for line in text.lines() {
        let (kind, rest) = line.split_once('\t').unwrap_or((line, ""));
        match kind {
            "path" => info.path = Some(rest.to_string()),
            "mod" => {
                info.main_module = Some(module_from(rest));
                last_is_dep = false;
            }
            "dep" if info.deps.len() < MAX_DEPS => {
                info.deps.push(module_from(rest));
                last_is_dep = true;
            }
            "=>" => {
                let m = module_from(rest);
                let target = if last_is_dep {
                    info.deps.last_mut()
                } else {
                    info.main_module.as_mut()
                };
                if let Some(t) = target {
                    t.replaced_by = Some(format!("{} {}", m.path, m.version).trim().to_string());
                }
            }
            "build" if info.settings.len() < MAX_SETTINGS => {
                if let Some((k, v)) = parse_setting(rest) {
                    info.settings.insert(k, v);
                }
            }
            _ => {}
        }
    }
}

fn module_from(rest: &str) -> GoModule {
    let mut f = rest.split('\t');
    GoModule {
        path: f.next().unwrap_or_default().to_string(),
        version: f.next().unwrap_or_default().to_string(),
        sum: f.next().unwrap_or_default().to_string(),
        replaced_by: None,
    }
}

/// `key=value`, where either side may be a Go-quoted string (runtime/debug quotes keys holding
/// `=`/space/quotes and values holding spaces/quotes/newlines).
fn parse_setting(s: &str) -> Option<(String, String)> {
    let (key, rest) = if s.starts_with('"') || s.starts_with('`') {
        let (k, rest) = unquote_prefix(s)?;
        (k, rest.strip_prefix('=')?)
    } else {
        let (k, rest) = s.split_once('=')?;
        (k.to_string(), rest)
    };
    let value = if rest.starts_with('"') || rest.starts_with('`') {
        unquote_prefix(rest).map(|(v, _)| v)?
    } else {
        rest.to_string()
    };
    Some((key, value))
}

/// Unquotes a Go string literal at the start of `s` (strconv.QuotedPrefix + Unquote); returns the
/// value and the text after the closing quote.
fn unquote_prefix(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    let (_, q) = chars.next()?;
    if q == '`' {
        let end = s[1..].find('`')? + 1;
        return Some((s[1..end].replace('\r', ""), &s[end + 1..]));
    }
    if q != '"' {
        return None;
    }
    let mut out = String::new();
    let mut bytes_out: Vec<u8> = Vec::new(); // pending \x / octal bytes (may form UTF-8)
    let flush = |out: &mut String, b: &mut Vec<u8>| {
        if !b.is_empty() {
            out.push_str(&String::from_utf8_lossy(b));
            b.clear();
        }
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                flush(&mut out, &mut bytes_out);
                return Some((out, &s[i + 1..]));
            }
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                let simple = match e {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '\\' => Some('\\'),
                    '\'' => Some('\''),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    flush(&mut out, &mut bytes_out);
                    out.push(ch);
                    continue;
                }
                match e {
                    'x' => {
                        let h: String = (0..2).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        bytes_out.push(u8::from_str_radix(&h, 16).ok()?);
                    }
                    '0'..='7' => {
                        let mut o = String::from(e);
                        o.extend((0..2).filter_map(|_| chars.next().map(|x| x.1)));
                        bytes_out.push(u8::from_str_radix(&o, 8).ok()?);
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let h: String = (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        flush(&mut out, &mut bytes_out);
                        out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => {
                flush(&mut out, &mut bytes_out);
                out.push(c);
            }
        }
    }
    None
}

/// Splits a flag string the way the go command does (cmd/internal/quoted.Split): on spaces,
/// with single or double quotes grouping, no escapes.
pub(crate) fn split_quoted(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend([8, 2]);
        b.resize(32, 0);
        for s in [version.as_bytes(), modinfo.as_bytes()] {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                b.push(if n > 0 { byte | 0x80 } else { byte });
                if n == 0 {
                    break;
                }
            }
            b.extend_from_slice(s);
        }
        b
    }

    fn wrap(lines: &str) -> String {
        format!("{}{lines}\n{}", "0".repeat(16), "1".repeat(16))
    }

    #[test]
    fn parses_inline_format_with_quoted_settings() {
        let m = wrap(
            "path\texample.com/x/cmd/x\nmod\texample.com/x\t(devel)\t\n\
             dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n=>\t../sys\t\n\
             build\t-ldflags=\"-linkmode external -extldflags \\\"-static\\\"\"\n\
             build\t-tags=netgo,osusergo\nbuild\tCGO_ENABLED=1\nbuild\t\"we=ird\"=`a b`",
        );
        let b = blob("go1.21.0", &m);
        let info = parse(&b, &|_| None).expect("parses");
        assert_eq!(info.go_version, "go1.21.0");
        assert_eq!(info.path.as_deref(), Some("example.com/x/cmd/x"));
        assert_eq!(
            info.main_module.as_ref().map(|m| m.version.as_str()),
            Some("(devel)")
        );
        assert_eq!(info.deps.len(), 1);
        assert_eq!(info.deps[0].replaced_by.as_deref(), Some("../sys"));
        assert_eq!(
            info.setting("-ldflags"),
            Some("-linkmode external -extldflags \"-static\"")
        );
        assert_eq!(info.setting("we=ird"), Some("a b"));
        assert_eq!(info.tags(), vec!["netgo", "osusergo"]);
        assert_eq!(info.cgo_enabled(), Some(true));
        assert!(info.external_linkmode());
        assert!(info.extldflags_static());
    }

    #[test]
    fn parses_pointer_format_of_old_toolchains() {
        // Go < 1.18: header pointers → string headers (ptr, len) → bytes, all by address.
        let mut b = MAGIC.to_vec();
        b.extend([8, 0]);
        b.extend(0x1000u64.to_le_bytes());
        b.extend(0x1010u64.to_le_bytes());
        let modinfo = wrap("path\told/cmd\nmod\told\t(devel)\t");
        let mut mem = Vec::new();
        mem.extend(0x1020u64.to_le_bytes());
        mem.extend(8u64.to_le_bytes());
        mem.extend(0x1028u64.to_le_bytes());
        mem.extend((modinfo.len() as u64).to_le_bytes());
        mem.extend(b"go1.16.3");
        mem.extend(modinfo.as_bytes());
        let read = |addr: u64| mem.get(usize::try_from(addr.checked_sub(0x1000)?).ok()?..);
        let info = parse(&b, &read).expect("parses");
        assert_eq!(info.go_version, "go1.16.3");
        assert_eq!(info.path.as_deref(), Some("old/cmd"));
    }

    #[test]
    fn linker_flag_forms() {
        let mut info = GoBuildInfo::default();
        info.settings.insert(
            "-ldflags".into(),
            "-s -w --linkmode=external '-extldflags=-static-pie'".into(),
        );
        assert!(info.external_linkmode());
        assert!(info.extldflags_static());
        info.settings
            .insert("-ldflags".into(), "-extldflags \"-static\"".into());
        assert!(!info.external_linkmode());
        assert!(info.extldflags_static());
    }

    #[test]
    fn hostile_blobs_do_not_panic() {
        let good = blob("go1.19", &wrap("path\ta\nbuild\tCGO_ENABLED=0"));
        for cut in 0..good.len() {
            let _ = parse(&good[..cut], &|_| None);
        }
        // Huge varint, pointer format with unresolvable pointers, bad quoting.
        let mut b = MAGIC.to_vec();
        b.extend([8, 2]);
        b.resize(32, 0);
        b.extend([0xff; 12]);
        assert!(parse(&b, &|_| None).is_none());
        let mut p = MAGIC.to_vec();
        p.extend([8, 0]);
        p.resize(32, 0xee);
        assert!(parse(&p, &|_| None).is_none());
        assert!(parse_setting("\"unterminated=1").is_none());
        assert!(unquote_prefix("\"\\x4").is_none());
        assert_eq!(
            unquote_prefix("\"\\xc3\\xa9\\u00e9\"!"),
            Some(("éé".into(), "!"))
        );
    }
}
