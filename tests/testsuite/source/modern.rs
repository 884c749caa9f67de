//! FreePBX 16/17 against real MariaDB: userman and cxpanel-table modes, both cxpanel settings
//! layouts, a FreePBX without the cxpanel module, schema drift, and the snapshot round trip.

use crate::support;

use isymphony_sync::config::Config;
use isymphony_sync::freepbx::{self, snapshot::*};
use isymphony_sync::mapping::{self, Mode};
use isymphony_sync::model::*;
use isymphony_sync::secret::Secret;
use std::path::PathBuf;
use support::TestDb;

const VOICEMAIL_CONF: &str = "[general]\nserveremail=vm@example.com\n\n[default]\n\
1001 => 1234,Zoë O'Brien,zoe@example.com|zoe.obrien@example.org,,attach=yes|saycid=no\n\
1003 = 4321,José Müller,jose@example.com\n\
1004 => 1,Beijing,,\n\
1007 => 1,Carl,carl@example.com\n";

const KVSTORE_SETTINGS: &str = r"INSERT INTO kvstore_FreePBX_modules_Cxpanel (`key`, val, type, id) VALUES
 ('name', 'pbx-east', NULL, 'settings_server'), ('asterisk_host', '10.0.0.5', NULL, 'settings_server'),
 ('client_host', '', NULL, 'settings_server'), ('client_port', '58080', NULL, 'settings_server'),
 ('client_use_ssl', '0', NULL, 'settings_server'), ('api_host', 'isy.example', NULL, 'settings_server'),
 ('api_port', '58443', NULL, 'settings_server'), ('api_username', 'manager', NULL, 'settings_server'),
 ('api_password', 'apisecret', NULL, 'settings_server'), ('api_use_ssl', '1', NULL, 'settings_server'),
 ('sync_with_userman', '1', NULL, 'settings_server'), ('clean_unknown_items', '0', NULL, 'settings_server'),
 ('identifier', 'vm-east', NULL, 'settings_voicemail_agent'),
 ('directory', '/var/spool/asterisk/voicemail', NULL, 'settings_voicemail_agent'),
 ('resource_host', 'pbx1', NULL, 'settings_voicemail_agent'),
 ('resource_extension', 'wav', NULL, 'settings_voicemail_agent'),
 ('identifier', 'rec-east', NULL, 'settings_recording_agent'),
 ('directory', '/var/spool/asterisk/monitor', NULL, 'settings_recording_agent'),
 ('resource_host', 'pbx1', NULL, 'settings_recording_agent'),
 ('resource_extension', 'mp3', NULL, 'settings_recording_agent'),
 ('file_name_mask', '\\${Tag(exten)}-\\${CDRUniqueId}', NULL, 'settings_recording_agent'),
 ('from', 'pbx@example.com', NULL, 'settings_mail');";

const TABLE_SETTINGS: &str = "INSERT INTO cxpanel_server VALUES
 ('legacy-core', 'localhost', '', 58080, 0, 'localhost', 58080, 'manager', 'oldsecret', 0, 0, 1);
INSERT INTO cxpanel_voicemail_agent VALUES ('local-vm', '/var/spool/asterisk/voicemail', 'pbx2', 'wav');
INSERT INTO cxpanel_recording_agent VALUES ('local-rec', '/var/spool/asterisk/monitor', 'pbx2', 'wav', '${Tag(exten)}-${CDRUniqueId}');";

struct Fixture {
    db: TestDb,
    _dir: tempfile::TempDir,
    vm: PathBuf,
}

impl Fixture {
    fn cfg(&self) -> Config {
        self.db.config(&self.vm)
    }
}

