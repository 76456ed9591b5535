//! Users and groups of an image, pure: the typed [`User`] of an image config and [`Owner`] of a
//! file, each with one parser, and [`Users`], the one resolver over an image's `/etc/passwd` and
//! `/etc/group` text. Recipe validation (against the chosen base) and the run proof (against the
//! unpacked root) both resolve through it, so a name that the run would refuse is refused first
//! where the recipe names it.

use std::fmt;
use std::str::FromStr;

pub(crate) const PASSWD: &str = "/etc/passwd";
pub(crate) const GROUP: &str = "/etc/group";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("{value:?} is not of the form {form}")]
    Syntax { value: String, form: &'static str },
    /// -1 (`u32::MAX`) means "no change" to the kernel's setuid/setgid.
    #[error("id {0} is out of range")]
    OutOfRange(String),
    #[error("{what} {name:?}: the image has no {file} to look it up in (use a numeric uid:gid)")]
    NoDatabase {
        what: &'static str,
        name: String,
        file: &'static str,
    },
    #[error("{what} {name:?} is not in the image's {file} (it has: {known})")]
    Unknown {
        what: &'static str,
        name: String,
        file: &'static str,
        known: String,
    },
    #[error("{what} {name:?} has a malformed line in the image's {file}")]
    Malformed {
        what: &'static str,
        name: String,
        file: &'static str,
    },
}

/// A user or group: a number, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Num(u32),
    Name(String),
}

impl Id {
    fn parse(s: &str, value: &str, form: &'static str) -> Result<Id, UserError> {
        if s.is_empty() || s.contains(['\0', '\n', ' ', ':']) {
            return Err(UserError::Syntax {
                value: value.to_owned(),
                form,
            });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Id::Name(s.to_owned()));
        }
        match s.parse::<u32>() {
            Ok(id) if id != u32::MAX => Ok(Id::Num(id)),
            _ => Err(UserError::OutOfRange(s.to_owned())),
        }
    }

    pub fn is_name(&self) -> bool {
        matches!(self, Id::Name(_))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

fn split(s: &str, form: &'static str) -> Result<(Id, Option<Id>), UserError> {
    match s.split_once(':') {
        Some((u, g)) => Ok((Id::parse(u, s, form)?, Some(Id::parse(g, s, form)?))),
        None => Ok((Id::parse(s, s, form)?, None)),
    }
}

/// The text form both `user[:group]` shapes share; they differ only in how a lone part
/// resolves.
macro_rules! user_group_text {
    ($t:ident) => {
        impl FromStr for $t {
            type Err = UserError;
            fn from_str(s: &str) -> Result<$t, UserError> {
                let (user, group) = split(s, $t::FORM)?;
                Ok($t { user, group })
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.user)?;
                if let Some(g) = &self.group {
                    write!(f, ":{g}")?;
                }
                Ok(())
            }
        }
    };
}

/// The image config's `User`: `name|uid[:group|gid]`, docker's rules. Without a group the gid
/// is the user's primary group when the image's passwd lists the user, else 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user: Id,
    pub group: Option<Id>,
}

impl User {
    pub const FORM: &'static str = "name|uid[:group|gid]";

    pub fn has_names(&self) -> bool {
        self.user.is_name() || self.group.as_ref().is_some_and(Id::is_name)
    }
}

user_group_text!(User);

/// A file's owner: `uid[:gid]` numbers or `name[:group]` names. A lone number is also the gid
/// (`"65532"` means `65532:65532`, as base.toml and recipes always meant it); a lone name takes
/// the user's primary group. It differs from [`User`] there: a config's lone uid takes the
/// primary group from passwd, or 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: Id,
    pub group: Option<Id>,
}

impl Owner {
    pub const FORM: &'static str = "uid[:gid] or name[:group]";
    pub const ROOT: Owner = Owner {
        user: Id::Num(0),
        group: Some(Id::Num(0)),
    };
}

user_group_text!(Owner);

