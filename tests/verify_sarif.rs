//! `verify --format sarif`: the log validates against the SARIF 2.1.0 JSON schema (OASIS,
//! errata 01, vendored in tests/fixtures/sarif/ with its source and sha256), with Python's
//! `jsonschema` from the supply venv (.ci/setup); and it says what verify found: one result per
//! finding with the finding's code as rule id, its severity as level, the file's path (or, for
//! an image, the path inside it) as location, and every rule id described in tool.driver.rules.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{compile_c, need, staticpack};
use serde_json::Value;

const SCHEMA_SHA256: &str = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e";

const NSS_ICONV_C: &str = "#include <iconv.h>\n#include <pwd.h>\n#include <stdio.h>\n\
    int main(void){struct passwd*p=getpwnam(\"root\");iconv_t c=iconv_open(\"EBCDIC-US\",\"UTF-8\");\
    printf(\"%d %d\\n\",p!=0,c==(iconv_t)-1);return 0;}\n";
const HELLO_C: &str = "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n";

fn schema() -> PathBuf {
    let path = common::repo_root().join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let bytes = std::fs::read(&path).expect("the vendored SARIF schema");
    let digest = staticpack::digest::Digest::of_bytes(&bytes);
    assert_eq!(digest.hex(), SCHEMA_SHA256, "the vendored schema changed");
    path
}

/// Validates `log` against the SARIF 2.1.0 schema (draft-04) with Python's jsonschema.
fn validate(log: &str, dir: &Path) {
    let python = Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
        .join(".cache/staticpack/supply-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: bash .ci/setup makes the venv with jsonschema",
        python.display()
    );
    let file = dir.join("log.sarif");
    std::fs::write(&file, log).expect("writing the log");
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             log = json.load(open(sys.argv[2]))\n\
             v = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())\n\
             errors = sorted(v.iter_errors(log), key=lambda e: list(e.absolute_path))\n\
             for e in errors: print(list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors else 0)\n",
        )
        .arg(schema())
        .arg(&file)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "the log does not validate against SARIF 2.1.0:\n{}{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (ruleId, level, location uri) of every result, and the rule ids the driver describes.
fn results_of(log: &Value) -> (Vec<(String, String, String)>, BTreeSet<String>) {
    assert_eq!(log["version"], "2.1.0");
    assert!(
        log["$schema"]
            .as_str()
            .is_some_and(|s| s.ends_with("sarif-schema-2.1.0.json"))
    );
    let runs = log["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "staticpack");
    assert!(driver["version"].is_string());
    let rules: BTreeSet<String> = driver["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            assert!(
                r["shortDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
            r["id"].as_str().expect("rule id").to_string()
        })
        .collect();
    let results = runs[0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let text = r["message"]["text"].as_str().expect("message");
            let rule = r["ruleId"].as_str().unwrap_or("");
            // A finding says what, why and the fix; a read error or a start verdict is one text.
            if !["unreadable-file", "entrypoint-will-not-start"].contains(&rule) {
                assert!(
                    text.contains("\nWhy: ") && text.contains("\nFix: "),
                    "{text}"
                );
            }
            assert!(!text.is_empty());
            (
                r["ruleId"].as_str().expect("ruleId").to_string(),
                r["level"].as_str().expect("level").to_string(),
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    (results, rules)
}

#[test]
fn verify_format_sarif_validates_and_carries_every_finding() {
    need("gcc", "gcc");
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist dir");
    std::fs::create_dir_all(&dist).unwrap();
    compile_c("gcc", &["-static"], NSS_ICONV_C, &dist, "lookup");
    compile_c("gcc", &[], HELLO_C, &dist, "dynamic");
    compile_c("gcc", &["-static"], HELLO_C, &dist, "clean");
    // A truncated ELF: verify reports it as unreadable.
    std::fs::write(dist.join("broken"), b"\x7fELF\x02\x01\x01").unwrap();

    let run = staticpack(
        tmp.path(),
        &[
            "verify",
            "--require",
            "static",
            "--format",
            "sarif",
            "dist dir",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    validate(&run.stdout, tmp.path());
    let log: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let (results, rules) = results_of(&log);
    let found: BTreeSet<(&str, &str, &str)> = results
        .iter()
        .map(|(r, l, u)| (r.as_str(), l.as_str(), u.as_str()))
        .collect();
    let expected: BTreeSet<(&str, &str, &str)> = [
        ("nss-hazard", "error", "dist%20dir/lookup"),
        ("gconv-hazard", "warning", "dist%20dir/lookup"),
        ("dynamic", "error", "dist%20dir/dynamic"),
        ("unreadable-file", "error", "dist%20dir/broken"),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, expected, "{results:#?}");
    let used: BTreeSet<String> = results.iter().map(|r| r.0.clone()).collect();
    assert_eq!(rules, used);

    // --json and --format json are the same output; --json with --format is a usage error.
    let a = staticpack(tmp.path(), &["verify", "--json", "dist dir/clean"]);
    let b = staticpack(
        tmp.path(),
        &["verify", "--format", "json", "dist dir/clean"],
    );
    assert_eq!((a.code, &a.stdout), (0, &b.stdout));
    let both = staticpack(
        tmp.path(),
        &["verify", "--json", "--format", "sarif", "dist dir/clean"],
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    // Nothing to report is still a valid log, with no results.
    let clean = staticpack(
        tmp.path(),
        &["verify", "--format", "sarif", "dist dir/clean"],
    );
    assert_eq!(clean.code, 0);
    validate(&clean.stdout, tmp.path());
    let (none, _) = results_of(&serde_json::from_str(&clean.stdout).unwrap());
    assert!(none.is_empty(), "{none:?}");
}

fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("running the tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_format_sarif_locates_an_images_files_inside_it() {
    need("gcc", "gcc");
    need("umoci", "umoci");
    let tmp = tempfile::tempdir().unwrap();
    let iconv = compile_c("gcc", &["-static"], NSS_ICONV_C, tmp.path(), "lookup");
    let layout = tmp.path().join("layout");
    let image = format!("{}:img", layout.display());
    tool(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    );
    tool(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = tmp.path().join("bundle");
    tool(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
    // The host's dynamic /bin/true without its loader: the entrypoint will not start.
    std::fs::copy("/bin/true", rootfs.join("app")).unwrap();
    std::fs::copy(&iconv, rootfs.join("usr/bin/lookup")).unwrap();
    tool(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    tool(Command::new("umoci").args(["config", "--image", &image, "--config.entrypoint=/app"]));

    let arg = format!("oci:{image}");
    let run = staticpack(tmp.path(), &["verify", "--format", "sarif", &arg]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    validate(&run.stdout, tmp.path());
    let log: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let (results, rules) = results_of(&log);
    let has = |rule: &str, uri: &str| results.iter().any(|(r, _, u)| r == rule && u == uri);
    assert!(has("dynamic", "app"), "{results:#?}");
    assert!(has("entrypoint-will-not-start", "app"), "{results:#?}");
    assert!(has("nss-hazard", "usr/bin/lookup"), "{results:#?}");
    assert!(has("gconv-hazard", "usr/bin/lookup"), "{results:#?}");
    assert!(rules.contains("entrypoint-will-not-start"));
    for r in log["runs"][0]["results"].as_array().unwrap() {
        assert_eq!(r["properties"]["image"], arg.as_str());
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
            "IMAGEROOT"
        );
    }
    assert!(log["runs"][0]["originalUriBaseIds"]["IMAGEROOT"].is_object());
}