/// Modern schema + data; `settings`: which cxpanel settings layout to add.
async fn modern(settings: Option<&str>) -> Fixture {
    let db = TestDb::create().await;
    db.load_fixture("freepbx_modern_schema.sql").await;
    db.load_fixture("freepbx_modern_data.sql").await;
    match settings {
        Some("kvstore") => {
            db.load_fixture("cx_settings_kvstore.sql").await;
            db.exec(KVSTORE_SETTINGS).await;
        }
        Some("tables") => {
            db.load_fixture("cx_settings_tables.sql").await;
            db.exec(TABLE_SETTINGS).await;
        }
        _ => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("voicemail.conf");
    std::fs::write(&vm, VOICEMAIL_CONF).unwrap();
    Fixture { db, _dir: dir, vm }
}

fn ext(d: &Desired, n: &str) -> ExtensionSpec {
    d.extensions
        .get(n)
        .unwrap_or_else(|| panic!("extension {n} missing"))
        .clone()
}

fn user<'a>(d: &'a Desired, n: &str) -> &'a UserSpec {
    d.users.get(n).unwrap_or_else(|| panic!("user {n} missing"))
}

fn hash(p: &PasswordSpec) -> Option<&str> {
    p.hash.as_ref().map(Secret::expose)
}

fn phone(kind: &str, number: &str) -> PhoneSpec {
    PhoneSpec {
        kind: kind.into(),
        number: number.into(),
    }
}

/// Extensions are the same in both cxpanel modes: selection and flags from cxpanel_users,
/// names and dial strings from the core tables.
fn assert_cx_extensions(d: &Desired) {
    let keys: Vec<&str> = d.extensions.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["1001", "1002", "1003", "1004", "1005", "1007", "1008"]
    );
    assert_eq!(
        ext(d, "1001"),
        ExtensionSpec {
            extension: "1001".into(),
            display_name: "Zoë O'Brien".into(),
            auto_answer: true,
            peer: "PJSIP/1001".into(),
            agent_name: "Zoë O'Brien".into(),
            agent_location: "Local/1001@from-queue/n".into(),
            agent_interface: "PJSIP/1001".into(),
            voice_mail_context: "default".into(),
            voice_mail_box: "1001".into(),
        }
    );
    let e = ext(d, "1002"); // empty name, novm, chan_sip
    assert_eq!(
        (e.display_name.as_str(), e.agent_name.as_str()),
        ("1002", "1002")
    );
    assert_eq!(
        (e.peer.as_str(), e.agent_interface.as_str()),
        ("SIP/1002", "SIP/1002")
    );
    assert_eq!(e.voice_mail_context, "default");
    assert!(!e.auto_answer);
    let e = ext(d, "1003"); // IAX2
    assert_eq!(
        (e.display_name.as_str(), e.peer.as_str()),
        ("José Müller", "IAX2/1003")
    );
    let e = ext(d, "1004"); // DAHDI
    assert_eq!(
        (e.display_name.as_str(), e.peer.as_str()),
        ("北京 Office", "DAHDI/4")
    );
    assert!(e.auto_answer);
    let e = ext(d, "1005"); // virtual: no device, no made-up SIP/1005
    assert_eq!((e.peer.as_str(), e.agent_interface.as_str()), ("", ""));
    assert_eq!(e.voice_mail_context, "default");
    let e = ext(d, "1007"); // converted to PJSIP and renamed outside cxpanel's hooks
    assert_eq!(
        (e.display_name.as_str(), e.peer.as_str()),
        ("Converted Carl", "PJSIP/1007")
    );
    let e = ext(d, "1008"); // no cxpanel row yet, blank dial, sipdriver chan_pjsip
    assert_eq!(
        (e.display_name.as_str(), e.peer.as_str()),
        ("New Nadia", "PJSIP/1008")
    );
    assert!(!e.auto_answer);
}

