//! The image config's `User` → numeric uid/gid, docker's rules.

use super::RunError;
use super::unpack::{Walk, resolve_in_root};
use std::path::Path;

/// Resolves `user` (`""`, `uid`, `uid:gid`, `name`, `name:group`, …) to numbers.
///
/// Names are looked up in `rootfs`'s `/etc/passwd` and `/etc/group` (followed as the sandboxed
/// process would, never outside the root); without a root, or when the name is missing there,
/// it is a [`RunError::Config`]. With no group given, the gid is the user's primary group from
/// the image's passwd when it lists the user, else 0 (docker does the same).
pub fn resolve_user(user: &str, rootfs: Option<&Path>) -> Result<(u32, u32), RunError> {
    let user = user.trim();
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(RunError::Config(format!(
            "User {user:?} is not of the form uid[:gid]"
        )));
    }

    let passwd = match rootfs {
        Some(root) => read_db(root, "/etc/passwd")?,
        None => None,
    };
    let (uid, primary_gid) = match parse_id(user_part)? {
        Some(uid) => {
            let listed = find_entry(passwd.as_deref(), 4, |f| f[2].parse() == Ok(uid));
            (uid, listed.and_then(|f| f[3].parse().ok()))
        }
        None => {
            let f = lookup_name(
                rootfs,
                passwd.as_deref(),
                "user",
                user_part,
                "/etc/passwd",
                4,
            )?;
            match (f[2].parse(), f[3].parse()) {
                (Ok(uid), Ok(gid)) => (uid, Some(gid)),
                _ => {
                    return Err(RunError::Config(format!(
                        "user {user_part:?} has a malformed line in the image's /etc/passwd"
                    )));
                }
            }
        }
    };

    let gid = match group_part {
        None => primary_gid.unwrap_or(0),
        Some(g) => match parse_id(g)? {
            Some(gid) => gid,
            None => {
                let group = match rootfs {
                    Some(root) => read_db(root, "/etc/group")?,
                    None => None,
                };
                let f = lookup_name(rootfs, group.as_deref(), "group", g, "/etc/group", 3)?;
                f[2].parse().map_err(|_| {
                    RunError::Config(format!(
                        "group {g:?} has a malformed line in the image's /etc/group"
                    ))
                })?
            }
        },
    };
    Ok((uid, gid))
}

/// `Some(number)` for a numeric id, `None` for a name; -1 (`u32::MAX`) means "no change" to
/// the kernel and is refused.
fn parse_id(s: &str) -> Result<Option<u32>, RunError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(RunError::Config(format!("id {s} is out of range"))),
    }
}

/// The fields of the line for `name` in an image database (`/etc/passwd`, `/etc/group`).
fn lookup_name<'a>(
    rootfs: Option<&Path>,
    db: Option<&'a str>,
    what: &str,
    name: &str,
    file: &str,
    min_fields: usize,
) -> Result<Vec<&'a str>, RunError> {
    if rootfs.is_none() {
        return Err(needs_root(what, name));
    }
    if db.is_none() {
        return Err(RunError::Config(format!(
            "{what} {name:?}: the image has no {file} to look it up in (use a numeric uid:gid)"
        )));
    }
    find_entry(db, min_fields, |f| f[0] == name)
        .ok_or_else(|| RunError::Config(format!("{what} {name:?} is not in the image's {file}")))
}

fn find_entry(
    db: Option<&str>,
    min_fields: usize,
    pred: impl Fn(&[&str]) -> bool,
) -> Option<Vec<&str>> {
    db_lines(db?)
        .filter(|f| f.len() >= min_fields)
        .find(|f| pred(f))
}

fn needs_root(what: &str, name: &str) -> RunError {
    RunError::Config(format!(
        "{what} name {name:?} can only be resolved against the unpacked image's files; \
         use a numeric uid[:gid]"
    ))
}

/// The file's text when the image has it; symlinks are followed inside the root only.
fn read_db(root: &Path, path: &str) -> Result<Option<String>, RunError> {
    let resolved = resolve_in_root(root, Path::new(path), Walk::Lookup)
        .map_err(|e| RunError::Config(format!("looking up {path} in the image: {e}")))?;
    let Some(host) = resolved else {
        return Ok(None);
    };
    if !host.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&host).map_err(|e| RunError::io("reading", &host, e))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn db_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}
