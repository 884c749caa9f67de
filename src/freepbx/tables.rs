//! Which FreePBX tables must be there, and what their absence means.
//!
//! A table that FreePBX itself needs (framework/core: `ampusers`, `users`, `devices`,
//! `modules`) or that an installed module creates (the `modules` table lists it) cannot be
//! "empty" when it is missing or unreadable: its rows are unknown. Reading it as no rows would
//! delete every object it feeds. [`table_problems`] names each such table with the kinds it
//! feeds; the mapping freezes those kinds for the pass and reports the table as an error.
//! Tables of a module that is really absent (no row in `modules`) stay "empty", as before.
//!
//! Not listed on purpose: tables whose absence only makes the agent *less* destructive
//! (`cxpanel_managed_items`: fewer objects count as managed) or that vary by version without a
//! reliable marker (`sip`/`iax`/`dahdi`: the device's own `dial` column is the fallback).

use super::snapshot::Snapshot;
use crate::model::Kind;

/// One required table: the module whose presence implies it (None: FreePBX itself), the
/// lowest module major version that has it, alternative names (any one suffices) and the
/// kinds fed by it.
struct Required {
    tables: &'static [&'static str],
    module: Option<&'static str>,
    since_major: u32,
    kinds: &'static [Kind],
    /// It also feeds logins: the user and everything that hangs off it (what a read of the
    /// user collection feeds, [`Kind::fed_by_read`]).
    logins: bool,
}

impl Required {
    fn kinds(&self) -> Vec<Kind> {
        let logins = if self.logins {
            Kind::User.fed_by_read()
        } else {
            Vec::new()
        };
        self.kinds.iter().copied().chain(logins).collect()
    }
}

const REQUIRED: &[Required] = &[
    Required {
        tables: &["ampusers"],
        module: None,
        since_major: 0,
        kinds: &[Kind::Administrator],
        logins: false,
    },
    Required {
        tables: &["users"],
        module: None,
        since_major: 0,
        kinds: &[Kind::Extension],
        logins: true,
    },
    Required {
        tables: &["devices"],
        module: None,
        since_major: 0,
        kinds: &[Kind::Extension],
        logins: false,
    },
    Required {
        tables: &["modules"],
        module: None,
        since_major: 0,
        kinds: &[Kind::ParkingLot],
        logins: false,
    },
    Required {
        tables: &["queues_config"],
        module: Some("queues"),
        since_major: 0,
        kinds: &[Kind::Queue],
        logins: false,
    },
    Required {
        tables: &["meetme"],
        module: Some("conferences"),
        since_major: 0,
        kinds: &[Kind::ConferenceRoom],
        logins: false,
    },
    Required {
        // parking ≥ 13 keeps its lots in parkplus, older versions in parkinglot.
        tables: &["parkplus", "parkinglot"],
        module: Some("parking"),
        since_major: 0,
        kinds: &[Kind::ParkingLot],
        logins: false,
    },
    Required {
        tables: &["userman_users"],
        module: Some("userman"),
        since_major: 0,
        kinds: &[Kind::Administrator],
        logins: true,
    },
    Required {
        tables: &["userman_users_settings"],
        module: Some("userman"),
        since_major: 0,
        kinds: &[Kind::Administrator],
        logins: true,
    },
    Required {
        tables: &["userman_groups"],
        module: Some("userman"),
        since_major: 13,
        kinds: &[],
        logins: true,
    },
    Required {
        tables: &["userman_groups_settings"],
        module: Some("userman"),
        since_major: 13,
        kinds: &[],
        logins: true,
    },
    Required {
        tables: &["cxpanel_users"],
        module: Some("cxpanel"),
        since_major: 0,
        kinds: &[Kind::Extension],
        logins: true,
    },
    Required {
        tables: &["cxpanel_queues"],
        module: Some("cxpanel"),
        since_major: 0,
        kinds: &[Kind::Queue],
        logins: false,
    },
    Required {
        tables: &["cxpanel_conference_rooms"],
        module: Some("cxpanel"),
        since_major: 0,
        kinds: &[Kind::ConferenceRoom],
        logins: false,
    },
    Required {
        tables: &["cxpanel_phone_number"],
        module: Some("cxpanel"),
        since_major: 0,
        kinds: &[Kind::Phone],
        logins: false,
    },
];

/// A required table that is missing or could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProblem {
    pub table: String,
    /// What is wrong and what to do, naming the table (never a password).
    pub message: String,
    /// The kinds whose FreePBX source this table is.
    pub kinds: Vec<Kind>,
}