fn assert_queues_rooms_parking(d: &Desired) {
    let q: Vec<(&str, &str)> = d
        .queues
        .values()
        .map(|q| (q.identifier.as_str(), q.display_name.as_str()))
        .collect();
    assert_eq!(q, [("400", "Sales"), ("401", "401")]);
    let q = &d.queues["400"];
    assert_eq!(
        (
            q.destination_extension.as_str(),
            q.destination_context.as_str()
        ),
        ("400", "from-internal")
    );
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("queue 400") && w.contains("eventmemberstatus=no")),
        "{:?}",
        d.warnings
    );
    let r: Vec<(&str, &str)> = d
        .conference_rooms
        .values()
        .map(|r| (r.identifier.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(r, [("9001", "Board Room"), ("9002", "9002")]);
    assert_eq!(
        d.conference_rooms["9001"].destination_context,
        "from-internal"
    );
    assert_eq!(
        d.parking_lot,
        Some(ParkingLotSpec {
            identifier: "default".into(),
            name: "Main".into(),
            destination_extension: "700".into(),
            destination_context: "from-internal".into(),
        })
    );
}

#[tokio::test]
async fn userman_mode_with_kvstore_settings() {
    let f = modern(Some("kvstore")).await;
    let cfg = f.cfg();
    let snap = freepbx::read(&cfg).await.unwrap();
    assert_eq!(mapping::mode(&snap), Mode::CxUserman);

    // Settings (kvstore layout) and ownership rows for the reconciler.
    let cx = snap.cx_settings.as_ref().unwrap();
    assert_eq!(cx.layout, CxSettingsLayout::Kvstore);
    let s = cx.server.as_ref().unwrap();
    assert_eq!(
        (s.name.as_str(), s.api_host.as_str(), s.api_port),
        ("pbx-east", "isy.example", 58443)
    );
    assert_eq!(
        (s.api_username.as_str(), s.api_password.expose()),
        ("manager", "apisecret")
    );
    assert!(s.api_use_ssl && s.sync_with_userman && !s.clean_unknown_items);
    assert_eq!(snap.managed_items.len(), 2);
    assert!(snap.managed_items.contains(&ManagedItem {
        kind: Kind::User,
        fpbx_id: "zoe".into(),
        cxpanel_id: "0b7c3f5e-0000-4000-8000-000000000002".into(),
    }));
    assert_eq!(snap.need_reload.as_deref(), Some("false"));
    assert_eq!(snap.voicemail.len(), 4);

    let d = mapping::desired(&snap, &cfg);
    assert_eq!(
        d.core_server,
        CoreServerSpec {
            slug: "pbx-east".into(),
            name: "pbx-east".into()
        }
    );
    assert_eq!(d.asterisk.originating_context, "from-internal");
    assert_eq!(d.asterisk.redirecting_context, "from-internal");
    assert_eq!(d.asterisk.music_on_hold_class, "default");
    assert_eq!(
        d.voicemail_agent,
        Some(AgentSpec {
            identifier: "vm-east".into(),
            root_path: "/var/spool/asterisk/voicemail".into(),
            resource_host: "pbx1".into(),
            resource_extension: "wav".into(),
        })
    );
    let rec = d.recording_agent.clone().unwrap();
    assert_eq!(
        (rec.identifier.as_str(), rec.resource_extension.as_str()),
        ("rec-east", "mp3")
    );
    assert_eq!(rec.file_name_mask, "${Tag(exten)}-${CDRUniqueId}");
    let pbx = d.pbx_server.clone().unwrap();
    assert_eq!(pbx.display_name, "Acme PBX - 10.0.0.5");
    assert_eq!((pbx.host.as_str(), pbx.port), ("10.0.0.5", 5038));
    assert_eq!(
        (pbx.username.as_str(), pbx.password.expose()),
        ("cxpanel", "cxmanager*con")
    );
    assert_eq!((pbx.cdr_host.as_str(), pbx.cdr_port), ("10.0.0.5", 3306));
    // The agent's own login (database_url) is never the CDR login; FreePBX's comes from
    // freepbx.conf (the default path, absent on a test machine: unknown).
    if !std::path::Path::new("/etc/freepbx.conf").exists() {
        assert_eq!(pbx.cdr_username, None);
        assert_eq!(pbx.cdr_password, None);
        assert!(d.warnings.iter().any(|w| w.contains("CDR database login")));
    }
    assert_eq!(pbx.recording_agent_identifier, "rec-east");

    // Administrators: ampusers with * or cxpanel, plus userman GUI admins (userman wins).
    let admins: Vec<(&str, Option<&str>)> = d
        .administrators
        .values()
        .map(|a| (a.user_name.as_str(), hash(&a.password)))
        .collect();
    assert_eq!(
        admins,
        [
            ("admin", Some("4cf7195e22df3327469e64b62b790d775a85ef1a")),
            ("cxop", Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")),
            ("ops", Some("$P$opshash")),
            ("vera", None),
        ]
    );

    assert_cx_extensions(&d);

    // Users: zoe (own add=1), bob (group add=1), vera, ed; not carl (0), nobody (unset), ops (0).
    let names: Vec<&str> = d.users.keys().map(String::as_str).collect();
    assert_eq!(names, ["bob", "ed", "vera", "zoe"]);
    let zoe = user(&d, "zoe");
    assert_eq!(hash(&zoe.password), Some("$2a$08$zoehash"));
    assert!(!zoe.password.dirty);
    assert!(zoe.full && zoe.enabled);
    assert_eq!(
        (zoe.first_name.as_str(), zoe.last_name.as_str()),
        ("Zoë", "O'Brien")
    );
    assert_eq!(zoe.emails, ["zoe@example.com"]);
    assert_eq!(
        zoe.phones,
        [phone("Cell", "+1 555 0101"), phone("Home", "555-0102")]
    );
    assert_eq!(zoe.extensions, ["1001"]);
    let bob = user(&d, "bob");
    assert_eq!(
        hash(&bob.password),
        Some("5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8")
    );
    assert!(bob.password.dirty, "missing password_dirty counts as dirty");
    assert_eq!(
        (bob.first_name.as_str(), bob.last_name.as_str()),
        ("Bob", "Builder")
    );
    assert_eq!(bob.emails, ["bob@example.com", "bob@home.example"]);
    assert_eq!(bob.phones, [phone("Work", "2002")]);
    assert!(bob.extensions.is_empty(), "1001 belongs to zoe (lower id)");
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("1001") && w.contains("\"zoe\"") && w.contains("\"bob\"")),
        "{:?}",
        d.warnings
    );
    let vera = user(&d, "vera");
    assert_eq!(vera.password.hash, None);
    assert_eq!(
        (vera.first_name.as_str(), vera.last_name.as_str()),
        ("Vera", "Virtual Jr.")
    );
    assert_eq!(vera.extensions, ["1005"]);
    let ed = user(&d, "ed");
    assert!(ed.password.dirty);
    assert!(ed.extensions.is_empty(), "1006 is excluded from iSymphony");

    assert_queues_rooms_parking(&d);
}

