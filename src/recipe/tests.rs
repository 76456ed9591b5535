use super::parse::line_col;
use super::*;

// ---- parse: from strings alone, no folder anywhere ----------------------------------------

const MINIMAL: &str = "name = \"hello\"\n[build]\nlang = \"c\"\nsource = \"src\"\n";
const GO: &str = "name = \"app\"\n[build]\nlang = \"go\"\nsource = \"src\"\n";

fn problem(text: &str) -> Problem {
    match parse(text) {
        Err(p) => p,
        Ok(_) => panic!("recipe text was accepted:\n{text}"),
    }
}

fn parsed(text: &str) -> Parsed {
    parse(text).unwrap_or_else(|p| panic!("{p:?}\n{text}"))
}

#[test]
fn parse_touches_no_disk() {
    // Neither the source, the base folder, nor the extra file exists: parse does not care.
    let p = parsed(&format!(
        "{MINIMAL}[image]\nbase = \"./nowhere\"\nuser = \"nonroot:staff\"\n[[image.files]]\nsrc = \"missing.conf\"\ndst = \"/etc/x\"\n"
    ));
    assert_eq!(p.name, "hello");
    assert_eq!(p.build.source.get_ref(), "src");
    assert_eq!(p.image.files[0].dst, "/etc/x");
}

#[test]
fn name_section() {
    assert_eq!(
        parsed(&MINIMAL.replace("hello", "curl-8.1")).name,
        "curl-8.1"
    );
    for bad in ["", "-x", "A", "a b"] {
        let e = problem(&MINIMAL.replace("hello", bad));
        assert_eq!((e.line, e.column, e.field.as_deref()), (1, 8, Some("name")));
    }
}

#[test]
fn epoch_section() {
    assert_eq!(parsed(MINIMAL).epoch, Epoch::Default);
    let at = |e: &str| parse(&format!("epoch = {e}\n{MINIMAL}")).map(|p| p.epoch);
    assert_eq!(at("1700000000"), Ok(Epoch::Fixed(1_700_000_000)));
    assert_eq!(at("\"git\""), Ok(Epoch::Git));
    assert_eq!(at("253402300799"), Ok(Epoch::Fixed(253_402_300_799)));
    for bad in ["\"yesterday\"", "-5", "253402300800"] {
        let e = at(bad).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, Some("epoch")));
        assert_eq!(e.message, "epoch must be seconds since 1970 or \"git\"");
    }
}

#[test]
fn unknown_field_names_line_column_field_and_suggests() {
    let e = problem("name = \"hello\"\n[build]\nlang = \"c\"\nsorce = \"src\"\n");
    assert_eq!((e.line, e.column), (4, 1));
    assert_eq!(e.field.as_deref(), Some("build.sorce"));
    assert!(e.message.contains("unknown field `sorce`"), "{}", e.message);
    let help = e.help.unwrap();
    assert!(help.starts_with("did you mean `source`?"), "{help}");
    let e = problem(&format!("{MINIMAL}[imgae]\nbase = \"scratch\"\n"));
    assert!(e.message.contains("unknown field `imgae`"), "{}", e.message);
    assert!(e.help.unwrap().contains("did you mean `image`"));
}

#[test]
fn types_enums_and_required_fields() {
    let e = problem("name = \"hello\"\n[build]\nlang = \"c\"\nsource = 7\n");
    assert_eq!((e.line, e.field.as_deref()), (4, Some("build.source")));
    assert!(e.message.contains("expected a string"), "{}", e.message);
    let e = problem(&MINIMAL.replace("lang = \"c\"", "lang = \"cc\""));
    assert_eq!(e.line, 3);
    assert!(e.message.contains("unknown variant `cc`"), "{}", e.message);
    assert_eq!(
        e.help.as_deref(),
        Some("did you mean `c`? allowed: c, go, rust, prebuilt")
    );
    let e = problem("name = \"hello\"\n[build]\nlang = \"c\"\n");
    assert!(
        e.message.contains("missing field `source`"),
        "{}",
        e.message
    );
}

#[test]
fn build_section_is_one_type_per_language() {
    let b = parsed(MINIMAL).build;
    assert_eq!((b.libc, b.link), (LibcChoice::Musl, LinkMode::StaticPie));
    assert_eq!(b.output, "/hello");
    assert!(matches!(b.lang, parse::ParsedLang::C { files: None, .. }));
    let e = problem(&format!("{MINIMAL}libc = \"none\"\n"));
    assert_eq!(e.field.as_deref(), Some("build.libc"));
    assert_eq!(
        e.message,
        "libc = \"none\" is not possible for lang = \"c\""
    );
    let e = problem(&format!("{MINIMAL}output = \"hello\"\n"));
    assert_eq!(e.message, "invalid path \"hello\": it must be absolute");
    let e = problem(&format!("{MINIMAL}output = \"/../x\"\n"));
    assert!(e.message.contains("'..'"));
    let e = problem(&format!("{MINIMAL}tags = [\"x\"]\n"));
    assert_eq!((e.line, e.field.as_deref()), (5, Some("build.tags")));
    let e = problem(&format!("{MINIMAL}cgo = true\n"));
    assert_eq!(e.field.as_deref(), Some("build.cgo"));
    assert_eq!(e.message, "`cgo` is only for lang = \"go\", not \"c\"");
    let e = problem(&format!("{GO}cflags = [\"-O3\"]\n"));
    assert_eq!(e.message, "`cflags` is only for lang = \"c\", not \"go\"");
    let prebuilt = "name = \"app\"\n[build]\nlang = \"prebuilt\"\nsource = \"app\"\n";
    assert!(matches!(
        parsed(prebuilt).build.lang,
        parse::ParsedLang::Prebuilt
    ));
    let e = problem(&format!("{prebuilt}strip = true\n"));
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (
            Some("build.strip"),
            "`strip` is only for lang = \"c\", \"go\" or \"rust\", not \"prebuilt\""
        )
    );
    assert!(e.help.unwrap().contains("strip it before"));
    let e = problem(&format!("{prebuilt}ldflags = [\"-s\"]\n"));
    assert_eq!(e.field.as_deref(), Some("build.ldflags"));
    let e = problem("name = \"x\"\n[build]\nlang = \"c\"\nsource = \"\"\n");
    assert_eq!(e.message, "the source is empty");
}

