//! The command line as an admin and an MTA use it: exit codes, JSON, quarantine, users.

use crate::support::{is_postgres, run_binary, TestEnv};

const MESSAGE: &str = "From: Ann Lee <ann@customer.example>\r\nTo: support@example.com\r\nSubject: VPN down\r\nMessage-ID: <vpn-1@customer.example>\r\nDate: Tue, 3 Jan 2023 09:00:00 +0000\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe VPN is down since 9:00.\r\n--B\r\nContent-Type: text/plain; name=log.txt\r\nContent-Disposition: attachment; filename=log.txt\r\n\r\nerror 42\r\n--B--\r\n";

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn piped_ingest_stores_and_ticket_show_prints_the_message() {
    let env = TestEnv::new().await;
    let out = env.cli(&["ingest", "-"], Some(MESSAGE.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("created: 1"), "{}", stdout(&out));

    let list = env.cli_json(&["ticket", "list", "--json"]);
    let reference = list[0]["ref"]
        .as_str()
        .expect("ref is a string")
        .to_string();
    let ticket = env.cli_json(&["ticket", "show", &reference, "--json"]);
    assert_eq!(ticket["subject"], "VPN down");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["requester"], "ann@customer.example");
    let message = &ticket["messages"][0];
    assert_eq!(message["from"], "ann@customer.example");
    assert_eq!(message["subject"], "VPN down");
    assert_eq!(message["message_id"], "vpn-1@customer.example");
    assert_eq!(message["direction"], "in");
    assert_eq!(message["kind"], "public");
    assert!(message["text"]
        .as_str()
        .unwrap()
        .contains("The VPN is down since 9:00."));
    assert_eq!(message["attachments"][0]["filename"], "log.txt");
    assert_eq!(message["attachments"][0]["content_type"], "text/plain");
    assert_eq!(message["attachments"][0]["size"], 8);

    let human = env.cli(&["ticket", "show", &format!("#{reference}")], None);
    assert!(
        stdout(&human).contains("VPN down") && stdout(&human).contains("log.txt"),
        "{}",
        stdout(&human)
    );
    let missing = env.cli(&["ticket", "show", "999999"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("ticket #999999 not found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn malformed_input_is_quarantined_with_exit_zero_and_can_be_retried() {
    let env = TestEnv::new().await;
    let junk = b"\x00\x01\x02\x03 not mail \xff\xfe".to_vec();
    let out = env.cli(&["ingest"], Some(&junk));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a malformed message is stored in quarantine, not refused: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("quarantined: 1"));
    let entries = env.cli_json(&["quarantine", "list", "--json"]);
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert!(entries[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not an e-mail message"));
    assert_eq!(entries[0]["size"], junk.len());
    assert_eq!(entries[0]["source"], "stdin");

    // Piping the same junk again does not make a second entry.
    env.cli(&["ingest"], Some(&junk));
    assert_eq!(
        env.cli_json(&["quarantine", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let id = entries[0]["id"].to_string();
    let retry = env.cli(&["quarantine", "retry", &id], None);
    assert_eq!(retry.status.code(), Some(1), "still not a message");
    assert!(
        stdout(&retry).contains("still quarantined"),
        "{}",
        stdout(&retry)
    );
}

#[tokio::test]
async fn oversized_messages_are_quarantined_whole_and_retried_after_raising_the_limit() {
    let env = TestEnv::new().await;
    let big = format!("{MESSAGE}{}", "x".repeat(4096));
    // A file (an admin's import) is quarantined whole; piped mail over the limit is
    // refused instead (hostile::piped_mail_over_the_limit_is_refused_without_reading_it_all).
    let path = env.dir.path().join("big.eml");
    std::fs::write(&path, &big).unwrap();
    let out = env.cli(
        &[
            "--set",
            "ingest.max_message_bytes=2048",
            "ingest",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let entries = env.cli_json(&["quarantine", "list", "--json"]);
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("over the limit of 2048 bytes"),
        "{entries}"
    );
    assert_eq!(entries[0]["size"], big.len());

    let id = entries[0]["id"].to_string();
    let retry = env.cli(&["quarantine", "retry", &id], None);
    assert_eq!(retry.status.code(), Some(0), "{}", stderr(&retry));
    assert!(stdout(&retry).contains("new ticket"), "{}", stdout(&retry));
    assert_eq!(
        env.cli_json(&["quarantine", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = env.cli_json(&["quarantine", "list", "--json", "--all"]);
    assert!(all[0]["resolution"]
        .as_str()
        .unwrap()
        .starts_with("stored as message"));
    let tickets = env.cli_json(&["ticket", "list", "--json"]);
    assert_eq!(tickets[0]["subject"], "VPN down");
}

#[tokio::test]
async fn an_unreachable_database_means_exit_75_so_the_mta_retries() {
    let env = TestEnv::new().await;
    let url = if is_postgres() {
        "postgres://postgres@127.0.0.1:1/nothing"
    } else {
        "sqlite:///proc/no-such-dir/maildesk.db"
    };
    let out = env.cli(
        &["--database-url", url, "ingest", "-"],
        Some(MESSAGE.as_bytes()),
    );
    assert_eq!(
        out.status.code(),
        Some(75),
        "stdout: {} stderr: {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("maildesk:"), "{}", stderr(&out));
}

#[tokio::test]
async fn mbox_import_keeps_order_and_counts() {
    let env = TestEnv::new().await;
    let reply = "From: ann@customer.example\r\nSubject: Re: VPN down\r\nMessage-ID: <vpn-2@customer.example>\r\nIn-Reply-To: <vpn-1@customer.example>\r\n\r\nFrom now on it works.\r\n";
    let mut mbox = Vec::new();
    for raw in [MESSAGE, reply, "no headers at all\n"] {
        maildesk::mail::mbox::write_message(&mut mbox, "x@y", raw.as_bytes()).unwrap();
    }
    maildesk::mail::mbox::write_message(&mut mbox, "x@y", b"\x00\x01binary\x02\x03").unwrap();
    let path = env.dir.path().join("import.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let counts = env.cli_json(&["ingest", "--json", "--mbox", path.to_str().unwrap()]);
    assert_eq!(
        (
            counts["created"].as_u64(),
            counts["threaded"].as_u64(),
            counts["quarantined"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{counts}"
    );
    let again = env.cli_json(&["ingest", "--json", "--mbox", path.to_str().unwrap()]);
    assert_eq!(again["duplicates"].as_u64(), Some(4), "{again}");
    let entries = env.cli_json(&["quarantine", "list", "--json"]);
    assert!(
        entries[0]["source"].as_str().unwrap().starts_with("mbox:"),
        "{entries}"
    );
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(ticket["messages"].as_array().unwrap().len(), 2);
    assert!(
        ticket["messages"][1]["text"]
            .as_str()
            .unwrap()
            .contains("From now on it works."),
        "mboxrd >From unquoted"
    );
}

#[tokio::test]
async fn mailbox_names_set_the_category_and_unknown_ones_are_refused() {
    let env = TestEnv::with_config("[[mailbox]]\nname = \"it\"\ncategory = \"hardware\"\n").await;
    let out = env.cli(&["ingest", "--mailbox", "it"], Some(MESSAGE.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ticket = env.cli_json(&["ticket", "show", "1", "--json"]);
    assert_eq!(
        (ticket["category"].as_str(), ticket["mailbox"].as_str()),
        (Some("hardware"), Some("it"))
    );
    let unknown = env.cli(&["ingest", "--mailbox", "nope"], Some(MESSAGE.as_bytes()));
    assert_eq!(
        unknown.status.code(),
        Some(75),
        "an MTA must keep the mail while the config is fixed"
    );
    assert!(
        stderr(&unknown).contains("--mailbox \"nope\""),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test]
async fn users_are_added_with_argon2id_and_duplicates_refused() {
    let env = TestEnv::new().await;
    let password = env.dir.path().join("pw");
    std::fs::write(&password, "correct horse battery\n").unwrap();
    let pw = password.to_str().unwrap();
    let out = env.cli(
        &[
            "user",
            "add",
            "Agent@Example.com",
            "--name",
            "Agent Smith",
            "--role",
            "admin",
            "--password-file",
            pw,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let users = env.cli_json(&["user", "list", "--json"]);
    assert_eq!(
        (
            users[0]["email"].as_str(),
            users[0]["role"].as_str(),
            users[0]["active"].as_i64()
        ),
        (Some("agent@example.com"), Some("admin"), Some(1))
    );
    assert!(
        users[0].get("password_hash").is_none(),
        "hashes are never printed"
    );

    let again = env.cli(
        &[
            "user",
            "add",
            "agent@example.com",
            "--name",
            "X",
            "--role",
            "staff",
            "--password-file",
            pw,
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    std::fs::write(&password, "short\n").unwrap();
    let short = env.cli(
        &[
            "user",
            "add",
            "b@example.com",
            "--name",
            "B",
            "--role",
            "staff",
            "--password-file",
            pw,
        ],
        None,
    );
    assert_ne!(short.status.code(), Some(0));
    assert!(
        stderr(&short).contains("at least 8 characters"),
        "{}",
        stderr(&short)
    );
    let bad_role = env.cli(
        &[
            "user",
            "add",
            "c@example.com",
            "--name",
            "C",
            "--role",
            "boss",
            "--password-file",
            pw,
        ],
        None,
    );
    assert!(
        stderr(&bad_role).contains("not a valid role"),
        "{}",
        stderr(&bad_role)
    );
}

#[tokio::test]
async fn configuration_errors_name_the_key_and_check_reports_health() {
    let env = TestEnv::new().await;
    let ok = env.cli(&["check"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("database: ok"), "{}", stdout(&ok));
    assert!(!stdout(&ok).contains("warning:"), "{}", stdout(&ok));

    // Settings that work but have an effect to know of: said, and still exit 0.
    let capped = env.dir.path().join("capped.toml");
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&capped, format!("{text}\n[smtp]\nhost = \"127.0.0.1\"\n")).unwrap();
    let out = run_binary(&capped, &["check"], None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("warning: the public form accepts up to 5 submissions per address"),
        "{}",
        stdout(&out)
    );

    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, "[helpdesk]\nsuport_addresses = [\"x@y.z\"]\n").unwrap();
    let out = run_binary(&bad, &["check"], None, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("helpdesk.suport_addresses: unknown field"),
        "{}",
        stderr(&out)
    );

    let env_typo = run_binary(
        &env.config_path,
        &["check"],
        None,
        &[("MAILDESK_WEB_LISTEN", "not-an-address")],
    );
    assert_eq!(env_typo.status.code(), Some(78));
    assert!(
        stderr(&env_typo).contains("web.listen"),
        "{}",
        stderr(&env_typo)
    );
}

#[tokio::test]
async fn usage_errors_exit_64_and_foreign_maildesk_variables_are_ignored() {
    let env = TestEnv::new().await;
    for args in [
        &["--no-such-flag"][..],
        &["no-such-command"][..],
        &[
            "user",
            "add",
            "a@example.com",
            "--name",
            "A",
            "--role",
            "boss",
        ][..],
    ] {
        let out = env.cli(args, None);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(env.cli(&["--help"], None).status.code(), Some(0));
    // A test suite's own variables are not configuration keys.
    let out = run_binary(
        &env.config_path,
        &["check"],
        None,
        &[
            ("MAILDESK_TEST_PG_URL", "postgres://x"),
            ("MAILDESK_CORPUS", "/tmp"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A variable with a wrong key is named as the variable.
    let out = run_binary(
        &env.config_path,
        &["check"],
        None,
        &[("MAILDESK_WEB_LISEN", "x")],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("MAILDESK_WEB_LISEN"),
        "{}",
        stderr(&out)
    );
    // A host name is a listen address.
    let out = env.cli(&["--set", "web.listen=localhost:8080", "check"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test]
async fn input_that_can_never_be_stored_is_refused_up_front() {
    let env = TestEnv::new().await;
    let missing = env.cli(&["ingest", "/nonexistent/message.eml"], None);
    assert_eq!(missing.status.code(), Some(64), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("no such file"));
    let not_mbox = env.dir.path().join("message.eml");
    std::fs::write(&not_mbox, "Subject: hi\r\n\r\nnot an mbox\r\n").unwrap();
    let out = env.cli(&["ingest", "--mbox", not_mbox.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("not an mbox"));
    let gz = env.dir.path().join("mail.mbox.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let out = env.cli(&["ingest", "--mbox", gz.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(65));
    assert!(stderr(&out).contains("gzipped"));
    let out = env.cli(&["ingest", "--mbox", "/nonexistent.mbox"], None);
    assert_eq!(out.status.code(), Some(64));
    let listed = env.cli_json(&["ticket", "list", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing stored");
}

#[tokio::test]
async fn without_a_config_file_commands_refuse_instead_of_using_a_database_of_their_own() {
    let env = TestEnv::new().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |dir: &std::path::Path, args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_maildesk"));
        command.current_dir(dir).args(args);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("MAILDESK_")) {
            command.env_remove(name);
        }
        command.output().expect("run maildesk")
    };
    let out = run(elsewhere.path(), &["user", "list"]);
    if std::path::Path::new("/etc/maildesk/config.toml").is_file() {
        // This machine has a system configuration: that one is used.
        assert_ne!(out.status.code(), Some(78), "{}", stderr(&out));
    } else {
        assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "no configuration file: looked for config.toml and /etc/maildesk/config.toml"
            ),
            "{}",
            stderr(&out)
        );
        assert!(
            !elsewhere.path().join("data").exists(),
            "no database was created"
        );
    }
    // ./config.toml is found, and `check` says which file and which database it uses.
    std::fs::copy(&env.config_path, elsewhere.path().join("config.toml")).unwrap();
    let out = run(elsewhere.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("configuration file: config.toml"),
        "{stdout}"
    );
    assert!(stdout.contains("database url: "), "{stdout}");
    assert!(!stdout.contains("password"), "{stdout}");
}

#[tokio::test]
async fn text_output_shows_outgoing_mail_and_resolved_quarantine_entries() {
    let env =
        TestEnv::with_config("[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n")
            .await;
    let mail = "From: Ann <ann@example.net>\r\nTo: support@example.com\r\nSubject: Help\r\nMessage-ID: <t1@x>\r\n\r\nHello\r\n";
    assert!(env.cli(&["ingest"], Some(mail.as_bytes())).status.success());
    let out = env.cli(&["ticket", "show", "1"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--- outgoing mail"), "{text}");
    assert!(
        text.contains("acknowledgement")
            && text.contains("ann@example.net")
            && text.contains("queued"),
        "{text}"
    );
    // A long source does not shift the table; resolved entries say so with --all.
    let junk = env
        .dir
        .path()
        .join(format!("{}.eml", "a-very-long-file-name-".repeat(4)));
    std::fs::write(&junk, b"\x00\x01\x02 binary").unwrap();
    env.cli(&["ingest", junk.to_str().unwrap()], None);
    let store = env.store().await;
    let mut conn = store.acquire().await.unwrap();
    let entry = maildesk::store::quarantine::list(&mut conn, false)
        .await
        .unwrap()[0]
        .id;
    maildesk::store::quarantine::mark_resolved(&mut conn, entry, "discarded", 1)
        .await
        .unwrap();
    drop(conn);
    let out = env.cli(&["quarantine", "list", "--all"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().nth(1).expect("one entry");
    assert!(
        row.contains("resolved") && row.contains("[discarded]"),
        "{text}"
    );
    assert!(row.contains('…'), "the long source is cut: {row}");
}

#[tokio::test]
async fn database_errors_say_what_is_wrong_at_once() {
    let env = TestEnv::new().await;
    let port = crate::support::free_port();
    let refused = format!("postgres://postgres@127.0.0.1:{port}/maildesk");
    let started = std::time::Instant::now();
    let out = env.cli(&["--database-url", &refused, "migrate"], None);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "no 10 s pool timeout"
    );
    // A missing PostgreSQL database (the test server is there on both backends' runs).
    let admin = std::env::var("MAILDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let missing = format!("{}/maildesk_no_such_db", admin.rsplit_once('/').unwrap().0);
    let out = env.cli(&["--database-url", &missing, "migrate"], None);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"maildesk_no_such_db\" does not exist")
            && stderr(&out).contains("createdb"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains(":maildesk-test@"),
        "no password in the message"
    );
    // An SQLite path that cannot be created is named; migrate exits 73.
    let blocker = env.dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let bad = format!("sqlite://{}/sub/maildesk.db", blocker.display());
    let out = env.cli(&["--database-url", &bad, "migrate"], None);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&blocker.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_sqlite_backup_taken_while_mail_flows_is_whole_and_consistent() {
    let env = TestEnv::new().await;
    if is_postgres() {
        // PostgreSQL is backed up with pg_dump; the command says so.
        let out = env.cli(
            &["backup", env.dir.path().join("b.db").to_str().unwrap()],
            None,
        );
        assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
        assert!(stderr(&out).contains("pg_dump"));
        return;
    }
    let mail = |i: usize| {
        format!("From: c{i}@example.net\r\nTo: support@example.com\r\nSubject: Backup {i}\r\nMessage-ID: <bk{i}@x>\r\n\r\nBody {i}\r\n")
    };
    for i in 0..20 {
        assert!(env
            .cli(&["ingest"], Some(mail(i).as_bytes()))
            .status
            .success());
    }
    // Mail keeps arriving while the copy is taken.
    let config = env.config_path.clone();
    let writer = std::thread::spawn(move || {
        for i in 20..60 {
            let out = run_binary(&config, &["ingest"], Some(mail(i).as_bytes()), &[]);
            assert!(out.status.success());
        }
    });
    let copy = env.dir.path().join("copy.db");
    let out = env.cli(&["backup", copy.to_str().unwrap()], None);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("integrity check ok"));
    let report = maildesk::store::backup::verify(&copy).await.unwrap();
    assert!(report.tickets >= 20 && report.tickets <= 60, "{report:?}");
    assert_eq!(
        report.tickets, report.messages,
        "every copied ticket with its message"
    );
    // The copy is a working database: a config pointing at it lists its tickets.
    let restored = env.dir.path().join("restored.toml");
    std::fs::write(
        &restored,
        std::fs::read_to_string(&env.config_path)
            .unwrap()
            .replace(&env.database_url, &format!("sqlite://{}", copy.display())),
    )
    .unwrap();
    let out = run_binary(&restored, &["ticket", "list", "--json"], None, &[]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len() as i64, report.tickets);
    // A second backup to the same file is refused.
    let again = env.cli(&["backup", copy.to_str().unwrap()], None);
    assert_eq!(again.status.code(), Some(64));
}

#[tokio::test]
async fn several_processes_migrating_one_new_database_at_once_all_succeed() {
    let env = TestEnv::new().await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            let config = env.config_path.clone();
            std::thread::spawn(move || run_binary(&config, &["migrate"], None, &[]))
        })
        .collect();
    for child in children {
        let out = child.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}