#[tokio::test]
async fn cxpanel_table_mode_with_legacy_settings_tables() {
    let f = modern(Some("tables")).await;
    let cfg = f.cfg();
    let snap = freepbx::read(&cfg).await.unwrap();
    let cx = snap.cx_settings.as_ref().unwrap();
    assert_eq!(cx.layout, CxSettingsLayout::Tables);
    let s = cx.server.as_ref().unwrap();
    assert_eq!(
        (s.name.as_str(), s.api_port, s.api_password.expose()),
        ("legacy-core", 58080, "oldsecret")
    );
    assert!(!s.sync_with_userman && s.clean_unknown_items && !s.api_use_ssl);
    assert_eq!(mapping::mode(&snap), Mode::CxTables);

    let d = mapping::desired(&snap, &cfg);
    assert_eq!(d.core_server.slug, "legacy-core");
    let vm = d.voicemail_agent.clone().unwrap();
    assert_eq!(
        (vm.identifier.as_str(), vm.resource_host.as_str()),
        ("local-vm", "pbx2")
    );
    assert_eq!(
        d.recording_agent.clone().unwrap().file_name_mask,
        "${Tag(exten)}-${CDRUniqueId}"
    );
    assert_eq!(
        d.pbx_server.clone().unwrap().display_name,
        "Acme PBX - localhost"
    );
    assert_cx_extensions(&d);

    // Logins per extension with add_user=1 (1002 is bound to 1001, 1006 excluded).
    let names: Vec<&str> = d.users.keys().map(String::as_str).collect();
    assert_eq!(names, ["1001", "1003", "1004", "1005", "1007", "1008"]);
    let u = user(&d, "1001");
    assert_eq!(
        hash(&u.password),
        Some("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1")
    );
    assert!(u.password.dirty && u.full && u.enabled);
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Zoë", "O'Brien")
    );
    assert_eq!(u.emails, ["zoe@example.com", "zoe.obrien@example.org"]);
    assert_eq!(u.phones, [phone("Mobile", "+49 30 1234")]);
    assert_eq!(u.extensions, ["1001", "1002"]);
    let u = user(&d, "1003");
    assert!(!u.password.dirty);
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("José", "Müller")
    );
    assert_eq!(u.emails, ["jose@example.com"]);
    assert_eq!(u.phones, [phone("Work", "555")]);
    assert_eq!(u.extensions, ["1003"]);
    let u = user(&d, "1004");
    assert!(!u.full, "lite user");
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("北京", "Office")
    );
    assert!(u.emails.is_empty());
    let u = user(&d, "1007");
    assert_eq!(u.password.hash, None);
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Converted", "Carl")
    );
    assert_eq!(u.emails, ["carl@example.com"]);
    let u = user(&d, "1008");
    assert_eq!(
        u.password,
        PasswordSpec {
            hash: None,
            dirty: false
        }
    );
    assert!(u.full);
    assert_eq!(u.extensions, ["1008"]);

    assert_queues_rooms_parking(&d);
}

