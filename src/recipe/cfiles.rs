//! C file lists: paths and globs checked as text when the recipe is parsed, matched against the
//! source folder (or the unpacked archive) when it is resolved.

use super::FilePatterns;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// Why a `files`, `exclude` or `include_dirs` entry cannot be used, for the recipe error.
pub(super) fn check_pattern(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.contains('\0') {
        return Err("it holds a NUL byte".into());
    }
    if value.starts_with('/') {
        return Err("it is absolute; entries are relative to build.source".into());
    }
    if value.split('/').any(|c| c == "..") {
        return Err("it climbs out of build.source with `..`".into());
    }
    glob(value).map(drop).map_err(|e| e.kind().to_string())
}

/// Why a `defines` entry is not `NAME` or `NAME=VALUE`.
pub(super) fn check_define(value: &str) -> Result<(), String> {
    let name = value.split_once('=').map_or(value, |(n, _)| n);
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("{name:?} is not a C macro name"));
    }
    if value.contains('\0') || value.contains('\n') {
        return Err("it holds a NUL byte or a newline".into());
    }
    Ok(())
}

/// Where `*` stops at `/` and `**` crosses folders, as in .gitignore and cargo's `include`.
fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Why the patterns select no usable file list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FilesError {
    /// A plain path (not a glob) that is not a file; its index in `include`.
    Missing(usize),
    /// A glob that matched no file; its index in `include`.
    NoMatch(usize),
    /// No `*.c` at the top, when `files` is not given.
    Empty,
    /// Files matched, and `exclude` took them all.
    AllExcluded,
}

impl FilesError {
    pub(crate) fn describe(&self, patterns: &FilePatterns) -> String {
        let at = |i: &usize| patterns.include.get(*i).cloned().unwrap_or_default();
        match self {
            FilesError::Missing(i) => format!("{:?} is not a file in the source", at(i)),
            FilesError::NoMatch(i) => format!("{:?} matches no file in the source", at(i)),
            FilesError::Empty => {
                "no *.c file at the top of the source; list the files (globs work: \"src/**/*.c\")"
                    .into()
            }
            FilesError::AllExcluded => "every matched file is excluded".into(),
        }
    }
}

/// The files the patterns select in `source`, relative, sorted, each once. Plain paths must be
/// files; each glob must match something; symlinked folders are not walked into.
pub(crate) fn expand(source: &Path, patterns: &FilePatterns) -> Result<Vec<String>, FilesError> {
    let default = ["*.c".to_owned()];
    let include: &[String] = if patterns.include.is_empty() {
        &default
    } else {
        &patterns.include
    };
    let exclude = glob_set(&patterns.exclude);
    let walked = if include.iter().any(|p| is_glob(p)) {
        walk(source)
    } else {
        Vec::new()
    };
    let mut files = Vec::new();
    for (i, pattern) in include.iter().enumerate() {
        if is_glob(pattern) {
            let Ok(g) = glob(pattern) else {
                return Err(FilesError::NoMatch(i));
            };
            let matcher = g.compile_matcher();
            let before = files.len();
            files.extend(walked.iter().filter(|f| matcher.is_match(f)).cloned());
            if files.len() == before && !patterns.include.is_empty() {
                return Err(FilesError::NoMatch(i));
            }
        } else if source.join(pattern).is_file() {
            files.push(pattern.trim_start_matches("./").to_owned());
        } else {
            return Err(FilesError::Missing(i));
        }
    }
    if files.is_empty() {
        return Err(FilesError::Empty);
    }
    files.retain(|f| !exclude.is_match(f));
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(FilesError::AllExcluded);
    }
    Ok(files)
}

fn glob_set(patterns: &[String]) -> GlobSet {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        // Checked at parse time; a pattern that fails here excludes nothing.
        if let Ok(g) = glob(p.trim_start_matches("./")) {
            set.add(g);
        }
    }
    set.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Every regular file (or link to one) under `source`, as a relative `/`-separated path.
fn walk(source: &Path) -> Vec<String> {
    walkdir::WalkDir::new(source)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir() && e.path().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(source).ok()?;
            rel.to_str().map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "int x;\n").unwrap();
        }
        dir
    }

    fn patterns(include: &[&str], exclude: &[&str]) -> FilePatterns {
        FilePatterns {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn globs_cross_folders_only_with_double_star_and_exclude_wins() {
        let t = tree(&["lua.c", "luac.c", "lib/a.c", "lib/deep/b.c", "lib/x.h"]);
        let all = expand(t.path(), &patterns(&["**/*.c"], &["luac.c"])).unwrap();
        assert_eq!(all, ["lib/a.c", "lib/deep/b.c", "lua.c"]);
        let top = expand(t.path(), &patterns(&["*.c"], &[])).unwrap();
        assert_eq!(top, ["lua.c", "luac.c"]);
        // No `files`: the top's *.c, as before globs existed.
        assert_eq!(expand(t.path(), &FilePatterns::default()).unwrap(), top);
        // A glob and a plain path naming the same file: compiled once.
        let both = expand(t.path(), &patterns(&["lib/*.c", "lib/a.c"], &[])).unwrap();
        assert_eq!(both, ["lib/a.c"]);
    }

    #[test]
    fn missing_files_empty_globs_and_empty_results_are_errors() {
        let t = tree(&["a.c"]);
        let p = patterns(&["a.c", "b.c"], &[]);
        assert_eq!(expand(t.path(), &p), Err(FilesError::Missing(1)));
        assert!(FilesError::Missing(1).describe(&p).contains("\"b.c\""));
        let p = patterns(&["src/**/*.c"], &[]);
        assert_eq!(expand(t.path(), &p), Err(FilesError::NoMatch(0)));
        let p = patterns(&["*.c"], &["*.c"]);
        assert_eq!(expand(t.path(), &p), Err(FilesError::AllExcluded));
        let none = tree(&["README"]);
        assert_eq!(
            expand(none.path(), &FilePatterns::default()),
            Err(FilesError::Empty)
        );
    }

    #[test]
    fn patterns_and_defines_are_checked_as_text() {
        assert!(check_pattern("src/**/*.c").is_ok());
        for bad in ["", "/abs/*.c", "../up.c", "a/../../b.c", "a[.c"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["NDEBUG", "LUA_USE_LINUX", "VERSION=\"1.2\"", "_X=1"] {
            assert!(check_define(good).is_ok(), "{good:?}");
        }
        for bad in ["", "1X", "A-B", "=1", "X\n=1"] {
            assert!(check_define(bad).is_err(), "{bad:?}");
        }
    }
}
