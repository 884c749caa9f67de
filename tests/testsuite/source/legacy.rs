//! FreePBX 2.8-shaped database (MyISAM, latin1, no userman, no cxpanel) against real MariaDB,
//! connected through amportal.conf (no freepbx.conf), with a latin1 voicemail.conf.

use crate::support;

use isymphony_sync::freepbx;
use isymphony_sync::mapping::{self, Mode};
use support::TestDb;

const DATA: &str = "INSERT INTO users (extension, name, voicemail, site_room) VALUES
 ('460', 'Rocío Checa', 'default', 'R1'), ('461', '', 'novm', NULL), ('462', 'Jean-Luc D''Arcy', 'default', NULL),
 ('463', 'Virtual', 'novm', NULL), ('464', 'Mañana Zap', 'default', NULL);
INSERT INTO devices (id, tech, dial, devicetype, user, description, emergency_cid) VALUES
 ('460', 'sip', 'SIP/460', 'fixed', '460', 'Rocío Checa', ''), ('461', 'sip', '', 'fixed', '461', '', ''),
 ('462', 'iax2', 'IAX2/462', 'fixed', '462', 'Jean-Luc', ''), ('464', 'dahdi', 'DAHDI/2', 'fixed', '464', 'Zap', '');
INSERT INTO sip (id, keyword, data) VALUES ('460', 'dial', 'SIP/460'), ('460', 'secret', 'x'),
 ('461', 'dial', 'SIP/461'), ('tr-peer-6', 'host', 'sip.example.es');
INSERT INTO iax (id, keyword, data) VALUES ('462', 'dial', 'IAX2/462');
INSERT INTO queues_config (extension, descr, grppre, dest) VALUES
 ('1002', 'Nextor Atn', 'ANextor - ', 'ext-queues,1003,1'), ('1003', '', '', '');
INSERT INTO queues_details (id, keyword, data) VALUES ('1002', 'member', 'SIP/460,0');
INSERT INTO meetme (exten, options, userpin, description) VALUES ('9001', 'oTcMsr', '99278', 'Subdirección 2');
INSERT INTO parkinglot (id, keyword, data) VALUES ('1', 'parkingenabled', 's'), ('1', 'parkext', '70'), ('1', 'numslots', '8');
INSERT INTO ampusers (username, password_sha1, sections) VALUES
 ('admin', '4cf7195e22df3327469e64b62b790d775a85ef1a', '*'), ('reception', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'queues');
INSERT INTO admin (variable, value) VALUES ('need_reload', 'true'), ('version', '2.8.1');
INSERT INTO modules (modulename, version, enabled) VALUES ('core', '2.8.1.4', 1), ('framework', '2.8.1.4', 1);
INSERT INTO globals (variable, value) VALUES ('VM_PREFIX', '*');";

#[tokio::test]
async fn freepbx_28_myisam_latin1_via_amportal_conf() {
    let db = TestDb::create().await;
    db.load_fixture("freepbx_28_schema.sql").await;
    db.exec(DATA).await;

    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("voicemail.conf");
    // Old systems wrote voicemail.conf in latin1.
    std::fs::write(
        &vm,
        b"[general]\r\nformat=wav\r\n[default]\r\n460 => 1234,Roc\xedo Checa,rocio@example.es,,attach=yes\r\n464 => 1,Ma\xf1ana,m1@example.es|m2@example.es\r\n",
    )
    .unwrap();
    let o = support::server_opts();
    let amportal = dir.path().join("amportal.conf");
    std::fs::write(
        &amportal,
        format!(
            "# This file is auto-generated\nAMPDBHOST={}\nAMPDBPORT={}\nAMPDBUSER={}\nAMPDBPASS={}\nAMPDBNAME={}\nAMPDBENGINE=mysql\n",
            o.ip_or_hostname(),
            o.tcp_port(),
            o.user().unwrap_or("root"),
            o.pass().unwrap_or(""),
            db.name
        ),
    )
    .unwrap();
    let mut cfg = isymphony_sync::config::Config::default();
    cfg.freepbx.config_file = dir.path().join("freepbx.conf"); // absent: fall back
    cfg.freepbx.amportal_conf = amportal;
    cfg.freepbx.voicemail_conf = vm;
    assert!(freepbx::describe_target(&cfg).ends_with(&format!("/{}", db.name)));

    let snap = freepbx::read(&cfg).await.unwrap();
    assert_eq!(mapping::mode(&snap), Mode::NoCxpanel);
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
    assert_eq!(snap.need_reload.as_deref(), Some("true"));
    assert_eq!(
        snap.users[0].name, "Rocío Checa",
        "latin1 column read as UTF-8"
    );
    assert_eq!(snap.voicemail[0].name, "Rocío Checa", "latin1 file decoded");
    assert_eq!(snap.voicemail[1].emails, ["m1@example.es", "m2@example.es"]);

    let d = mapping::desired(&snap, &cfg);
    assert_eq!(d.core_server.slug, "default");
    assert_eq!(
        d.pbx_server.clone().unwrap().display_name,
        "FreePBX - localhost"
    );
    assert_eq!(
        d.voicemail_agent.clone().unwrap().root_path,
        "/var/spool/asterisk/voicemail"
    );
    assert_eq!(d.voicemail_agent.clone().unwrap().identifier, "local-vm");
    assert_eq!(d.recording_agent.clone().unwrap().identifier, "local-rec");

    let got: Vec<(&str, &str, &str, &str)> = d
        .extensions
        .values()
        .map(|e| {
            (
                e.extension.as_str(),
                e.display_name.as_str(),
                e.peer.as_str(),
                e.voice_mail_context.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("460", "Rocío Checa", "SIP/460", "default"),
            ("461", "461", "SIP/461", "default"),
            ("462", "Jean-Luc D'Arcy", "IAX2/462", "default"),
            ("463", "Virtual", "", "default"),
            ("464", "Mañana Zap", "DAHDI/2", "default"),
        ]
    );
    for e in d.extensions.values() {
        assert_eq!(e.agent_interface, e.peer);
        assert_eq!(e.agent_name, e.display_name);
        assert_eq!(
            e.agent_location,
            format!("Local/{}@from-queue/n", e.extension)
        );
        assert_eq!(e.voice_mail_box, e.extension);
        assert!(!e.auto_answer);
    }
    assert!(
        d.users.is_empty(),
        "no userman, no cxpanel: no password to give"
    );
    assert_eq!(d.administrators.keys().collect::<Vec<_>>(), ["admin"]);
    assert_eq!(
        d.administrators["admin"]
            .password
            .hash
            .as_ref()
            .unwrap()
            .expose(),
        "4cf7195e22df3327469e64b62b790d775a85ef1a"
    );
    let q: Vec<(&str, &str)> = d
        .queues
        .values()
        .map(|q| (q.identifier.as_str(), q.display_name.as_str()))
        .collect();
    assert_eq!(q, [("1002", "Nextor Atn"), ("1003", "1003")]);
    assert_eq!(d.conference_rooms["9001"].name, "Subdirección 2");
    assert_eq!(d.parking_lot.as_ref().unwrap().destination_extension, "70");

    // Parking switched off in the legacy table: no lot.
    db.exec("DELETE FROM parkinglot WHERE keyword = 'parkingenabled'")
        .await;
    let snap = freepbx::read(&cfg).await.unwrap();
    assert_eq!(mapping::desired(&snap, &cfg).parking_lot, None);
}
