//! Users: passwords, the full flag, contacts, e-mail addresses, phone numbers and extension
//! bindings.

use super::*;

#[test]
fn user_password_is_pushed_only_when_freepbx_changed_it() {
    let mut d = desired();
    for u in d.users.values_mut() {
        u.password.dirty = true;
    }
    let own_p = own_pushed(&d);
    let mut o = converged(&d, &own_p);
    // Changed in iSymphony after the agent pushed it: left alone.
    o.users[0].password = Secret::new(SHA_B);
    assert!(diff(&d, &o, &own_p).is_empty());
    // Never pushed and already equal: recorded, not pushed.
    let fresh = own();
    let o2 = converged(&d, &fresh);
    let p = diff(&d, &o2, &fresh);
    assert!(p.is_empty());
    assert_eq!(p.verified.len(), 2);
    // FreePBX changed it: pushed through noHash, masked in the plan.
    let mut d2 = d.clone();
    d2.users.get_mut("1001").unwrap().password.hash = Some(Secret::new(SHA_B));
    o.users[0].password = Secret::new(SHA_A);
    let mut clean = d2.clone();
    clean.users.get_mut("1001").unwrap().password.dirty = false;
    assert!(
        diff(&clean, &o, &own_p).is_empty(),
        "not marked dirty: kept"
    );
    let p = diff(&d2, &o, &own_p);
    assert_eq!(lines(&p), vec!["~ update user 1001: password *** -> ***"]);
    assert!(p.ops[0].request.path.contains("/users/noHash/"));
    assert_eq!(
        p.ops[0].request.body.as_ref().unwrap().value()["password"],
        json!(SHA_B)
    );
    assert!(matches!(p.ops[0].effects[0], Effect::Password { .. }));
    let text = p.render_text(false) + &p.to_json().to_string();
    assert!(!text.contains(SHA_B) && !text.contains(SHA_A), "{text}");
}

#[test]
fn user_full_flag_and_deletion() {
    let mut d = desired();
    d.users.get_mut("1002").unwrap().full = false;
    let own = own_pushed(&d);
    let o = converged(&desired(), &own);
    assert_eq!(
        lines(&diff(&d, &o, &own)),
        vec!["~ update user 1002: full true -> false"]
    );
    let mut d3 = desired();
    d3.users.remove("1002");
    let p = diff(&d3, &o, &own);
    assert!(
        lines(&p).contains(&"- delete user 1002".to_string()),
        "{:?}",
        lines(&p)
    );
}

#[test]
fn contact_is_compared_only_when_read() {
    let mut d = desired();
    d.users.get_mut("1001").unwrap().last_name = "Smith-Jones".into();
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    assert_eq!(
        lines(&diff(&d, &o, &own)),
        vec!["~ update contact of user 1001: lastName \"Smith\" -> \"Smith-Jones\""]
    );
    o.contacts.clear();
    assert!(diff(&d, &o, &own).is_empty());
    // No contact record yet: created with a PUT.
    let uid = own.id(Kind::User, "1001");
    o.contacts.insert(uid, None);
    let p = diff(&d, &o, &own);
    assert_eq!(p.ops[0].action, Action::Create);
    assert_eq!(p.ops[0].request.method, Method::Put);
}

#[test]
fn emails_added_by_people_survive_and_the_agents_old_ones_go() {
    let mut d = desired();
    d.users.get_mut("1001").unwrap().emails = vec!["new@example.com".into()];
    let mut own = own_pushed(&d);
    own.known.added.insert(
        (Kind::Email, "1001".into()),
        ["1001@example.com".to_string()].into_iter().collect(),
    );
    let mut o = converged(&desired(), &own);
    let uid = own.id(Kind::User, "1001");
    o.emails.get_mut(&uid).unwrap().push(EmailAddress {
        id: Some("person-added".into()),
        kind: "Home".into(),
        address: "private@example.com".into(),
        extra: Default::default(),
    });
    let mut l = lines(&diff(&d, &o, &own));
    l.sort();
    assert_eq!(
        l,
        vec![
            "+ add e-mail new@example.com to user 1001",
            "- remove e-mail 1001@example.com from user 1001"
        ]
    );
}

#[test]
fn emails_keep_their_case_and_compare_without_it() {
    let mut d = desired();
    d.users.get_mut("1001").unwrap().emails = vec!["Ann.Lee@Corp.COM".into()];
    let own = own_pushed(&d);
    let mut o = converged(&desired(), &own);
    let uid = own.id(Kind::User, "1001");
    let p = diff(&d, &o, &own);
    let add = p
        .ops
        .iter()
        .find(|op| op.kind == Kind::Email && op.action == Action::Create);
    let add = add.expect("an e-mail to add");
    assert_eq!(
        add.request.body.as_ref().unwrap().value()["address"],
        json!("Ann.Lee@Corp.COM")
    );
    assert_eq!(add.label.as_deref(), Some("Ann.Lee@Corp.COM"));
    // The server holding it in another case is in sync.
    o.emails.get_mut(&uid).unwrap()[0].address = "ann.lee@corp.com".into();
    let l = lines(&diff(&d, &o, &own));
    assert!(!l.iter().any(|x| x.contains("e-mail")), "{l:?}");
}

#[test]
fn phones_added_by_people_survive() {
    let mut d = desired();
    d.users.get_mut("1002").unwrap().phones = vec![PhoneSpec {
        kind: "Work".into(),
        number: "777".into(),
    }];
    let mut own = own_pushed(&d);
    own.known.added.insert(
        (Kind::Phone, "1002".into()),
        ["Cell|5551002".to_string()].into_iter().collect(),
    );
    let mut o = converged(&desired(), &own);
    let uid = own.id(Kind::User, "1002");
    o.phones.get_mut(&uid).unwrap().push(PhoneNumber {
        id: Some("mine".into()),
        kind: "Home".into(),
        number: "123".into(),
        extra: Default::default(),
    });
    let mut l = lines(&diff(&d, &o, &own));
    l.sort();
    assert_eq!(
        l,
        vec![
            "+ add phone number Work 777 to user 1002",
            "- remove phone number Cell 5551002 from user 1002"
        ]
    );
}

#[test]
fn moved_binding_and_unbinding() {
    let mut d = desired();
    d.users.get_mut("1002").unwrap().extensions.clear();
    d.users.get_mut("1001").unwrap().extensions = vec!["1001".into(), "1002".into()];
    let own = own_pushed(&d);
    let o = converged(&desired(), &own);
    let p = diff(&d, &o, &own);
    assert_eq!(
        lines(&p),
        vec!["~ rebind extension 1002: user \"1002\" -> \"1001\""]
    );
    assert_eq!(
        p.ops[0].request.body.as_ref().unwrap().value()["username"],
        json!("1001")
    );
    let mut d2 = desired();
    d2.users.get_mut("1002").unwrap().extensions.clear();
    assert_eq!(
        lines(&diff(&d2, &o, &own)),
        vec!["- unbind extension 1002 from user \"1002\""]
    );
}