#[test]
fn go_defaults_and_cgo_combinations() {
    let go = |extra: &str| match parse(&format!("{GO}{extra}")) {
        Ok(Parsed {
            build:
                parse::ParsedBuild {
                    libc,
                    link,
                    lang: parse::ParsedLang::Go { build, .. },
                    ..
                },
            ..
        }) => Ok((libc, link, build)),
        Ok(_) => panic!("not go"),
        Err(e) => Err(e),
    };
    let (libc, link, b) = go("").unwrap();
    assert_eq!(
        (b.cgo, libc, link),
        (false, LibcChoice::None, LinkMode::Static)
    );
    assert_eq!(b.package, ".");
    let (libc, _, b) =
        go("cgo = true\nlink = \"static-pie\"\npackage = \"cmd/app\"\ntags = [\"netgo\"]\n")
            .unwrap();
    assert_eq!((libc, b.package.as_str()), (LibcChoice::Musl, "./cmd/app"));
    assert_eq!(b.tags, vec!["netgo"]);
    let e = go("link = \"static-pie\"\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("build.link"));
    assert!(
        e.message.starts_with("a Go static-pie needs cgo"),
        "{}",
        e.message
    );
    let e = go("cgo = true\nlibc = \"none\"\n").unwrap_err();
    assert_eq!(e.message, "cgo = true links C code, so it needs a libc");
    let e = go("libc = \"musl\"\n").unwrap_err();
    assert_eq!(
        e.message,
        "with cgo = false and link = \"static\" Go links no libc at all"
    );
    for bad in ["../x", "/abs", "./a/../../b"] {
        let e = go(&format!("package = \"{bad}\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("build.package"));
    }
    let e = go("tags = [\"net go\"]\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("build.tags"));
}

#[test]
fn image_section() {
    let image = |extra: &str| parse(&format!("{MINIMAL}[image]\n{extra}")).map(|p| p.image);
    let i = image("base = \"static\"\nuser = \"nonroot\"\nports = [\"53/udp\", \"80\"]").unwrap();
    assert_eq!(i.settings.entrypoint, vec!["/hello"]);
    assert_eq!(i.settings.tag, "latest");
    assert_eq!(
        i.user.map(|(_, u)| u.to_string()).as_deref(),
        Some("nonroot")
    );
    assert_eq!(i.settings.ports, vec!["53/udp", "80/tcp"]);
    assert_eq!(i.settings.compression, crate::image::LayerCompression::Gzip);
    let z = image("compression = \"zstd\"").unwrap();
    assert_eq!(z.settings.compression, crate::image::LayerCompression::Zstd);
    let e = image("compression = \"zstf\"").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.compression"));
    assert_eq!(
        e.help.as_deref(),
        Some("did you mean `zstd`? allowed: gzip, zstd")
    );
    let e = image("stop_signal = \"TERM\"").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.stop_signal"));
    let e = image("ports = [\"0\"]").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.ports"));
    let e = image("env = [\"TZ\"]").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.env"));
    let e = image("tag = \"-x\"").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.tag"));
    let e = image("user = \"1:\"").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.field.as_deref()),
        (6, 8, Some("image.user"))
    );
    assert!(e.message.contains("is not of the form"), "{}", e.message);
    let e = image("[[image.files]]\nsrc = \"a\"\ndst = \"etc/a\"").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.files.dst"));
    let e = image("entrypoint = []").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("image.entrypoint"));
}

#[test]
fn test_section() {
    let test = |extra: &str| parse(&format!("{MINIMAL}[test]\n{extra}")).map(|p| p.test);
    let t = test("args = [\"-v\"]\nexpect_stdout = \"ok\"")
        .unwrap()
        .unwrap();
    assert_eq!((t.args, t.timeout_seconds), (vec!["-v".to_owned()], 30));
    let e = test("args = []\ntimeout_seconds = 3601").unwrap_err();
    assert_eq!((e.line, e.column), (7, 19));
    assert_eq!(e.field.as_deref(), Some("test.timeout_seconds"));
    assert_eq!(e.message, "3601 is out of range");
    assert_eq!(e.help.as_deref(), Some("allowed: 1 to 3600"));
    assert!(parsed(MINIMAL).test.is_none());
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
    assert_eq!(line_col("ab\ncdé\nx", 3), (2, 1));
    assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
    assert_eq!(line_col("ab", 99), (1, 3));
}

#[test]
fn no_panic_on_garbage() {
    for text in ["", "\u{0}", "[", "name = ", "[build]\n[build]\n"] {
        assert!(parse(text).is_err(), "{text:?}");
    }
}

// ---- resolve: against a folder on disk ------------------------------------------------------

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/hello.c"),
        "int main(void){return 0;}\n",
    )
    .unwrap();
    dir
}

fn load_in(dir: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let file = dir.join("recipe.toml");
    std::fs::write(&file, text).unwrap();
    load(dir)
}

fn located(dir: &Path, text: &str) -> Located {
    match load_in(dir, text) {
        Err(RecipeError::Invalid(l)) => *l,
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("recipe was accepted:\n{text}"),
    }
}

fn err(dir: &Path, text: &str) -> Problem {
    located(dir, text).problem
}

fn c_build(r: &Recipe) -> &CBuild {
    match &r.build.lang {
        LangSpec::C(c) => c,
        other => panic!("not C: {other:?}"),
    }
}

#[test]
fn minimal_recipe_gets_the_defaults() {
    let d = fixture();
    let r = load_in(d.path(), MINIMAL).unwrap();
    assert_eq!(r.build.libc, LibcChoice::Musl);
    assert_eq!(r.build.link, LinkMode::StaticPie);
    assert_eq!(r.build.lang_name(), Lang::C);
    assert_eq!(c_build(&r).files, vec!["hello.c"]);
    assert_eq!(r.build.output, "/hello");
    assert_eq!(r.build.source, d.path().join("src"));
    assert_eq!(r.image.settings.entrypoint, vec!["/hello"]);
    assert_eq!(r.image.base, "scratch");
    assert_eq!(r.dir, d.path());
}

#[test]
fn errors_show_file_line_column_and_field() {
    let d = fixture();
    let shown = located(
        d.path(),
        "name = \"hello\"\n[build]\nlang = \"c\"\nsorce = \"src\"\n",
    )
    .to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:4:1: `build.sorce`: unknown field `sorce`",
            d.path().join("recipe.toml").display()
        )),
        "{shown}"
    );
}

#[test]
fn missing_source_names_the_resolved_path() {
    let d = fixture();
    let e = err(d.path(), &MINIMAL.replace("\"src\"", "\"nowhere\""));
    assert_eq!((e.line, e.column), (4, 10));
    assert_eq!(e.field.as_deref(), Some("build.source"));
    assert_eq!(
        e.message,
        format!("{} does not exist", d.path().join("nowhere").display())
    );
    std::fs::write(d.path().join("file"), "").unwrap();
    let e = err(d.path(), &MINIMAL.replace("\"src\"", "\"file\""));
    assert!(e.message.ends_with("is not a folder"), "{}", e.message);
    let e = err(
        d.path(),
        "name = \"x\"\n[build]\nlang = \"prebuilt\"\nsource = \"src\"\n",
    );
    assert!(e.message.ends_with("is not a file"), "{}", e.message);
}

