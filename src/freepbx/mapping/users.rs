//! Logins and administrators: from the cxpanel tables (`cxpanel_users`) or from User Manager
//! (with the cxpanel `add` setting, or every user with a password when there is no cxpanel
//! module), and the administrators cxpanel creates.

use super::extensions::MailboxIndex;
use super::*;

impl<'a> Mapper<'a> {
    pub(super) fn user_setting(&self, uid: i64, module: &str, key: &str) -> Option<&'a str> {
        self.user_settings.get(&(uid, module, key)).copied()
    }

    pub(super) fn administrators(&mut self) -> BTreeMap<String, AdministratorSpec> {
        let mut out = BTreeMap::new();
        let keep = |sections: &str| sections.contains('*') || sections.contains("cxpanel");
        for a in &self.snap.ampusers {
            if !a.username.is_empty() && keep(&a.sections) {
                out.insert(a.username.clone(), admin(&a.username, &a.password_sha1));
            }
        }
        // Userman GUI users: pbx_admin → all sections; pbx_login → their module list.
        let mut settings: FastMap<i64, (bool, bool, String)> = FastMap::default();
        for s in &self.snap.userman_user_settings {
            if s.module != "global" {
                continue;
            }
            let e = settings.entry(s.id).or_default();
            match s.key.as_str() {
                "pbx_admin" => e.0 = parse_flag(&s.val),
                "pbx_login" => e.1 = parse_flag(&s.val),
                "pbx_modules" => {
                    e.2 = serde_json::from_str::<Vec<String>>(&s.val)
                        .map(|v| v.join(";"))
                        .unwrap_or_default()
                }
                _ => {}
            }
        }
        for u in &self.snap.userman_users {
            let Some((pbx_admin, pbx_login, modules)) = settings.get(&u.id) else {
                continue;
            };
            let sections = if *pbx_admin {
                "*"
            } else if *pbx_login {
                modules.as_str()
            } else {
                continue;
            };
            if !u.username.is_empty() && keep(sections) {
                out.insert(u.username.clone(), admin(&u.username, &u.password));
            }
        }
        out
    }

    pub(super) fn cx_table_users(
        &mut self,
        extensions: &BTreeMap<String, ExtensionSpec>,
    ) -> BTreeMap<String, UserSpec> {
        let index = MailboxIndex::new(self.snap);
        let mut phones: FastMap<&str, Vec<PhoneSpec>> = FastMap::default();
        for p in &self.snap.cxpanel_phone_numbers {
            phones
                .entry(p.user_id.as_str())
                .or_default()
                .push(PhoneSpec {
                    kind: p.kind.clone(),
                    number: p.phone_number.clone(),
                });
        }
        // Bindings: parent_user_id of each synced extension (self when cxpanel has no row).
        let mut bound: FastMap<&str, Vec<String>> = FastMap::default();
        for ext in extensions.keys() {
            let parent = match self.cx_users.get(ext.as_str()) {
                Some(c) => c.parent_user_id.as_str(),
                None => ext.as_str(),
            };
            if !parent.is_empty() {
                bound.entry(parent).or_default().push(ext.clone());
            }
        }
        let mut out = BTreeMap::new();
        for (&ext, u) in &self.users {
            let (password, full) = match self.cx_users.get(ext) {
                Some(c) if !c.add_user => continue,
                Some(c) => (
                    PasswordSpec {
                        hash: non_empty(&c.hashed_password),
                        dirty: c.password_dirty,
                    },
                    c.full,
                ),
                // cxpanel would create the row with a generated password we cannot know.
                None => (PasswordSpec::default(), true),
            };
            let (first_name, last_name) = split_name(&display_name(&u.name, ext));
            let mut exts = bound.remove(ext).unwrap_or_default();
            exts.sort();
            out.insert(
                ext.to_string(),
                UserSpec {
                    username: ext.to_string(),
                    password,
                    full,
                    enabled: true,
                    first_name,
                    last_name,
                    emails: self.mailbox_emails(ext, &index),
                    phones: phones.remove(ext).unwrap_or_default(),
                    extensions: exts,
                },
            );
        }
        out
    }

    /// cxpanel's `getCombinedModuleSettingByID(uid, 'cxpanel', 'add')`: the user's own value,
    /// else the first group (by priority) that has one; None when nobody says.
    pub(super) fn combined_add(&self, uid: i64, groups: &[&UsermanGroup]) -> Option<&'a str> {
        if let Some(v) = self.user_setting(uid, "cxpanel", "add") {
            return Some(v);
        }
        groups
            .iter()
            .filter(|g| g.users.contains(&uid))
            .find_map(|g| {
                self.snap
                    .userman_group_settings
                    .iter()
                    .find(|s| s.id == g.id && s.module == "cxpanel" && s.key == "add")
                    .map(|s| s.val.as_str())
            })
    }

    /// Logins from User Manager. `cx`: selection by the cxpanel `add` setting and dirty flags
    /// from `password_dirty`; otherwise (no cxpanel module) every user with a password.
    pub(super) fn userman_users(
        &mut self,
        extensions: &BTreeMap<String, ExtensionSpec>,
        cx: bool,
    ) -> BTreeMap<String, UserSpec> {
        let mut groups: Vec<&UsermanGroup> = self.snap.userman_groups.iter().collect();
        groups.sort_by_key(|g| (g.priority, g.id));
        let mut users: Vec<&UsermanUser> = self.snap.userman_users.iter().collect();
        users.sort_by_key(|u| u.id);
        let mut out: Vec<(String, UserSpec)> = Vec::with_capacity(users.len());
        let mut seen: FastSet<&str> = FastSet::default();
        // default_extension → (user id, username) that claimed it first (lowest id).
        let mut claimed: FastMap<&str, (i64, &str)> = FastMap::default();
        for u in users {
            if u.username.is_empty() {
                continue;
            }
            let password = if cx {
                if self.combined_add(u.id, &groups).map(str::trim) != Some("1") {
                    continue;
                }
                PasswordSpec {
                    hash: non_empty(&u.password),
                    // cxpanel treats a missing flag as dirty (and writes '1' back).
                    dirty: self
                        .user_setting(u.id, "cxpanel", "password_dirty")
                        .map(parse_flag)
                        .unwrap_or(true),
                }
            } else {
                match non_empty(&u.password) {
                    // No cxpanel flag to consult: keep the panel password in step with
                    // userman whenever they differ.
                    Some(hash) => PasswordSpec {
                        hash: Some(hash),
                        dirty: true,
                    },
                    None => continue,
                }
            };
            if !seen.insert(u.username.as_str()) {
                self.warnings.push(format!(
                    "user manager has two users named {:?} (directory {:?}); only the \
                     first (lowest id) is synced",
                    u.username, u.auth
                ));
                continue;
            }
            let (first_name, last_name) = if !u.displayname.trim().is_empty() {
                split_name(u.displayname.trim())
            } else {
                (u.fname.trim().to_string(), u.lname.trim().to_string())
            };
            let mut phones = Vec::new();
            for (kind, number) in [("Cell", &u.cell), ("Work", &u.work), ("Home", &u.home)] {
                if !number.trim().is_empty() {
                    phones.push(PhoneSpec {
                        kind: kind.into(),
                        number: number.trim().to_string(),
                    });
                }
            }
            let mut exts = Vec::new();
            let de = u.default_extension.trim();
            if !de.is_empty() && de != "none" && extensions.contains_key(de) {
                match claimed.get(de) {
                    Some((_, owner)) => self.warnings.push(format!(
                        "extension {de} is the default extension of user manager users \
                         {owner:?} and {:?}; it is bound to {owner:?} (lowest user id)",
                        u.username
                    )),
                    None => {
                        claimed.insert(de, (u.id, u.username.as_str()));
                        exts.push(de.to_string());
                    }
                }
            }
            out.push((
                u.username.clone(),
                UserSpec {
                    username: u.username.clone(),
                    password,
                    full: if cx {
                        true
                    } else {
                        self.cfg.sync.default_full_users
                    },
                    enabled: true,
                    first_name,
                    last_name,
                    emails: split_emails(&u.email),
                    phones,
                    extensions: exts,
                },
            ));
        }
        out.into_iter().collect()
    }
}

pub(super) fn admin(username: &str, password: &Secret) -> AdministratorSpec {
    AdministratorSpec {
        user_name: username.to_string(),
        // cxpanel compares the stored hash with the server's on every run.
        password: PasswordSpec {
            hash: non_empty(password),
            dirty: true,
        },
    }
}