/// A user resolved to numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    /// The home folder when the passwd lists the user.
    pub home: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    /// None when the line's numbers do not parse.
    id: Option<u32>,
    /// passwd: the primary gid.
    gid: Option<u32>,
    home: Option<String>,
}

/// An image's users and groups, from the text of its `/etc/passwd` and `/etc/group` (None when
/// the image has no such file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    passwd: Option<Vec<Entry>>,
    group: Option<Vec<Entry>>,
}

fn db_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

impl Users {
    pub fn parse(passwd: Option<&str>, group: Option<&str>) -> Users {
        let passwd = passwd.map(|t| {
            db_lines(t)
                .map(|f| Entry {
                    name: f[0].to_owned(),
                    id: f.get(2).and_then(|s| s.parse().ok()),
                    gid: f.get(3).and_then(|s| s.parse().ok()),
                    home: f.get(5).filter(|h| !h.is_empty()).map(|h| (*h).to_owned()),
                })
                .collect()
        });
        let group = group.map(|t| {
            db_lines(t)
                .map(|f| Entry {
                    name: f[0].to_owned(),
                    id: f.get(2).and_then(|s| s.parse().ok()),
                    gid: None,
                    home: None,
                })
                .collect()
        });
        Users { passwd, group }
    }

    /// The user names the passwd lists, in file order.
    pub fn user_names(&self) -> Vec<&str> {
        names(self.passwd.as_deref())
    }

    /// The group names the group file lists, in file order.
    pub fn group_names(&self) -> Vec<&str> {
        names(self.group.as_deref())
    }

    fn by_name<'a>(
        db: Option<&'a [Entry]>,
        what: &'static str,
        file: &'static str,
        name: &str,
    ) -> Result<&'a Entry, UserError> {
        let Some(entries) = db else {
            return Err(UserError::NoDatabase {
                what,
                name: name.to_owned(),
                file,
            });
        };
        let entry = entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| UserError::Unknown {
                what,
                name: name.to_owned(),
                file,
                known: match names(db).join(", ") {
                    s if s.is_empty() => "no entries".to_owned(),
                    s => s,
                },
            })?;
        let complete = entry.id.is_some() && (what == "group" || entry.gid.is_some());
        if !complete {
            return Err(UserError::Malformed {
                what,
                name: name.to_owned(),
                file,
            });
        }
        Ok(entry)
    }

    fn group_id(&self, g: &Id) -> Result<u32, UserError> {
        match g {
            Id::Num(n) => Ok(*n),
            Id::Name(name) => Self::by_name(self.group.as_deref(), "group", GROUP, name)
                .map(|e| e.id.unwrap_or_default()),
        }
    }

    /// The user's uid, primary gid (when listed) and home.
    fn user_entry(&self, u: &Id) -> Result<(u32, Option<u32>, Option<String>), UserError> {
        match u {
            Id::Num(uid) => {
                let listed = self.passwd.iter().flatten().find(|e| e.id == Some(*uid));
                Ok((
                    *uid,
                    listed.and_then(|e| e.gid),
                    listed.and_then(|e| e.home.clone()),
                ))
            }
            Id::Name(name) => {
                let e = Self::by_name(self.passwd.as_deref(), "user", PASSWD, name)?;
                Ok((e.id.unwrap_or_default(), e.gid, e.home.clone()))
            }
        }
    }

    /// A config `User` → numbers, docker's rules.
    pub fn resolve(&self, user: &User) -> Result<Resolved, UserError> {
        let (uid, primary, home) = self.user_entry(&user.user)?;
        let gid = match &user.group {
            Some(g) => self.group_id(g)?,
            None => primary.unwrap_or(0),
        };
        Ok(Resolved { uid, gid, home })
    }

    /// A file's owner → (uid, gid).
    pub fn resolve_owner(&self, owner: &Owner) -> Result<(u32, u32), UserError> {
        let (uid, primary, _) = self.user_entry(&owner.user)?;
        let gid = match (&owner.group, &owner.user) {
            (Some(g), _) => self.group_id(g)?,
            (None, Id::Num(n)) => *n,
            (None, Id::Name(_)) => primary.unwrap_or(0),
        };
        Ok((uid, gid))
    }
}