#[tokio::test]
async fn without_the_cxpanel_module_defaults_apply() {
    let f = modern(None).await;
    f.db
        .exec("DROP TABLE cxpanel_users; DROP TABLE cxpanel_queues; DROP TABLE cxpanel_conference_rooms;\nDROP TABLE cxpanel_phone_number; DROP TABLE cxpanel_managed_items;\nDELETE FROM modules WHERE modulename = 'cxpanel';")
        .await;
    let cfg = f.cfg();
    let snap = freepbx::read(&cfg).await.unwrap();
    assert_eq!(mapping::mode(&snap), Mode::NoCxpanel);
    assert!(snap.managed_items.is_empty() && snap.cx_settings.is_none());
    let d = mapping::desired(&snap, &cfg);
    assert_eq!(d.core_server.slug, "default");
    assert_eq!(d.extensions.len(), 8, "every extension");
    assert!(d.extensions.values().all(|e| !e.auto_answer));
    assert_eq!(ext(&d, "1006").peer, "PJSIP/1006");
    // Logins only for userman users with a password (vera has none).
    let names: Vec<&str> = d.users.keys().map(String::as_str).collect();
    assert_eq!(names, ["bob", "carl", "ed", "nobody", "ops", "zoe"]);
    assert!(d
        .users
        .values()
        .all(|u| u.full && u.password.dirty && u.password.hash.is_some()));
    assert_eq!(user(&d, "carl").extensions, ["1007"]);
    assert_eq!(user(&d, "ed").extensions, ["1006"]);
    assert!(user(&d, "bob").extensions.is_empty());
    assert_eq!(d.queues.keys().collect::<Vec<_>>(), ["400", "401", "402"]);
    assert_eq!(
        d.conference_rooms.keys().collect::<Vec<_>>(),
        ["9001", "9002", "9003"]
    );

    let mut cfg = f.cfg();
    cfg.sync.default_add_users = false;
    cfg.sync.default_add_queues = false;
    cfg.sync.default_add_conference_rooms = false;
    cfg.sync.default_auto_answer = true;
    cfg.isymphony.core_server = Some("my-core".into());
    let d = mapping::desired(&snap, &cfg);
    assert!(d.users.is_empty() && d.queues.is_empty() && d.conference_rooms.is_empty());
    assert!(d.extensions.values().all(|e| e.auto_answer));
    assert_eq!(d.core_server.slug, "my-core");
    cfg.sync.default_add_extensions = false;
    assert!(mapping::desired(&snap, &cfg).extensions.is_empty());
}

