//! `verify --format sarif`: one SARIF 2.1.0 log (one run) over every file verify judged, for
//! code-scanning UIs. Each finding is a result (its code the rule id, error → "error", warning
//! → "warning"), located at the file's path, or for an image at the path inside the image
//! (relative to the uriBaseId `IMAGEROOT`, the image named in the result's properties).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use staticpack::verify::{self, FileReport, Finding, Severity};

/// The schema the log names (the OASIS 2.1.0 schema with errata 01, vendored for the tests
/// under tests/fixtures/sarif/).
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The rule id of a file verify could not read or parse (not an ELF finding).
const FILE_ERROR: &str = "unreadable-file";
/// The rule id of an image whose entrypoint will not start.
const ENTRYPOINT: &str = "entrypoint-will-not-start";

/// What each rule is about, for `tool.driver.rules`; a code missing here is described by the
/// first finding that carries it.
fn rule_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "dynamic" => {
            "the program is dynamically linked: it needs an interpreter or libraries at run time"
        }
        "not-pie" => {
            "static but not position independent (ET_EXEC) where a static-pie was required"
        }
        "not-executable" => {
            "not an executable program (a library, object file, core dump or debug-info file)"
        }
        "foreign-os" => "a program for another operating system than Linux",
        "nss-hazard" => "a static glibc program that loads NSS modules (libnss_*.so) at run time",
        verify::GCONV_HAZARD => "glibc's iconv loads gconv modules at run time",
        verify::LIBGCC_S_HAZARD => {
            "a shared glibc loads libgcc_s.so.1 for pthread_cancel / pthread_exit"
        }
        verify::IDN_HAZARD => "glibc's IDN code loads libidn2.so.0 under AI_IDN / NI_IDN",
        verify::DLOPEN_HAZARD => "the program loads libraries by name at run time (dlopen)",
        verify::WRONG_PLATFORM => "the ELF machine is not the platform's",
        verify::LIBC_MISMATCH => "the C library inside is not the one asked for",
        "exec-stack" => "executable stack (PT_GNU_STACK with the X flag)",
        "textrel" => "text relocations (DT_TEXTREL)",
        "no-relro" => "no RELRO: the GOT stays writable",
        FILE_ERROR => "a file verify could not read or parse",
        ENTRYPOINT => "the image's entrypoint will not start",
        _ => return None,
    })
}

/// Where a result points: a host path, or a path inside an image.
pub enum Place<'a> {
    File,
    Image(&'a str),
}

#[derive(Default)]
pub struct Log {
    rules: BTreeMap<String, String>,
    results: Vec<Value>,
}

impl Log {
    /// Every finding of `r` (or its read error) as a result.
    pub fn add(&mut self, r: &FileReport, place: &Place<'_>) {
        let path = r.path.to_string_lossy();
        match &r.result {
            Ok((_, findings)) => {
                for f in findings {
                    self.add_finding(f, &path, place);
                }
            }
            Err(e) => self.push(
                FILE_ERROR,
                "error",
                &e.message,
                &e.message,
                Some(location(&path, place)),
                place,
            ),
        }
    }

    fn add_finding(&mut self, f: &Finding, path: &str, place: &Place<'_>) {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let text = format!("{}\nWhy: {}\nFix: {}", f.what, f.why, f.fix);
        self.push(
            f.code,
            level,
            &f.what,
            &text,
            Some(location(path, place)),
            place,
        );
    }

    /// An image whose entrypoint will not start, located at the entrypoint when there is one.
    pub fn add_will_not_start(&mut self, why: &str, entrypoint: Option<&str>, image: &str) {
        let place = Place::Image(image);
        let loc = entrypoint.map(|p| location(p, &place));
        self.push(ENTRYPOINT, "error", why, why, loc, &place);
    }

    fn push(
        &mut self,
        code: &str,
        level: &str,
        what: &str,
        text: &str,
        loc: Option<Value>,
        place: &Place<'_>,
    ) {
        self.rules
            .entry(code.to_string())
            .or_insert_with(|| rule_text(code).unwrap_or(what).to_string());
        let mut result = json!({
            "ruleId": code,
            "level": level,
            "message": { "text": text },
        });
        if let Some(loc) = loc {
            result["locations"] = json!([loc]);
        }
        if let Place::Image(image) = place {
            result["properties"] = json!({ "image": image });
        }
        self.results.push(result);
    }

    /// The SARIF log: `$schema`, `version` and one run.
    pub fn to_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(id, text)| {
                json!({
                    "id": id,
                    "shortDescription": { "text": text },
                })
            })
            .collect();
        let mut run = json!({
            "tool": { "driver": {
                "name": "staticpack",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": self.results,
        });
        if self.results.iter().any(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "IMAGEROOT"
        }) {
            run["originalUriBaseIds"] = json!({
                "IMAGEROOT": { "description": { "text": "the root of the image's file system (the image is named in each result's properties)" } }
            });
        }
        json!({
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [run],
        })
    }
}

fn location(path: &str, place: &Place<'_>) -> Value {
    let artifact = match place {
        Place::File if path.starts_with('/') => {
            json!({ "uri": format!("file://{}", uri_path(path)) })
        }
        Place::File => json!({ "uri": uri_path(path) }),
        Place::Image(_) => json!({
            "uri": uri_path(path.trim_start_matches('/')),
            "uriBaseId": "IMAGEROOT",
        }),
    };
    json!({ "physicalLocation": { "artifactLocation": artifact } })
}

/// A path as a URI path: RFC 3986 unreserved characters and `/` stay, the rest is
/// percent-encoded byte by byte.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uri_path;

    #[test]
    fn paths_become_uri_paths() {
        assert_eq!(uri_path("/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(uri_path("dist/a b#1%"), "dist/a%20b%231%25");
        assert_eq!(uri_path("é"), "%C3%A9");
    }
}
