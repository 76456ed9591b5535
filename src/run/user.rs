//! The image config's `User` → numeric uid/gid, docker's rules, through the one resolver
//! [`crate::image::users::Users`] (recipe validation uses the same one against the base).

use super::RunError;
use super::unpack::{Walk, resolve_in_root};
use crate::image::users::{GROUP, PASSWD, User, Users};
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
    let parsed: User = user
        .parse()
        .map_err(|e| RunError::Config(format!("User: {e}")))?;
    let users = match rootfs {
        Some(root) => Users::parse(
            read_db(root, PASSWD)?.as_deref(),
            read_db(root, GROUP)?.as_deref(),
        ),
        None if parsed.has_names() => {
            return Err(RunError::Config(format!(
                "User {user:?} names a user or group, which can only be resolved against the \
                 unpacked image's files; use a numeric uid[:gid]"
            )));
        }
        None => Users::default(),
    };
    let r = users
        .resolve(&parsed)
        .map_err(|e| RunError::Config(e.to_string()))?;
    Ok((r.uid, r.gid))
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