/// `16.0.40` → 16.
fn major(version: &str) -> u32 {
    version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Whether FreePBX implies `r`: always for its own tables; for a module's, when the
/// `modules` table lists it (at a version that has the table), or when the module list
/// itself is unknown (then no module can be proved absent).
fn implied(r: &Required, snap: &Snapshot, modules_known: bool) -> Option<String> {
    let Some(module) = r.module else {
        return Some("FreePBX itself needs it".into());
    };
    if !modules_known {
        return Some(format!(
            "the modules table is unreadable, so the {module} module cannot be proved absent"
        ));
    }
    let row = snap.modules.iter().find(|m| m.modulename == module)?;
    (major(&row.version) >= r.since_major).then(|| {
        format!(
            "the {module} module is installed (version {} in the modules table)",
            row.version
        )
    })
}

/// Every table FreePBX implies that is missing or unreadable in `snap`.
pub fn table_problems(snap: &Snapshot) -> Vec<TableProblem> {
    let usable = |t: &str| snap.has_table(t) && !snap.unreadable_tables.contains_key(t);
    let modules_known = usable("modules");
    let mut out = Vec::new();
    for r in REQUIRED {
        if r.tables.iter().any(|t| usable(t)) {
            continue;
        }
        let Some(why) = implied(r, snap, modules_known) else {
            continue;
        };
        let table = r.tables.join(" or ");
        let unreadable: Vec<String> = r
            .tables
            .iter()
            .filter_map(|t| snap.unreadable_tables.get(*t).map(|e| format!("{t}: {e}")))
            .collect();
        let message = if unreadable.is_empty() {
            format!(
                "FreePBX table {table} is missing ({why}); check that [freepbx] names the \
                 FreePBX database and that its user may SELECT from {table}"
            )
        } else {
            format!(
                "FreePBX table {table} could not be read ({}; {why}); check the database \
                 user's SELECT privilege on it, or repair the table",
                unreadable.join("; ")
            )
        };
        out.push(TableProblem {
            table,
            message,
            kinds: r.kinds(),
        });
    }
    // A table that exists but cannot be read is an error even when nothing implies it.
    for (table, err) in &snap.unreadable_tables {
        if REQUIRED.iter().any(|r| r.tables.contains(&table.as_str())) {
            continue;
        }
        let kinds = match table.as_str() {
            // The per-technology dial strings of devices.
            "sip" | "iax" | "dahdi" | "zap" => vec![Kind::Extension],
            _ => Vec::new(),
        };
        out.push(TableProblem {
            table: table.clone(),
            message: format!(
                "FreePBX table {table} could not be read ({err}); check the database user's \
                 SELECT privilege on it, or repair the table"
            ),
            kinds,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freepbx::snapshot::ModuleRow;

    fn snap(tables: &[&str], modules: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            modules: modules
                .iter()
                .map(|(m, v)| ModuleRow {
                    modulename: m.to_string(),
                    version: v.to_string(),
                    enabled: true,
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    const CORE: &[&str] = &["ampusers", "users", "devices", "modules"];

    #[test]
    fn absent_modules_imply_nothing() {
        assert!(table_problems(&snap(CORE, &[("framework", "16.0.1")])).is_empty());
    }

    #[test]
    fn framework_tables_are_always_required() {
        let p = table_problems(&snap(&["ampusers", "users", "modules"], &[]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].table, "devices");
        assert!(
            p[0].message.contains("devices is missing"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].kinds, &[Kind::Extension]);
    }

    #[test]
    fn installed_modules_imply_their_tables() {
        let mut tables = CORE.to_vec();
        tables.push("parkinglot");
        let s = snap(
            &tables,
            &[
                ("cxpanel", "16.0.6"),
                ("parking", "2.10.1"),
                ("userman", "12.0.3"),
            ],
        );
        let names: Vec<String> = table_problems(&s).into_iter().map(|p| p.table).collect();
        // parkinglot satisfies parking; userman 12 has no group tables.
        assert_eq!(
            names,
            [
                "userman_users",
                "userman_users_settings",
                "cxpanel_users",
                "cxpanel_queues",
                "cxpanel_conference_rooms",
                "cxpanel_phone_number"
            ]
        );
    }

    #[test]
    fn unreadable_tables_count_as_missing_and_say_why() {
        let mut s = snap(CORE, &[]);
        s.unreadable_tables
            .insert("users".into(), "SELECT command denied".into());
        let p = table_problems(&s);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("users: SELECT command denied"));
        // An unreadable module list: no module can be proved absent.
        let mut s = snap(CORE, &[]);
        s.unreadable_tables.insert("modules".into(), "x".into());
        let p = table_problems(&s);
        assert!(p.iter().any(|p| p.table == "modules"));
        assert!(p.iter().any(|p| p.table == "cxpanel_users"));
        // Unreadable but implied by nothing: still reported.
        let mut s = snap(&["ampusers", "users", "devices", "modules", "sip"], &[]);
        s.unreadable_tables.insert("sip".into(), "denied".into());
        let p = table_problems(&s);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kinds, &[Kind::Extension]);
    }
}