#[test]
fn c_files_are_listed_or_found() {
    let d = fixture();
    std::fs::write(d.path().join("src/b.c"), "").unwrap();
    std::fs::write(d.path().join("src/a.c"), "").unwrap();
    let r = load_in(d.path(), MINIMAL).unwrap();
    assert_eq!(c_build(&r).files, vec!["a.c", "b.c", "hello.c"]);
    let r = load_in(
        d.path(),
        &format!("{MINIMAL}files = [\"hello.c\", \"a.c\"]\n"),
    )
    .unwrap();
    assert_eq!(c_build(&r).files, vec!["a.c", "hello.c"]);
    let e = err(d.path(), &format!("{MINIMAL}files = [\"nope.c\"]\n"));
    assert_eq!((e.line, e.field.as_deref()), (5, Some("build.files")));
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("src")).unwrap();
    let e = err(empty.path(), MINIMAL);
    assert!(
        e.message.starts_with("no *.c file at the top"),
        "{}",
        e.message
    );
}

#[test]
fn c_files_take_globs_and_exclude() {
    let d = fixture();
    for f in ["src/luac.c", "src/lib/a.c", "src/lib/deep/b.c"] {
        std::fs::create_dir_all(d.path().join(f).parent().unwrap()).unwrap();
        std::fs::write(d.path().join(f), "").unwrap();
    }
    let text = format!("{MINIMAL}files = [\"**/*.c\"]\nexclude = [\"luac.c\"]\n");
    let r = load_in(d.path(), &text).unwrap();
    assert_eq!(
        c_build(&r).files,
        vec!["hello.c", "lib/a.c", "lib/deep/b.c"]
    );
    let e = err(
        d.path(),
        &format!("{MINIMAL}files = [\"hello.c\", \"x/*.c\"]\n"),
    );
    assert_eq!(e.field.as_deref(), Some("build.files"));
    assert!(
        e.message.contains("\"x/*.c\" matches no file"),
        "{}",
        e.message
    );
    let e = err(d.path(), &format!("{MINIMAL}exclude = [\"*.c\"]\n"));
    assert!(
        e.message.contains("every matched file is excluded"),
        "{}",
        e.message
    );
}

#[test]
fn file_list_fields_are_checked_as_text() {
    let cases: &[(&str, &str, &str)] = &[
        ("files = [\"../up.c\"]", "build.files", "climbs out"),
        ("files = [\"a[.c\"]", "build.files", "invalid entry"),
        ("exclude = [\"/abs.c\"]", "build.exclude", "absolute"),
        (
            "include_dirs = [\"inc/*\"]",
            "build.include_dirs",
            "not globs",
        ),
        (
            "defines = [\"1BAD\"]",
            "build.defines",
            "not a C macro name",
        ),
    ];
    for (line, field, says) in cases {
        let e = problem(&format!("{MINIMAL}{line}\n"));
        assert_eq!(e.field.as_deref(), Some(*field), "{line}\n{e:?}");
        assert!(e.message.contains(says), "{line}\n{e:?}");
        assert!(e.help.is_some(), "{e:?}");
    }
    let p = parse(&format!(
        "{MINIMAL}include_dirs = [\"./include\"]\ndefines = [\"NDEBUG\", \"V=\\\"1\\\"\"]\n"
    ));
    assert!(p.is_ok(), "{:?}", p.err());
}

#[test]
fn go_package_and_module_are_checked_on_disk() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("src/cmd/app")).unwrap();
    std::fs::write(d.path().join("src/go.mod"), "module x\n").unwrap();
    let r = load_in(d.path(), &format!("{GO}package = \"cmd/app\"\n")).unwrap();
    match &r.build.lang {
        LangSpec::Go(g) => assert_eq!(g.package, "./cmd/app"),
        other => panic!("{other:?}"),
    }
    let e = err(d.path(), &format!("{GO}package = \"cmd/none\"\n"));
    assert_eq!((e.line, e.field.as_deref()), (5, Some("build.package")));
    std::fs::remove_file(d.path().join("src/go.mod")).unwrap();
    let e = err(d.path(), GO);
    assert!(e.message.starts_with("no go.mod in"), "{}", e.message);
}

#[test]
fn bases_resolve_with_suggestions() {
    let d = fixture();
    let e = err(d.path(), &format!("{MINIMAL}[image]\nbase = \"scrach\"\n"));
    assert_eq!(
        e.help.as_deref(),
        Some("did you mean \"scratch\"? available: scratch, static")
    );
    let r = load_in(d.path(), &format!("{MINIMAL}[image]\nbase = \"static\"\n")).unwrap();
    assert_eq!(r.image.base_image.name, "static");
}

#[test]
fn user_group_missing_from_the_base_is_refused_at_validation() {
    let d = fixture();
    let text = format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"nonroot:staff\"\n");
    let l = located(d.path(), &text);
    let e = &l.problem;
    assert_eq!((e.line, e.column), (7, 8));
    assert_eq!(e.field.as_deref(), Some("image.user"));
    assert_eq!(
        e.message,
        "invalid user \"nonroot:staff\": group \"staff\" is not in the image's /etc/group (it has: root, nonroot)"
    );
    assert_eq!(
        e.help.as_deref(),
        Some(
            "use numbers, \"UID\" or \"UID:GID\" like \"65532:65532\", or names of the base: base \"static\" has users root, nonroot and groups root, nonroot"
        )
    );
    let shown = l.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:7:8: `image.user`: ",
            d.path().join("recipe.toml").display()
        )),
        "{shown}"
    );
    let ok = |user: &str| {
        load_in(
            d.path(),
            &format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"{user}\"\n"),
        )
        .map(|r| r.image.user.map(|u| u.to_string()))
        .map_err(|e| e.to_string())
    };
    for user in [
        "nonroot:nonroot",
        "nonroot:0",
        "65532:65532",
        "root",
        "1000",
    ] {
        assert_eq!(ok(user), Ok(Some(user.to_owned())));
    }
    let e = err(d.path(), &format!("{MINIMAL}[image]\nuser = \"nobody\"\n"));
    assert!(
        e.message.contains("the image has no /etc/passwd"),
        "{}",
        e.message
    );
    let e = err(
        d.path(),
        &format!("{MINIMAL}[image]\nbase = \"static\"\nuser = \"nobody\"\n"),
    );
    assert!(
        e.message.contains("is not in the image's /etc/passwd"),
        "{}",
        e.message
    );
}

#[test]
fn the_base_is_loaded_once_with_a_layer_independent_of_the_epoch() {
    let d = fixture();
    let digest = |epoch: &str| {
        let r = load_in(
            d.path(),
            &format!("epoch = {epoch}\n{MINIMAL}[image]\nbase = \"static\"\n"),
        )
        .unwrap();
        let layer = r.image.base_image.layer.unwrap();
        assert_eq!(layer.mtime, crate::image::base::BASE_MTIME);
        let blobs = tempfile::tempdir().unwrap();
        crate::image::layer::write_layer(&layer, blobs.path())
            .unwrap()
            .digest
    };
    assert_eq!(digest("1"), digest("1700000000"));
    assert_eq!(digest("1"), digest("\"git\""));
    let r = load_in(d.path(), MINIMAL).unwrap();
    assert!(r.image.base_image.layer.is_none());
}