fn names(db: Option<&[Entry]>) -> Vec<&str> {
    db.into_iter().flatten().map(|e| e.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0::/root:/bin/sh\n# comment\n\napp:x:1000:1001::/home/app:/sbin/nologin\nbad:x:zz:1::/:/bin/sh\n";
    const GR: &str = "root:x:0:\nstaff:x:50:app\n";

    fn users() -> Users {
        Users::parse(Some(PW), Some(GR))
    }

    fn r(s: &str) -> Result<(u32, u32), UserError> {
        users().resolve(&s.parse()?).map(|r| (r.uid, r.gid))
    }

    #[test]
    fn user_parses_and_prints_back() {
        for s in ["app", "1000", "1000:50", "app:staff", "0:staff", "app:0"] {
            assert_eq!(s.parse::<User>().unwrap().to_string(), s);
        }
        let u: User = "app:50".parse().unwrap();
        assert_eq!(
            u,
            User {
                user: Id::Name("app".into()),
                group: Some(Id::Num(50))
            }
        );
        assert!(u.has_names());
        assert!(!"1:2".parse::<User>().unwrap().has_names());
        for bad in ["", ":", "app:", ":staff", "a b", "a:b:c"] {
            assert!(
                matches!(bad.parse::<User>(), Err(UserError::Syntax { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            "4294967295".parse::<User>(),
            Err(UserError::OutOfRange("4294967295".into()))
        );
        assert_eq!(
            "".parse::<User>().unwrap_err().to_string(),
            "\"\" is not of the form name|uid[:group|gid]"
        );
    }

    #[test]
    fn users_resolve_with_dockers_rules() {
        assert_eq!(r("app"), Ok((1000, 1001)));
        assert_eq!(r("app:staff"), Ok((1000, 50)));
        assert_eq!(r("1000"), Ok((1000, 1001)), "primary group of a listed uid");
        assert_eq!(r("4242"), Ok((4242, 0)));
        assert_eq!(r("0:staff"), Ok((0, 50)));
        assert_eq!(r("7:8"), Ok((7, 8)));
        let home = users().resolve(&"app".parse().unwrap()).unwrap().home;
        assert_eq!(home.as_deref(), Some("/home/app"));
    }

    #[test]
    fn resolver_errors_list_what_the_image_has() {
        assert_eq!(
            r("nobody").unwrap_err().to_string(),
            "user \"nobody\" is not in the image's /etc/passwd (it has: root, app, bad)"
        );
        assert_eq!(
            r("app:wheel").unwrap_err().to_string(),
            "group \"wheel\" is not in the image's /etc/group (it has: root, staff)"
        );
        assert!(matches!(r("bad"), Err(UserError::Malformed { .. })));
        let none = Users::default();
        assert_eq!(
            none.resolve(&"app".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "user \"app\": the image has no /etc/passwd to look it up in (use a numeric uid:gid)"
        );
        assert_eq!(
            none.resolve(&"1:2".parse().unwrap())
                .map(|r| (r.uid, r.gid)),
            Ok((1, 2))
        );
        let no_group = Users::parse(Some(PW), None);
        assert!(matches!(
            no_group.resolve(&"app:staff".parse().unwrap()),
            Err(UserError::NoDatabase { what: "group", .. })
        ));
    }

    #[test]
    fn owners_resolve() {
        let o = |s: &str| users().resolve_owner(&s.parse::<Owner>()?);
        assert_eq!(o("65532"), Ok((65532, 65532)));
        assert_eq!(o("1:2"), Ok((1, 2)));
        assert_eq!(o("app"), Ok((1000, 1001)));
        assert_eq!(o("app:staff"), Ok((1000, 50)));
        assert_eq!(o("0:root"), Ok((0, 0)));
        assert!(matches!(o("ghost"), Err(UserError::Unknown { .. })));
        assert!(matches!(o("1:"), Err(UserError::Syntax { .. })));
        assert_eq!(Users::default().resolve_owner(&Owner::ROOT), Ok((0, 0)));
    }
}
