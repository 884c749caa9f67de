//! [`read_tables`]: the queries that fill a [`Snapshot`], one function per group of tables
//! (settings and modules, extensions and devices, queues/rooms/parking, userman, cxpanel).
//! The groups run in a fixed order inside the caller's transaction; the order of the queries
//! is the order the whole function had before it was split (issue 12).

use super::*;

/// Read every table the sync needs into `snap` (the caller owns the transaction).
pub(crate) async fn read_tables(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    snap.tables = r.tables().cloned().collect();
    read_settings(r, snap).await?;
    read_extensions(r, snap).await?;
    read_queues_rooms_parking(r, snap).await?;
    read_userman(r, snap).await?;
    read_cxpanel(r, snap).await
}

/// The columns of the keyword/value tables (sip, iax, dahdi, queues_details, parkinglot).
const KW: [&str; 3] = ["id", "keyword", "data"];

/// FreePBX settings (the CDR login kept apart as a secret), modules and `need_reload`.
async fn read_settings(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    let settings_filter = in_list(SETTINGS_KEYS);
    for mut c in r
        .select(
            "freepbx_settings",
            &["keyword", "value"],
            Some(("keyword", &settings_filter)),
        )
        .await?
        .unwrap_or_default()
    {
        snap.settings.insert(s(&mut c, 0), s(&mut c, 1));
    }
    // The CDR login is a secret: kept out of the plain settings map (exports show that).
    let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    snap.cdr_username = non_empty(snap.settings.remove("CDRDBUSER")).map(|u| u.trim().to_string());
    snap.cdr_password = non_empty(snap.settings.remove("CDRDBPASS")).map(Secret::new);
    snap.modules = rows(r, "modules", &["modulename", "version", "enabled"], None)
        .await?
        .map(|mut c| ModuleRow {
            modulename: s(&mut c, 0),
            version: s(&mut c, 1),
            enabled: flag(&mut c, 2),
        })
        .collect();
    snap.need_reload = rows(
        r,
        "admin",
        &["variable", "value"],
        Some(("variable", "= 'need_reload'")),
    )
    .await?
    .map(|mut c| s(&mut c, 1))
    .next();
    Ok(())
}

/// Extensions and their devices: users, devices and the per-technology dial strings.
async fn read_extensions(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    snap.users = rows(r, "users", &["extension", "name", "voicemail"], None)
        .await?
        .map(|mut c| UserRow {
            extension: s(&mut c, 0),
            name: s(&mut c, 1),
            voicemail: s(&mut c, 2),
        })
        .collect();
    snap.devices = rows(
        r,
        "devices",
        &["id", "tech", "dial", "devicetype", "user", "description"],
        None,
    )
    .await?
    .map(|mut c| DeviceRow {
        id: s(&mut c, 0),
        tech: s(&mut c, 1),
        dial: s(&mut c, 2),
        devicetype: s(&mut c, 3),
        user: s(&mut c, 4),
        description: s(&mut c, 5),
    })
    .collect();
    let sip_filter = in_list(&["dial", "sipdriver"]);
    snap.sip = keyword_rows(r, "sip", &KW, Some(("keyword", &sip_filter))).await?;
    snap.iax = keyword_rows(r, "iax", &KW, Some(("keyword", "= 'dial'"))).await?;
    snap.dahdi = keyword_rows(r, "dahdi", &KW, Some(("keyword", "= 'dial'"))).await?;
    Ok(())
}