#[test]
fn extra_files_and_owners_resolve_against_the_folder_and_base() {
    let d = fixture();
    std::fs::write(d.path().join("app.conf"), "x\n").unwrap();
    let with = |base: &str, owner: &str| {
        format!(
            "{MINIMAL}[image]\nbase = \"{base}\"\n[[image.files]]\nsrc = \"app.conf\"\ndst = \"/etc//app.conf\"\nowner = \"{owner}\"\n"
        )
    };
    let r = load_in(d.path(), &with("static", "nonroot")).unwrap();
    let f = &r.image.files[0];
    assert_eq!(
        (f.uid, f.gid, f.dst.as_str()),
        (65532, 65532, "/etc/app.conf")
    );
    assert_eq!(f.src, d.path().join("app.conf"));
    let r = load_in(d.path(), &with("scratch", "7")).unwrap();
    assert_eq!((r.image.files[0].uid, r.image.files[0].gid), (7, 7));
    let e = err(d.path(), &with("static", "nonroot:staff"));
    assert_eq!(e.field.as_deref(), Some("image.files.owner"));
    assert!(e.message.contains("group \"staff\""), "{}", e.message);
    let e = err(d.path(), &with("scratch", "nonroot"));
    assert!(e.message.contains("no /etc/passwd"), "{}", e.message);
    let e = err(
        d.path(),
        &with("static", "nonroot").replace("app.conf\"\ndst", "gone.conf\"\ndst"),
    );
    assert_eq!(e.field.as_deref(), Some("image.files.src"));
}