#[tokio::test]
async fn missing_columns_take_defaults_with_a_warning() {
    let f = modern(Some("kvstore")).await;
    f.db.exec("ALTER TABLE users DROP COLUMN voicemail;\nALTER TABLE userman_users DROP COLUMN cell;\nALTER TABLE users ADD COLUMN site_extra VARCHAR(10) NULL;").await;
    let cfg = f.cfg();
    let snap = freepbx::read(&cfg).await.unwrap();
    assert!(
        snap.warnings
            .iter()
            .any(|w| w.contains("users has no column voicemail")),
        "{:?}",
        snap.warnings
    );
    assert!(snap
        .warnings
        .iter()
        .any(|w| w.contains("userman_users has no column cell")));
    let d = mapping::desired(&snap, &cfg);
    assert_eq!(ext(&d, "1003").voice_mail_context, "default");
    assert_eq!(user(&d, "zoe").phones, [phone("Home", "555-0102")]);
    assert!(d
        .warnings
        .iter()
        .any(|w| w.contains("users has no column voicemail")));
}

#[tokio::test]
async fn snapshot_export_redacts_and_round_trips() {
    let f = modern(Some("kvstore")).await;
    let cfg = f.cfg();
    let dir = tempfile::tempdir().unwrap();

    let redacted = dir.path().join("snap.json");
    let snap = freepbx::export_snapshot(&cfg, &redacted, false)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&redacted).unwrap();
    for secret in [
        "apisecret",
        "$2a$08$zoehash",
        "4cf7195e22df3327469e64b62b790d775a85ef1a",
        "a1a1a1a1a1",
        "init-pw-1",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the export");
    }
    let back = Snapshot::from_json(&text).unwrap();
    assert_eq!(
        back.cx_settings
            .clone()
            .unwrap()
            .server
            .unwrap()
            .api_password
            .expose(),
        "***"
    );
    assert_eq!(back.userman_users[0].password.expose(), "***");
    assert_eq!(
        back.userman_users[4].password.expose(),
        "",
        "empty stays empty"
    );
    assert_eq!(back.users, snap.users);
    assert!(back.redacted && !snap.redacted);
    // A redacted snapshot never makes the agent push `***` as a password hash.
    let d = mapping::desired(&back, &cfg);
    assert!(d.users.values().all(|u| u.password.hash.is_none()));
    assert!(d.administrators.values().all(|a| a.password.hash.is_none()));
    assert!(d.warnings.iter().any(|w| w.contains("without secrets")));

    let full = dir.path().join("full.json");
    freepbx::export_snapshot(&cfg, &full, true).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&full).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut offline = Config::default();
    offline.freepbx.snapshot = Some(full.clone());
    let loaded = freepbx::read(&offline).await.unwrap();
    assert_eq!(loaded, snap);
    assert_eq!(
        mapping::desired(&loaded, &offline),
        mapping::desired(&snap, &offline)
    );

    // The CLI mode writes the same (redacted) file and exits 0.
    let cfg_file = dir.path().join("config.toml");
    std::fs::write(
        &cfg_file,
        format!(
            "[freepbx]\ndatabase_url = \"{}\"\nvoicemail_conf = \"{}\"\n",
            f.db.url(),
            f.vm.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("cli.json");
    let st = support::process::bin()
        .arg("--config")
        .arg(&cfg_file)
        .arg("--export-snapshot")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let cli = Snapshot::load(&out).unwrap();
    assert_eq!(cli.userman_users, back.userman_users);
    assert_eq!(cli.cxpanel_users[0].hashed_password.expose(), "***");

    // A broken snapshot file is named in the error.
    std::fs::write(&full, "{\"users\": 5}").unwrap();
    let e = freepbx::read(&offline).await.unwrap_err().to_string();
    assert!(e.contains("full.json") && e.contains("users"), "{e}");
}