/// Queues, conference rooms and the default parking lot (modern or legacy table).
async fn read_queues_rooms_parking(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    snap.queues = rows(r, "queues_config", &["extension", "descr"], None)
        .await?
        .map(|mut c| QueueRow {
            extension: s(&mut c, 0),
            descr: s(&mut c, 1),
        })
        .collect();
    let qd_filter = in_list(&["eventwhencalled", "eventmemberstatus"]);
    snap.queue_details =
        keyword_rows(r, "queues_details", &KW, Some(("keyword", &qd_filter))).await?;
    snap.conferences = rows(r, "meetme", &["exten", "description"], None)
        .await?
        .map(|mut c| ConferenceRow {
            exten: s(&mut c, 0),
            description: s(&mut c, 1),
        })
        .collect();
    let mut lots: Vec<(i64, ParkingLotRow)> = rows(
        r,
        "parkplus",
        &["id", "name", "parkext", "parkpos", "numslots"],
        Some(("defaultlot", "= 'yes'")),
    )
    .await?
    .map(|mut c| {
        let lot = ParkingLotRow {
            id: s(&mut c, 0),
            name: s(&mut c, 1),
            parkext: s(&mut c, 2),
            parkpos: s(&mut c, 3),
            numslots: s(&mut c, 4),
        };
        (lot.id.parse().unwrap_or(i64::MAX), lot)
    })
    .collect();
    lots.sort_by_key(|(id, _)| *id);
    snap.parking_lot = lots.into_iter().map(|(_, l)| l).next();
    snap.legacy_parking = keyword_rows(r, "parkinglot", &KW, None).await?;
    Ok(())
}

/// User manager users, groups and their settings, and the FreePBX admin users.
async fn read_userman(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    snap.userman_users = rows(
        r,
        "userman_users",
        &[
            "id",
            "auth",
            "username",
            "password",
            "displayname",
            "fname",
            "lname",
            "email",
            "cell",
            "work",
            "home",
            "default_extension",
        ],
        None,
    )
    .await?
    .map(|mut c| UsermanUser {
        id: int(&mut c, 0),
        auth: s(&mut c, 1),
        username: s(&mut c, 2),
        password: Secret::new(s(&mut c, 3)),
        displayname: s(&mut c, 4),
        fname: s(&mut c, 5),
        lname: s(&mut c, 6),
        email: s(&mut c, 7),
        cell: s(&mut c, 8),
        work: s(&mut c, 9),
        home: s(&mut c, 10),
        default_extension: s(&mut c, 11),
    })
    .collect();
    snap.userman_users.sort_by_key(|u| u.id);
    // Only the keys the mapping uses: real systems carry many more `global` settings.
    let mut us_filter = in_list(&["cxpanel", "global"]);
    if r.column("userman_users_settings", "key").is_some() {
        us_filter.push_str(" AND `key` ");
        us_filter.push_str(&in_list(&[
            "add",
            "password_dirty",
            "pbx_admin",
            "pbx_login",
            "pbx_modules",
        ]));
    }
    snap.userman_user_settings = settings_rows(
        r,
        "userman_users_settings",
        "uid",
        Some(("module", &us_filter)),
    )
    .await?;
    snap.userman_groups = rows(r, "userman_groups", &["id", "priority", "users"], None)
        .await?
        .map(|mut c| UsermanGroup {
            id: int(&mut c, 0),
            priority: s(&mut c, 1).trim().parse().unwrap_or(5),
            users: parse_id_list(&s(&mut c, 2)),
        })
        .collect();
    snap.userman_group_settings = settings_rows(
        r,
        "userman_groups_settings",
        "gid",
        Some(("module", "= 'cxpanel'")),
    )
    .await?;
    snap.ampusers = rows(
        r,
        "ampusers",
        &["username", "password_sha1", "sections"],
        None,
    )
    .await?
    .map(|mut c| AmpUser {
        username: s(&mut c, 0),
        password_sha1: Secret::new(s(&mut c, 1)),
        sections: s(&mut c, 2),
    })
    .collect();
    Ok(())
}