#[test]
fn inputs_stay_in_the_recipe_folder_unless_allowed() {
    let outer = tempfile::tempdir().unwrap();
    let d = outer.path().join("recipe");
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(d.join("src/hello.c"), "int main(void){return 0;}\n").unwrap();
    std::fs::create_dir_all(outer.path().join("shared")).unwrap();
    std::fs::write(outer.path().join("shared/lib.c"), "").unwrap();
    std::fs::write(outer.path().join("secret"), "key\n").unwrap();

    // A source folder beside the recipe's.
    let e = err(&d, &MINIMAL.replace("\"src\"", "\"../shared\""));
    assert_eq!((e.line, e.field.as_deref()), (4, Some("build.source")));
    assert!(
        e.message.contains("outside the recipe's folder"),
        "{}",
        e.message
    );
    assert_eq!(
        e.help.as_deref(),
        Some(
            "keep the recipe's inputs in its folder, or allow this one explicitly: allow_outside = [\"../shared\"]"
        )
    );
    let allowed = format!(
        "allow_outside = [\"../shared\"]\n{}",
        MINIMAL.replace("\"src\"", "\"../shared\"")
    );
    let r = load_in(&d, &allowed).unwrap();
    assert_eq!(
        r.allow_outside,
        vec![outer.path().join("shared").canonicalize().unwrap()]
    );

    // An extra file that is a symlink to a host file.
    std::os::unix::fs::symlink(outer.path().join("secret"), d.join("app.key")).unwrap();
    let with_key = format!("{MINIMAL}[[image.files]]\nsrc = \"app.key\"\ndst = \"/app.key\"\n");
    let e = err(&d, &with_key);
    assert_eq!((e.line, e.field.as_deref()), (6, Some("image.files.src")));
    assert!(e.message.contains("secret, outside"), "{}", e.message);
    let secret = outer.path().join("secret");
    let r = load_in(
        &d,
        &format!("allow_outside = [\"{}\"]\n{with_key}", secret.display()),
    )
    .unwrap();
    assert_eq!(r.image.files[0].src, d.join("app.key"));

    // A symlink inside the source tree that leads out of it; a dangling one reads nothing.
    std::os::unix::fs::symlink("/nonexistent/x", d.join("src/dangling")).unwrap();
    assert!(load_in(&d, MINIMAL).is_ok());
    std::fs::create_dir_all(d.join("src/deep")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret"), d.join("src/deep/k.h")).unwrap();
    let e = err(&d, MINIMAL);
    assert_eq!(e.field.as_deref(), Some("build.source"));
    assert!(e.message.contains("src/deep/k.h"), "{}", e.message);

    // An allowed path must exist.
    let e = err(&d, &format!("allow_outside = [\"../nope\"]\n{MINIMAL}"));
    assert_eq!((e.line, e.field.as_deref()), (1, Some("allow_outside")));
}

#[test]
fn a_base_folder_keeps_its_files_inside() {
    let outer = tempfile::tempdir().unwrap();
    let d = outer.path().join("recipe");
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(d.join("src/hello.c"), "int main(void){return 0;}\n").unwrap();
    std::fs::create_dir_all(d.join("mybase")).unwrap();
    std::fs::write(outer.path().join("secret"), "key\n").unwrap();
    std::fs::write(
        d.join("mybase/base.toml"),
        "name = \"mybase\"\n[[files]]\npath = \"/etc/key\"\nsource = \"../../secret\"\nmode = 0o644\n",
    )
    .unwrap();
    let e = err(&d, &format!("{MINIMAL}[image]\nbase = \"./mybase\"\n"));
    assert_eq!(e.field.as_deref(), Some("image.base"));
    assert!(e.message.contains("outside"), "{}", e.message);
    std::fs::write(
        d.join("mybase/base.toml"),
        "name = \"mybase\"\n[[files]]\npath = \"/etc/key\"\nsource = \"key\"\nmode = 0o644\n",
    )
    .unwrap();
    std::fs::write(d.join("mybase/key"), "fine\n").unwrap();
    assert!(load_in(&d, &format!("{MINIMAL}[image]\nbase = \"./mybase\"\n")).is_ok());
    // A tree from any host folder: refused, whatever its pin.
    std::fs::write(
        d.join("mybase/base.toml"),
        "name = \"mybase\"\n[[trees]]\npath = \"/etc/apt\"\nsource = \"/etc/apt\"\ndigest = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n",
    )
    .unwrap();
    let e = err(&d, &format!("{MINIMAL}[image]\nbase = \"./mybase\"\n"));
    assert!(
        e.message.contains("/etc/apt") && e.message.contains("outside"),
        "{}",
        e.message
    );
}

#[test]
fn an_absolute_extra_file_is_refused_unless_allowed() {
    let d = fixture();
    let text = format!("{MINIMAL}[[image.files]]\nsrc = \"/etc/shadow\"\ndst = \"/etc/shadow\"\n");
    let e = err(d.path(), &text);
    assert_eq!(e.field.as_deref(), Some("image.files.src"));
    assert!(
        e.message.contains("outside the recipe's folder"),
        "{}",
        e.message
    );
    let r = load_in(
        d.path(),
        &format!("allow_outside = [\"/etc/shadow\"]\n{text}"),
    )
    .unwrap();
    assert_eq!(r.allow_outside, vec![PathBuf::from("/etc/shadow")]);
}

#[test]
fn every_build_field_is_used_by_a_language_or_refused_by_name() {
    // (field, a valid value, the languages that use it, what else it needs where it is used)
    let fields: &[(&str, &str, &[&str], &str)] = &[
        ("system", "\"make\"", &["c"], "artifact = \"x\""),
        (
            "configure_args",
            "[\"--x\"]",
            &["c"],
            "system = \"autotools\"\nartifact = \"x\"",
        ),
        (
            "make_args",
            "[\"all\"]",
            &["c"],
            "system = \"make\"\nartifact = \"x\"",
        ),
        ("deps", "[{ recipe = \"../zlib\" }]", &["c"], ""),
    ];
    let plain: &[(&str, &str, &[&str])] = &[
        ("files", "[\"a.c\"]", &["c"]),
        ("exclude", "[\"b.c\"]", &["c"]),
        ("include_dirs", "[\"include\"]", &["c"]),
        ("defines", "[\"NDEBUG\"]", &["c"]),
        ("cflags", "[\"-Wall\"]", &["c"]),
        ("ldflags", "[\"-s\"]", &["c", "go"]),
        ("strip", "true", &["c", "go", "rust"]),
        ("package", "\"app\"", &["go", "rust"]),
        ("cgo", "false", &["go"]),
        ("tags", "[\"netgo\"]", &["go"]),
        ("bin", "\"app\"", &["rust"]),
        ("features", "[\"tls\"]", &["rust"]),
        ("default_features", "false", &["rust"]),
        ("profile", "\"dist\"", &["rust"]),
        ("output", "\"/app\"", &["c", "go", "rust", "prebuilt"]),
        ("link", "\"static\"", &["c", "go", "rust", "prebuilt"]),
    ];
    let fields = fields
        .iter()
        .copied()
        .chain(plain.iter().map(|(f, v, u)| (*f, *v, *u, "")));
    for (field, value, used_by, needs) in fields {
        for lang in ["c", "go", "rust", "prebuilt"] {
            let needs = if used_by.contains(&lang) { needs } else { "" };
            let text = format!(
                "name = \"x\"\n[build]\nlang = \"{lang}\"\nsource = \"src\"\n{field} = {value}\n{needs}\n"
            );
            match parse(&text) {
                Ok(_) => assert!(
                    used_by.contains(&lang),
                    "`{field}` was accepted for {lang}, which does not use it"
                ),
                Err(e) => {
                    assert!(!used_by.contains(&lang), "{lang} refused `{field}`: {e:?}");
                    assert_eq!(e.field.as_deref(), Some(format!("build.{field}").as_str()));
                    assert!(e.message.contains("is only for lang ="), "{}", e.message);
                }
            }
        }
    }
}

// ---- archive sources ------------------------------------------------------------------------

const SHA: &str = "9a93b2b7e9f1fc4ed0d2b8b2b4cf5d0c0e6f55b1d6b4e3c2a1f0e9d8c7b6a5f4";

fn with_source(lang: &str, source: &str) -> String {
    format!("name = \"z\"\n[build]\nlang = \"{lang}\"\nsource = {source}\n")
}

#[test]
fn archive_and_url_sources_parse_with_their_defaults() {
    let p = parsed(&with_source(
        "c",
        &format!("{{ archive = \"zlib-1.3.tar.gz\", sha256 = \"{SHA}\" }}"),
    ));
    assert_eq!(p.build.source.get_ref(), "zlib-1.3.tar.gz");
    let a = p.build.archive.unwrap();
    assert!(!a.is_url);
    assert_eq!(a.sha256.hex(), SHA);
    assert_eq!(a.strip_components, 1);
    assert_eq!(a.format, ArchiveFormat::TarGz);

    let p = parsed(&with_source(
        "go",
        &format!(
            "{{ url = \"https://example.org/x-1.0.tar.xz?dl=1\", sha256 = \"sha256:{}\", strip_components = 0 }}",
            SHA.to_uppercase()
        ),
    ));
    let a = p.build.archive.unwrap();
    assert!(a.is_url);
    assert_eq!(
        a.sha256.hex(),
        SHA,
        "a sha256: prefix and upper case are fine"
    );
    assert_eq!((a.strip_components, a.format), (0, ArchiveFormat::TarXz));
    for (name, format) in [
        ("a.tgz", ArchiveFormat::TarGz),
        ("a.tar.bz2", ArchiveFormat::TarBz2),
        ("a.tar", ArchiveFormat::Tar),
    ] {
        assert_eq!(ArchiveFormat::from_name(name), Some(format));
    }
}

#[test]
fn archive_source_mistakes_name_their_field() {
    let cases = [
        (
            format!("{{ archive = \"a.tar.gz\", sha256 = \"{SHA}\", strip = 2 }}"),
            "build.source.strip",
            "unknown field `strip`",
        ),
        (
            "{ archive = \"a.tar.gz\" }".to_owned(),
            "build.source.sha256",
            "pinned by its sha256",
        ),
        (
            "{ archive = \"a.tar.gz\", sha256 = \"abc\" }".to_owned(),
            "build.source.sha256",
            "not a sha256",
        ),
        (
            format!("{{ archive = \"a.zip\", sha256 = \"{SHA}\" }}"),
            "build.source.archive",
            "not a known archive type",
        ),
        (
            format!("{{ url = \"ftp://h/a.tar.gz\", sha256 = \"{SHA}\" }}"),
            "build.source.url",
            "not an http(s) URL",
        ),
        (
            format!("{{ archive = \"a.tar\", url = \"https://h/a.tar\", sha256 = \"{SHA}\" }}"),
            "build.source",
            "both",
        ),
        (
            format!("{{ sha256 = \"{SHA}\" }}"),
            "build.source",
            "needs `archive` or `url`",
        ),
        (
            format!("{{ archive = \"a.tar\", sha256 = \"{SHA}\", strip_components = -1 }}"),
            "build.source.strip_components",
            "0 to 64",
        ),
        (
            format!("{{ archive = 5, sha256 = \"{SHA}\" }}"),
            "build.source.archive",
            "expected a string",
        ),
    ];
    for (source, field, message) in cases {
        let e = problem(&with_source("c", &source));
        assert_eq!((e.line, e.field.as_deref()), (4, Some(field)), "{source}");
        assert!(e.message.contains(message), "{source}: {}", e.message);
    }
    let e = problem(&with_source(
        "c",
        &format!("{{ archive = \"a.tar\", sha256 = \"{SHA}\", strip_componets = 1 }}"),
    ));
    assert!(
        e.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `strip_components`?"),
        "{e:?}"
    );
    let e = problem(&with_source(
        "prebuilt",
        &format!("{{ archive = \"a.tar\", sha256 = \"{SHA}\" }}"),
    ));
    assert!(e.message.contains("not \"prebuilt\""), "{}", e.message);
}

#[test]
fn an_archive_resolves_as_a_file_inside_the_recipe_folder() {
    let d = fixture();
    std::fs::write(d.path().join("a.tar.gz"), "x").unwrap();
    let text = with_source(
        "c",
        &format!("{{ archive = \"a.tar.gz\", sha256 = \"{SHA}\" }}"),
    );
    let r = load_in(d.path(), &text).unwrap();
    let a = r.build.archive.as_ref().unwrap();
    assert_eq!(a.origin, ArchiveOrigin::File(d.path().join("a.tar.gz")));
    // Nothing is unpacked yet: the files are found afterwards.
    assert!(c_build(&r).files.is_empty());

    let e = err(d.path(), &text.replace("a.tar.gz", "missing.tar.gz"));
    assert_eq!(e.field.as_deref(), Some("build.source.archive"));
    assert!(e.message.contains("is not a file"), "{}", e.message);

    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("b.tar.gz"), "x").unwrap();
    std::os::unix::fs::symlink(outer.path().join("b.tar.gz"), d.path().join("b.tar.gz")).unwrap();
    let e = err(d.path(), &text.replace("a.tar.gz", "b.tar.gz"));
    assert!(
        e.message.contains("outside the recipe's folder"),
        "{}",
        e.message
    );

    let url = with_source(
        "go",
        &format!("{{ url = \"https://h/x.tgz\", sha256 = \"{SHA}\" }}"),
    );
    let r = load_in(d.path(), &url).unwrap();
    assert_eq!(
        r.build.archive.unwrap().origin,
        ArchiveOrigin::Url("https://h/x.tgz".into())
    );
    let e = err(d.path(), &format!("epoch = \"git\"\n{url}"));
    assert_eq!(e.field.as_deref(), Some("epoch"));
}

