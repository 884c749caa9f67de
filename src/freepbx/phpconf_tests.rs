use super::*;

fn v(text: &str, key: &str) -> Option<String> {
    parse_php_conf(text).values.get(key).cloned()
}

#[test]
fn comments_never_win_over_the_live_line() {
    let text = "<?php\n\
        $amp_conf['AMPDBPASS'] = 'live';\n\
        // $amp_conf['AMPDBPASS'] = 'slashes';\n\
        # $amp_conf['AMPDBPASS'] = 'hash';\n\
        /* $amp_conf['AMPDBPASS'] = 'block';\n\
           $amp_conf['AMPDBNAME'] = 'block2'; */\n\
        $amp_conf['AMPDBNAME'] = 'asterisk'; // trailing $amp_conf['AMPDBNAME'] = 'x';\n\
        $amp_conf['AMPDBHOST'] = 'db' /* inline */ ; # $amp_conf['AMPDBHOST'] = 'y';\n";
    assert_eq!(v(text, "AMPDBPASS").as_deref(), Some("live"));
    assert_eq!(v(text, "AMPDBNAME").as_deref(), Some("asterisk"));
    assert_eq!(v(text, "AMPDBHOST").as_deref(), Some("db"));
}

#[test]
fn the_last_live_assignment_wins() {
    let text = "<?php $amp_conf['AMPDBUSER'] = 'a'; $amp_conf['AMPDBUSER'] = 'b';";
    assert_eq!(v(text, "AMPDBUSER").as_deref(), Some("b"));
}

#[test]
fn single_quoted_escapes() {
    let text = r"<?php $amp_conf['AMPDBPASS'] = 'it\'s a \\ back\slash \n';";
    assert_eq!(
        v(text, "AMPDBPASS").as_deref(),
        Some(r"it's a \ back\slash \n")
    );
}

#[test]
fn double_quoted_escapes() {
    let text =
        r#"<?php $amp_conf["AMPDBPASS"] = "a\$b \"q\" \\ \n\t\r\v\e\f \101\x42\u{263A} \q";"#;
    assert_eq!(
        v(text, "AMPDBPASS").as_deref(),
        Some("a$b \"q\" \\ \n\t\r\x0b\x1b\x0c AB\u{263A} \\q")
    );
}

#[test]
fn interpolation_is_reported_not_guessed() {
    let c = parse_php_conf("<?php\n$amp_conf['AMPDBPASS'] = \"pw$x\";\n");
    assert!(!c.values.contains_key("AMPDBPASS"));
    let why = &c.unevaluable["AMPDBPASS"];
    assert!(
        why.contains("line 2") && why.contains("single quotes"),
        "{why}"
    );
    // An escaped dollar is plain text.
    assert_eq!(
        v("<?php $amp_conf['AMPDBPASS'] = \"pw\\$x\";", "AMPDBPASS").as_deref(),
        Some("pw$x")
    );
}

#[test]
fn literals_numbers_and_concatenation() {
    let text = "<?php $amp_conf['AMPDBPORT'] = 3307; $amp_conf['AMPDBNAME'] = 'ast' . \"erisk\";\n\
                $amp_conf['X'] = true; $amp_conf['Y'] = getenv('Z');";
    let c = parse_php_conf(text);
    assert_eq!(c.values["AMPDBPORT"], "3307");
    assert_eq!(c.values["AMPDBNAME"], "asterisk");
    assert_eq!(c.values["X"], "1");
    assert!(c.unevaluable.contains_key("Y"));
}

#[test]
fn text_outside_php_tags_and_strings_is_not_code() {
    let text = "$amp_conf['AMPDBUSER'] = 'html';\n<?php\n\
        $amp_conf['AMPDBUSER'] = 'php';\n\
        $note = \"$amp_conf['AMPDBUSER'] = 'in a string';\";\n\
        ?>\n$amp_conf['AMPDBUSER'] = 'html again';\n";
    assert_eq!(v(text, "AMPDBUSER").as_deref(), Some("php"));
    // A comment ends at `?>`.
    let text = "<?php $amp_conf['AMPDBUSER'] = 'a'; // c ?> <?php $amp_conf['AMPDBNAME'] = 'n';";
    assert_eq!(v(text, "AMPDBNAME").as_deref(), Some("n"));
}

#[test]
fn only_statement_starts_count() {
    let text =
        "<?php if (0) $amp_conf['AMPDBUSER'] = 'cond'; $x = $amp_conf['AMPDBUSER'] = 'chain';";
    assert!(v(text, "AMPDBUSER").is_none());
}

#[test]
fn unterminated_input_does_not_panic() {
    for text in [
        "<?php $amp_conf['A",
        "<?php /* never closed",
        "<?php $amp_conf['A'] = \"x\\",
        "<?php $amp_conf['A'] = \"\\u{110000}\";",
        "<?php $amp_conf['A'] = \"\\u{",
        "<?php $amp_conf['A'] = \"\\x",
        "<?",
        "",
    ] {
        let _ = parse_php_conf(text);
    }
}

#[test]
fn any_single_quoted_value_reads_back() {
    // The fuzz target's property, on the inputs most likely to break it.
    for value in [
        "",
        "a'b",
        "x\\",
        "\\'",
        "?> <?php",
        "*/ /* // #",
        "$x {$y}",
        "é\u{0}\n",
    ] {
        let literal = value.replace('\\', "\\\\").replace('\'', "\\'");
        let file = format!("<?php\n$amp_conf['AMPDBPASS'] = '{literal}';\n// {value}");
        assert_eq!(v(&file, "AMPDBPASS").as_deref(), Some(value), "{file:?}");
    }
}