/// The cxpanel module's own tables: its users, queues, rooms, phone numbers, managed items.
async fn read_cxpanel(
    r: &mut TableReader<'_, '_>,
    snap: &mut Snapshot,
) -> Result<(), mysql_async::Error> {
    snap.cxpanel_users = rows(
        r,
        "cxpanel_users",
        &[
            "user_id",
            "display_name",
            "peer",
            "add_extension",
            "full",
            "add_user",
            "hashed_password",
            "initial_password",
            "auto_answer",
            "parent_user_id",
            "password_dirty",
        ],
        None,
    )
    .await?
    .map(|mut c| CxUser {
        user_id: s(&mut c, 0),
        display_name: s(&mut c, 1),
        peer: s(&mut c, 2),
        add_extension: flag(&mut c, 3),
        full: flag(&mut c, 4),
        add_user: flag(&mut c, 5),
        hashed_password: Secret::new(s(&mut c, 6)),
        initial_password: Secret::new(s(&mut c, 7)),
        auto_answer: flag(&mut c, 8),
        parent_user_id: s(&mut c, 9),
        password_dirty: flag(&mut c, 10),
    })
    .collect();
    snap.cxpanel_queues = rows(
        r,
        "cxpanel_queues",
        &["queue_id", "display_name", "add_queue"],
        None,
    )
    .await?
    .map(|mut c| CxQueue {
        queue_id: s(&mut c, 0),
        display_name: s(&mut c, 1),
        add_queue: flag(&mut c, 2),
    })
    .collect();
    snap.cxpanel_conference_rooms = rows(
        r,
        "cxpanel_conference_rooms",
        &["conference_room_id", "display_name", "add_conference_room"],
        None,
    )
    .await?
    .map(|mut c| CxConferenceRoom {
        conference_room_id: s(&mut c, 0),
        display_name: s(&mut c, 1),
        add_conference_room: flag(&mut c, 2),
    })
    .collect();
    snap.cxpanel_phone_numbers = rows(
        r,
        "cxpanel_phone_number",
        &["user_id", "phone_number", "type"],
        None,
    )
    .await?
    .map(|mut c| CxPhoneNumber {
        user_id: s(&mut c, 0),
        phone_number: s(&mut c, 1),
        kind: s(&mut c, 2),
    })
    .collect();
    snap.managed_items = rows(
        r,
        "cxpanel_managed_items",
        &["type", "fpbx_id", "cxpanel_id"],
        None,
    )
    .await?
    // cxpanel's `type` strings become kinds here, once; a type the agent does not manage
    // (`userman_user` in the module's comments, unused) could never match and is left out.
    .filter_map(|mut c| {
        Some(ManagedItem {
            kind: crate::model::Kind::from_type_name(&s(&mut c, 0))?,
            fpbx_id: s(&mut c, 1),
            cxpanel_id: s(&mut c, 2),
        })
    })
    .collect();
    snap.cx_settings = read_cx_settings(r).await?;
    Ok(())
}

async fn rows(
    r: &mut TableReader<'_, '_>,
    table: &str,
    cols: &[&str],
    filter: Option<(&str, &str)>,
) -> Result<std::vec::IntoIter<Cells>, mysql_async::Error> {
    Ok(r.select(table, cols, filter)
        .await?
        .unwrap_or_default()
        .into_iter())
}

async fn keyword_rows(
    r: &mut TableReader<'_, '_>,
    table: &str,
    cols: &[&str],
    filter: Option<(&str, &str)>,
) -> Result<Vec<KeywordRow>, mysql_async::Error> {
    Ok(rows(r, table, cols, filter)
        .await?
        .map(|mut c| KeywordRow {
            id: s(&mut c, 0),
            keyword: s(&mut c, 1),
            data: s(&mut c, 2),
        })
        .collect())
}

async fn settings_rows(
    r: &mut TableReader<'_, '_>,
    table: &str,
    id_col: &str,
    filter: Option<(&str, &str)>,
) -> Result<Vec<UsermanSetting>, mysql_async::Error> {
    Ok(rows(r, table, &[id_col, "module", "key", "val"], filter)
        .await?
        .map(|mut c| UsermanSetting {
            id: int(&mut c, 0),
            module: s(&mut c, 1),
            key: s(&mut c, 2),
            val: s(&mut c, 3),
        })
        .collect())
}

/// userman_groups.users: a JSON array of ids (numbers or strings); tolerate junk.
fn parse_id_list(text: &str) -> Vec<i64> {
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(v) => v
            .into_iter()
            .filter_map(|x| match x {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