// ---- commands, artifact, install, image.symlinks ------------------------------------------

const CMDS: &str = "name = \"jq\"\n[build]\nlang = \"c\"\nsource = \"src\"\ncommands = [\"./configure\", \"make -j$JOBS\"]\n";

fn cmds(p: &Parsed) -> &Commands {
    match &p.build.lang {
        super::parse::ParsedLang::C { build, .. } => build.commands.as_ref().unwrap(),
        other => panic!("not C: {other:?}"),
    }
}

#[test]
fn commands_with_artifact_or_install() {
    let p = parsed(&format!("{CMDS}artifact = \"src/jq\"\n"));
    assert_eq!(cmds(&p).lines, ["./configure", "make -j$JOBS"]);
    assert_eq!(cmds(&p).artifact.as_deref(), Some("src/jq"));
    assert_eq!(p.build.output, "/jq");
    let p = parsed(&format!(
        "{CMDS}install = true\n[image]\nentrypoint = [\"/usr/bin/jq\"]\n"
    ));
    assert_eq!(cmds(&p).artifact, None);
}

#[test]
fn commands_refusals_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"s\"\nartifact = \"x\"\n",
            "build.artifact",
            "only for a build with `commands`",
        ),
        (
            "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"s\"\ninstall = true\n[image]\nentrypoint = [\"/x\"]\n",
            "build.install",
            "only for a build with `commands`",
        ),
        (
            &format!("{CMDS}files = [\"a.c\"]\nartifact = \"x\"\n"),
            "build.files",
            "is for a file-list build",
        ),
        (
            &format!("{CMDS}defines = [\"X\"]\nartifact = \"x\"\n"),
            "build.defines",
            "is for a file-list build",
        ),
        (CMDS, "build.commands", "needs `artifact` or install = true"),
        (
            "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"s\"\ncommands = []\nartifact = \"x\"\n",
            "build.commands",
            "empty",
        ),
        (
            "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"s\"\ncommands = [\"make\", \" \"]\nartifact = \"x\"\n",
            "build.commands",
            "an empty command",
        ),
        (
            &format!("{CMDS}artifact = \"../x\"\n"),
            "build.artifact",
            "inside the build tree",
        ),
        (
            &format!("{CMDS}artifact = \"/usr/bin/x\"\n"),
            "build.artifact",
            "inside the build tree",
        ),
        (
            &format!("{CMDS}artifact = \"x\"\ninstall = true\n[image]\nentrypoint = [\"/x\"]\n"),
            "build.artifact",
            "exclude each other",
        ),
        (
            &format!("{CMDS}install = true\n"),
            "build.install",
            "needs [image] entrypoint",
        ),
        (
            &format!("{CMDS}install = true\noutput = \"/x\"\n[image]\nentrypoint = [\"/x\"]\n"),
            "build.output",
            "no single output",
        ),
        (
            &format!("{CMDS}install = true\nstrip = true\n[image]\nentrypoint = [\"/x\"]\n"),
            "build.strip",
            "not an installed tree",
        ),
        (
            "name = \"x\"\n[build]\nlang = \"go\"\nsource = \"s\"\ncommands = [\"make\"]\n",
            "build.commands",
            "only for lang = \"c\"",
        ),
    ];
    for (text, field, says) in cases {
        let e = problem(text);
        assert_eq!(e.field.as_deref(), Some(*field), "{text}\n{e:?}");
        assert!(e.message.contains(says), "{text}\n{e:?}");
        assert!(e.help.is_some(), "{e:?}");
    }
}

#[test]
fn image_symlinks_are_checked_like_files() {
    let p = parsed(&format!(
        "{MINIMAL}[[image.symlinks]]\npath = \"/bin//sh\"\ntarget = \"busybox\"\n"
    ));
    assert_eq!(
        p.image.symlinks,
        [Symlink {
            path: "/bin/sh".into(),
            target: "busybox".into()
        }]
    );
    for (link, field) in [
        ("path = \"bin/sh\"\ntarget = \"b\"", "image.symlinks.path"),
        (
            "path = \"/bin/../sh\"\ntarget = \"b\"",
            "image.symlinks.path",
        ),
        ("path = \"/\"\ntarget = \"b\"", "image.symlinks.path"),
        ("path = \"/bin/sh\"\ntarget = \"\"", "image.symlinks.target"),
    ] {
        let e = problem(&format!("{MINIMAL}[[image.symlinks]]\n{link}\n"));
        assert_eq!(e.field.as_deref(), Some(field), "{link}: {e:?}");
    }
    let e = problem(&format!("{MINIMAL}[[image.symlinks]]\npath = \"/a\"\n"));
    assert!(e.message.contains("target"), "{e:?}");
}

#[test]
fn a_commands_build_resolves_without_c_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("src")).unwrap();
    std::fs::write(d.path().join("src/Makefile"), "all:\n").unwrap();
    let r = load_in(d.path(), &format!("{CMDS}artifact = \"jq\"\n")).unwrap();
    assert!(c_build(&r).files.is_empty());
    assert!(c_build(&r).commands.is_some());
}

// ---- Rust ----------------------------------------------------------------------------------

fn rust(extra: &str) -> Result<Parsed, Problem> {
    parse(&format!(
        "name = \"r\"\n[build]\nlang = \"rust\"\nsource = \"src\"\n{extra}"
    ))
}

fn rust_spec(extra: &str) -> (LibcChoice, LinkMode, RustBuild) {
    let p = rust(extra).unwrap();
    match p.build.lang {
        super::parse::ParsedLang::Rust { build } => (p.build.libc, p.build.link, build),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rust_defaults_to_a_musl_static_pie_release_build() {
    let (libc, link, b) = rust_spec("");
    assert_eq!((libc, link), (LibcChoice::Musl, LinkMode::StaticPie));
    assert_eq!(
        b,
        RustBuild {
            package: None,
            bin: None,
            features: Vec::new(),
            default_features: true,
            profile: "release".into(),
            strip: false,
        }
    );
    let (libc, link, b) = rust_spec(
        "libc = \"glibc\"\nlink = \"static\"\npackage = \"tool\"\nbin = \"t\"\nfeatures = [\"a\", \"dep/b\"]\ndefault_features = false\nprofile = \"dist\"\nstrip = true\n",
    );
    assert_eq!((libc, link), (LibcChoice::Glibc, LinkMode::Static));
    assert_eq!(b.package.as_deref(), Some("tool"));
    assert_eq!(
        (b.features.len(), b.default_features, b.strip),
        (2, false, true)
    );
    let host = Platform::host_or_default();
    assert_eq!(
        RustBuild::target(LibcChoice::Musl, &host),
        format!("{}-unknown-linux-musl", std::env::consts::ARCH)
    );
    assert_eq!(
        RustBuild::target(LibcChoice::Glibc, &host),
        format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
    );
    let arm64: Platform = "linux/arm64".parse().unwrap();
    assert_eq!(
        RustBuild::target(LibcChoice::Musl, &arm64),
        "aarch64-unknown-linux-musl"
    );
}

#[test]
fn rust_mistakes_name_their_field() {
    for (extra, field) in [
        ("libc = \"none\"\n", "build.libc"),
        ("link = \"dynamic\"\n", "build.link"),
        ("package = \"../x\"\n", "build.package"),
        ("bin = \"a b\"\n", "build.bin"),
        ("profile = \"--release\"\n", "build.profile"),
        ("features = [\"a,b\"]\n", "build.features"),
        ("ldflags = [\"-s\"]\n", "build.ldflags"),
    ] {
        let e = rust(extra).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{extra}: {e:?}");
        assert!(e.help.is_some(), "{extra}: {e:?}");
    }
}

#[test]
fn a_rust_source_needs_cargo_toml_and_cargo_lock() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    let text = "name = \"r\"\n[build]\nlang = \"rust\"\nsource = \"src\"\n";
    let e = err(d.path(), text);
    assert!(e.message.contains("no Cargo.toml"), "{e:?}");
    std::fs::write(d.path().join("src/Cargo.toml"), "[package]\nname = \"r\"\n").unwrap();
    let e = err(d.path(), text);
    assert_eq!(e.field.as_deref(), Some("build.source"));
    assert!(
        e.message.contains("no Cargo.lock") && e.help.unwrap().contains("cargo generate-lockfile"),
        "{}",
        e.message
    );
    std::fs::write(d.path().join("src/Cargo.lock"), "version = 4\n").unwrap();
    let r = load_in(d.path(), text).unwrap();
    assert!(matches!(r.build.lang, LangSpec::Rust(_)));
}

// ---- the NSS rule in the recipe ------------------------------------------------------------

#[test]
fn allow_nss_hazards_needs_a_reason_and_a_glibc_build() {
    let c = |extra: &str| {
        parse(&format!(
            "name = \"n\"\n[build]\nlang = \"c\"\nsource = \"src\"\n{extra}"
        ))
    };
    let p =
        c("libc = \"glibc\"\nallow_nss_hazards = true\nreason = \" only uid 0, no lookups \"\n")
            .unwrap();
    assert_eq!(p.nss_allowed.as_deref(), Some("only uid 0, no lookups"));
    assert_eq!(c("libc = \"glibc\"\n").unwrap().nss_allowed, None);
    for (extra, field, says) in [
        (
            "libc = \"glibc\"\nallow_nss_hazards = true\n",
            "build.reason",
            "needs a `reason`",
        ),
        (
            "libc = \"glibc\"\nallow_nss_hazards = true\nreason = \" \"\n",
            "build.reason",
            "empty",
        ),
        (
            "libc = \"glibc\"\nreason = \"x\"\n",
            "build.reason",
            "not set",
        ),
        (
            "allow_nss_hazards = true\nreason = \"x\"\n",
            "build.allow_nss_hazards",
            "no glibc",
        ),
    ] {
        let e = c(extra).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{extra}: {e:?}");
        assert!(e.message.contains(says), "{extra}: {}", e.message);
    }
}

// ---- system = "make" | "autotools" | "cmake" | "meson" --------------------------------------

const SYS: &str = "name = \"x\"\n[build]\nlang = \"c\"\nsource = \"src\"\n";

#[test]
fn a_system_parses_with_its_arguments_and_no_command_lines() {
    let p = parsed(&format!(
        "{SYS}system = \"autotools\"\nconfigure_args = [\"--disable-docs\"]\nmake_args = [\"jq\", \"V=1\"]\nartifact = \"jq\"\n"
    ));
    let c = cmds(&p);
    assert!(c.lines.is_empty());
    assert_eq!(
        c.system,
        Some(SystemBuild {
            system: BuildSystem::Autotools,
            configure_args: vec!["--disable-docs".into()],
            make_args: vec!["jq".into(), "V=1".into()],
        })
    );
    let p = parsed(&format!(
        "{SYS}system = \"meson\"\ninstall = true\n[image]\nentrypoint = [\"/usr/bin/x\"]\n"
    ));
    assert_eq!(cmds(&p).artifact, None);
}

#[test]
fn system_refusals_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "system = \"make\"\ncommands = [\"make\"]\nartifact = \"x\"\n",
            "build.system",
            "`system` and `commands` exclude each other",
        ),
        (
            "system = \"cmake\"\nfiles = [\"a.c\"]\nartifact = \"x\"\n",
            "build.system",
            "`system` and `files` exclude each other",
        ),
        (
            "system = \"make\"\n",
            "build.system",
            "needs `artifact` or install = true",
        ),
        (
            "configure_args = [\"--x\"]\n",
            "build.configure_args",
            "only for a build with `system`",
        ),
        (
            "commands = [\"make\"]\nmake_args = [\"all\"]\nartifact = \"x\"\n",
            "build.make_args",
            "only for a build with `system`",
        ),
        (
            "system = \"make\"\nconfigure_args = [\"--x\"]\nartifact = \"x\"\n",
            "build.configure_args",
            "no configure step",
        ),
        (
            "system = \"cmake\"\nmake_args = [\"VERBOSE=1\"]\nartifact = \"x\"\n",
            "build.make_args",
            "the targets to build",
        ),
        (
            "system = \"autotools\"\nmake_args = [\"\"]\nartifact = \"x\"\n",
            "build.make_args",
            "invalid argument",
        ),
        (
            "system = \"scons\"\nartifact = \"x\"\n",
            "build.system",
            "unknown variant",
        ),
    ];
    for (rest, field, says) in cases {
        let text = format!("{SYS}{rest}");
        let e = problem(&text);
        assert_eq!(e.field.as_deref(), Some(*field), "{text}\n{e:?}");
        assert!(e.message.contains(says), "{text}\n{e:?}");
        assert!(e.help.is_some(), "{e:?}");
    }
}

// ---- [[build.deps]] -------------------------------------------------------------------------

/// A library recipe in `dir/name`: install = true and no [image], as a dependency needs.
fn library(dir: &Path, name: &str, extra: &str) {
    std::fs::create_dir_all(dir.join(name).join("src")).unwrap();
    std::fs::write(
        dir.join(name).join("recipe.toml"),
        format!("name = \"{name}\"\n[build]\nlang = \"c\"\nsource = \"src\"\nsystem = \"make\"\ninstall = true\n{extra}"),
    )
    .unwrap();
}

fn app_with(deps: &[&str]) -> String {
    let mut t = format!("{SYS}system = \"make\"\nartifact = \"app\"\n");
    for d in deps {
        t.push_str(&format!("[[build.deps]]\nrecipe = \"{d}\"\n"));
    }
    t
}

#[test]
fn dependencies_load_from_a_folder_or_a_file_transitively() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("src")).unwrap();
    library(d.path(), "zlib", "");
    library(d.path(), "png", "[[build.deps]]\nrecipe = \"../zlib\"\n");
    std::fs::write(
        d.path().join("png/recipe.toml"),
        std::fs::read_to_string(d.path().join("png/recipe.toml"))
            .unwrap()
            .replace("[build]", "allow_outside = [\"../zlib\"]\n[build]"),
    )
    .unwrap();
    let r = load_in(d.path(), &app_with(&["png", "zlib/recipe.toml"])).unwrap();
    let names: Vec<&str> = r.build.deps.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["png", "zlib"]);
    assert_eq!(r.build.deps[0].build.deps[0].name, "zlib");
}

#[test]
fn dependency_refusals_name_the_field() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("src")).unwrap();
    std::fs::create_dir_all(d.path().join("tool/src")).unwrap();
    std::fs::write(
        d.path().join("tool/recipe.toml"),
        "name = \"tool\"\n[build]\nlang = \"c\"\nsource = \"src\"\nsystem = \"make\"\nartifact = \"t\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("broken")).unwrap();
    std::fs::write(d.path().join("broken/recipe.toml"), "name = \"broken\"\n").unwrap();
    std::fs::create_dir_all(d.path().join("empty")).unwrap();
    for (dep, says) in [
        ("nowhere", "does not exist"),
        ("tool", "is not a library recipe"),
        ("broken", "is not valid"),
        ("empty", "empty/recipe.toml: No such file"),
    ] {
        let e = err(d.path(), &app_with(&[dep]));
        assert_eq!(
            e.field.as_deref(),
            Some("build.deps.recipe"),
            "{dep}: {e:?}"
        );
        assert!(e.message.contains(says), "{dep}: {e:?}");
        assert!(e.help.is_some(), "{e:?}");
    }
    let e = problem(&app_with(&["zlib", "zlib/"]));
    assert_eq!(e.field.as_deref(), Some("build.deps.recipe"));
    assert!(e.message.contains("listed twice"), "{e:?}");
    // The nested error names the dependency's own file and field.
    let e = err(d.path(), &app_with(&["broken"]));
    assert!(e.message.contains("broken/recipe.toml"), "{e:?}");
}

#[test]
fn image_platforms_choose_the_build_platform() {
    let p = parsed(&format!(
        "{MINIMAL}[image]\nplatforms = [\"linux/arm64\"]\n"
    ));
    assert_eq!(p.build.platform.to_string(), "linux/arm64");
    assert_eq!(parsed(MINIMAL).build.platform, Platform::host_or_default());
    assert_eq!(
        parsed(MINIMAL).build.platforms,
        vec![Platform::host_or_default()]
    );
    // Several: the toolchain builds the first; the pipeline builds each in turn.
    let two = parsed(&format!(
        "{MINIMAL}[image]\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n"
    ));
    assert_eq!(two.build.platform.to_string(), "linux/arm64");
    let names: Vec<String> = two.build.platforms.iter().map(|p| p.to_string()).collect();
    assert_eq!(names, ["linux/arm64", "linux/amd64"]);
    for (list, says) in [
        ("[\"linux/s390x\"]", "unknown architecture"),
        ("[\"linux/arm64\", \"linux/aarch64\"]", "listed twice"),
        ("[]", "the list is empty"),
    ] {
        let e = problem(&format!("{MINIMAL}[image]\nplatforms = {list}\n"));
        assert_eq!(e.field.as_deref(), Some("image.platforms"), "{list}");
        assert!(e.message.contains(says), "{list}: {e:?}");
    }
}

#[test]
fn a_prebuilt_names_one_binary_per_platform() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("app-amd64"), "x").unwrap();
    std::fs::write(d.path().join("app-arm64"), "y").unwrap();
    let text = "name = \"app\"\n[build]\nlang = \"prebuilt\"\nsource = { \"linux/amd64\" = \"app-amd64\", \"linux/arm64\" = \"app-arm64\" }\n";
    let mut r = load_in(d.path(), text).unwrap();
    let arm64: Platform = "linux/arm64".parse().unwrap();
    let amd64: Platform = "linux/amd64".parse().unwrap();
    assert_eq!(
        r.build.source,
        r.build.source_for(&r.build.platform).unwrap()
    );
    r.build.set_platform(&arm64);
    assert_eq!(r.build.source, d.path().join("app-arm64"));
    r.build.set_platform(&amd64);
    assert_eq!(r.build.source, d.path().join("app-amd64"));
    r.build.set_platforms(&[arm64.clone(), amd64.clone()]);
    assert_eq!(r.build.source, d.path().join("app-arm64"));
    assert_eq!(r.build.platforms, [arm64.clone(), amd64.clone()]);
    let e = err(
        d.path(),
        "name = \"app\"\n[build]\nlang = \"prebuilt\"\nsource = { \"linux/arm64\" = \"gone\" }\n",
    );
    assert_eq!(e.field.as_deref(), Some("build.source.\"linux/arm64\""));
    assert!(e.message.contains("is not a file"), "{e:?}");
    let e = problem(
        "name = \"app\"\n[build]\nlang = \"prebuilt\"\nsource = { \"linux/mips\" = \"a\" }\n",
    );
    assert!(e.message.contains("unknown architecture"), "{e:?}");
}
