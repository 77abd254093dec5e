//! Watching it: `/metrics` after real mail came in through Dovecot and went out through
//! the SMTP relay, who may read it, and the log's formats (JSON lines, no colour off a
//! terminal, one line per quarantined message).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::support::browser::{customer_mail, mail_world, serve_with, ANN, ANN_PW, SUPPORT};
use crate::support::daemon::wait_until_serving;
use crate::support::free_port;
use crate::support::{run_binary, wait_until, Spawned, TestEnv};

/// A GET with extra headers, to `ip:port`; the status, the headers (lowercase names)
/// and the body, or `None` when nothing answers.
async fn get(
    ip: IpAddr,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    crate::support::http_request(ip, port, "GET", path, headers, "").await
}

fn localhost() -> IpAddr {
    [127, 0, 0, 1].into()
}

/// `/metrics` as samples: `name{labels}` → value.
async fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, head, body) = get(localhost(), port, "/metrics", &[])
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    parse_samples(&body)
}

fn parse_samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no sample {series}; have: {:#?}", sorted(samples)))
}

fn sorted(samples: &HashMap<String, f64>) -> Vec<(&String, &f64)> {
    let mut list: Vec<_> = samples.iter().collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    list
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

/// `maildesk serve` on `host` (port 0) with more `--set` settings, once `/healthz`
/// answers on loopback; and the port.
async fn serve_on(env: &TestEnv, host: &str, settings: &[&str]) -> (Spawned, u16) {
    let mut args = vec!["--set".to_string(), format!("web.listen={host}:0")];
    for setting in settings {
        args.push("--set".into());
        args.push(setting.to_string());
    }
    args.push("serve".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let since = env.log().len();
    let mut server = env.spawn(&args);
    match wait_until_serving(&mut server, &env.log_path(), since).await {
        Ok(address) => (server, address.port()),
        Err(log) => panic!("serve did not start; its log:\n{log}"),
    }
}

/// An address of this machine that is not loopback (a connection to it comes from it).
fn own_non_loopback_address() -> IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    // No packet is sent: connecting a UDP socket only picks the route and source address.
    let found = socket
        .connect("192.0.2.1:9")
        .ok()
        .and_then(|_| socket.local_addr().ok())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    found.unwrap_or_else(|| {
        panic!("this test needs an IPv4 address besides loopback (a network interface with a route) to reach the daemon from a non-local address")
    })
}

#[tokio::test]
async fn metrics_count_mail_in_and_out_and_pages_by_route() {
    let (dovecot, _relay, env) = mail_world().await;
    // Small enough that one message over it is quarantined (with its raw bytes).
    let (server, base) =
        serve_with(&env, &["ingest.max_message_bytes=4096", "log.format=json"]).await;
    let port = port_of(&base);
    let first = customer_mail("m1@customer.example", "Printer", "It jams.");
    let second = customer_mail("m2@customer.example", "Screen", "It flickers.");
    // A sender the mail server does not know: the acknowledgement is refused for good.
    let stranger = customer_mail("m3@customer.example", "Hello", "Anyone?")
        .replace(ANN, "nobody@customer.example");
    let big = customer_mail("m4@customer.example", "Logs", &"x".repeat(6000));
    let messages: Vec<Vec<u8>> = [&first, &second, &first, &stranger, &big]
        .iter()
        .map(|m| m.as_bytes().to_vec())
        .collect();
    dovecot
        .append(
            SUPPORT,
            crate::support::browser::SUPPORT_PW,
            "INBOX",
            &messages,
            None,
        )
        .await;

    let done = wait_until(Duration::from_secs(30), || async {
        let samples = scrape(port).await;
        samples.get("maildesk_outbox_sent_total") == Some(&2.0)
            && samples.get("maildesk_outbox_failed_total") == Some(&1.0)
    })
    .await;
    let samples = scrape(port).await;
    assert!(
        done,
        "log:\n{}\nmetrics: {:#?}",
        env.log(),
        sorted(&samples)
    );
    let support = |name: &str| value(&samples, &format!("{name}{{mailbox=\"support\"}}"));
    assert_eq!(support("maildesk_messages_fetched_total"), 5.0);
    assert_eq!(support("maildesk_messages_stored_total"), 3.0);
    assert_eq!(support("maildesk_messages_duplicates_total"), 1.0);
    assert_eq!(support("maildesk_messages_quarantined_total"), 1.0);
    assert_eq!(support("maildesk_imap_errors_total"), 0.0);
    let synced = support("maildesk_imap_last_success_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - synced).abs() < 120.0,
        "last success {synced}, now {now}"
    );
    assert_eq!(value(&samples, "maildesk_outbox_queued_total"), 3.0);
    assert_eq!(value(&samples, "maildesk_outbox_retries_total"), 0.0);
    assert_eq!(value(&samples, "maildesk_outbox_waiting"), 0.0);
    assert_eq!(value(&samples, "maildesk_webhooks_waiting"), 0.0);
    assert_eq!(value(&samples, "maildesk_webhooks_failed"), 0.0);
    assert_eq!(
        value(&samples, "maildesk_outbox_delivery_seconds_count"),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "maildesk_outbox_delivery_seconds_bucket{le=\"+Inf\"}"
        ),
        2.0
    );
    assert_eq!(value(&samples, "maildesk_tickets{status=\"open\"}"), 3.0);
    assert_eq!(value(&samples, "maildesk_tickets{status=\"closed\"}"), 0.0);
    assert!(value(&samples, "maildesk_db_pool_max_connections") >= 1.0);
    assert!(value(&samples, "maildesk_db_pool_connections") >= 1.0);
    // Ann really got her two acknowledgements.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            dovecot.count(ANN, ANN_PW, "INBOX").await == 2
        })
        .await
    );

    // Pages by route pattern, never by the path asked for.
    for path in ["/portal/tickets/1", "/portal/tickets/2", "/no/such/page"] {
        get(localhost(), port, path, &[]).await.expect("answers");
    }
    let samples = scrape(port).await;
    let series: Vec<&String> = samples
        .keys()
        .filter(|k| k.starts_with("maildesk_http_request_duration_seconds_count"))
        .collect();
    let has = |fragment: &str| series.iter().any(|s| s.contains(fragment));
    assert!(
        has("method=\"GET\",route=\"/portal/tickets/{reference}\",status=\"303\""),
        "{series:#?}"
    );
    assert!(has("route=\"/healthz\",status=\"200\""), "{series:#?}");
    assert!(has("route=\"unmatched\",status=\"404\""), "{series:#?}");
    assert!(has("route=\"/metrics\",status=\"200\""), "{series:#?}");
    assert!(
        !series
            .iter()
            .any(|s| s.contains("/portal/tickets/1") || s.contains("/no/such")),
        "raw paths in labels: {series:#?}"
    );
    assert!(samples.keys().any(|k| k
        .starts_with("maildesk_http_request_duration_seconds_bucket{")
        && k.contains("le=\"0.005\"")
        && k.contains("route=\"/healthz\"")));
    drop(server);

    // The daemon's JSON log: every line an object; mail lines carry their ids.
    let log = env.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with_message = |text: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["message"] == text).collect()
    };
    let sent = with_message("mail sent");
    assert_eq!(sent.len(), 2, "{log}");
    assert!(sent
        .iter()
        .all(|l| l["outbox_id"].is_i64() && l["ticket_id"].is_i64()));
    let stored = with_message("message stored");
    assert_eq!(stored.len(), 3, "{log}");
    assert!(stored
        .iter()
        .all(|l| l["ticket_id"].is_i64() && l["message_id"].is_i64()));
    assert!(
        stored.iter().all(|l| l["span"]["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("imap:support/"))),
        "{log}"
    );
    let quarantined = with_message("message quarantined");
    assert_eq!(quarantined.len(), 1, "{log}");
    assert!(quarantined[0]["quarantine_id"].is_i64(), "{log}");
    assert_eq!(quarantined[0]["mailbox"], "support", "{log}");
    let failed = with_message("mail failed for good");
    assert_eq!(failed.len(), 1, "{log}");
    assert!(failed[0]["outbox_id"].is_i64() && failed[0]["ticket_id"].is_i64());
}

#[tokio::test]
async fn metrics_are_for_this_machine_or_a_token_holder() {
    let env = TestEnv::new().await;
    let remote_ip = own_non_loopback_address();

    // No token: this machine only, and not through a proxy.
    let (server, port) = serve_on(&env, "0.0.0.0", &[]).await;
    let (status, _, _) = get(localhost(), port, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 200);
    let (status, _, body) = get(remote_ip, port, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 403, "from {remote_ip}: {body}");
    assert!(!body.contains("maildesk_"), "{body}");
    for header in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        let (status, _, _) = get(localhost(), port, "/metrics", &[(header, "198.51.100.9")])
            .await
            .unwrap();
        assert_eq!(status, 403, "{header} from a local proxy");
    }
    drop(server);

    // A token: everyone needs it, from anywhere.
    let token_file = env.dir.path().join("metrics-token");
    std::fs::write(&token_file, "scrape-me-0123456789abcdef\n").unwrap();
    let (server, port) = serve_on(
        &env,
        "0.0.0.0",
        &[&format!(
            "metrics.token_file={:?}",
            token_file.display().to_string()
        )],
    )
    .await;
    let good = ("Authorization", "Bearer scrape-me-0123456789abcdef");
    for (ip, headers, expected) in [
        (localhost(), vec![], 401),
        (remote_ip, vec![], 401),
        (
            remote_ip,
            vec![("Authorization", "Bearer wrong-0123456789abcdef")],
            401,
        ),
        (remote_ip, vec![good], 200),
        (
            localhost(),
            vec![good, ("X-Forwarded-For", "198.51.100.9")],
            200,
        ),
    ] {
        let (status, head, body) = get(ip, port, "/metrics", &headers).await.unwrap();
        assert_eq!(status, expected, "{ip} {headers:?}: {body}");
        if expected == 401 {
            assert!(head.contains("www-authenticate: bearer"), "{head}");
        } else {
            assert!(body.contains("maildesk_tickets"), "{body}");
        }
    }
    drop(server);

    // Its own listener: there, and no longer on the portal's.
    let metrics_port = free_port();
    let (server, port) = serve_on(
        &env,
        "127.0.0.1",
        &[&format!("metrics.listen=\"127.0.0.1:{metrics_port}\"")],
    )
    .await;
    let (status, _, _) = get(localhost(), port, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 404);
    let (status, _, body) = get(localhost(), metrics_port, "/metrics", &[])
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("maildesk_db_pool_connections"), "{body}");
    drop(server);

    // Switched off: nowhere.
    let (server, port) = serve_on(&env, "127.0.0.1", &["metrics.enabled=false"]).await;
    let (status, _, _) = get(localhost(), port, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 404);
    drop(server);
}

fn quarantine_ids(env: &TestEnv) -> Vec<i64> {
    env.cli_json(&["quarantine", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn json_log_lines_and_one_line_per_quarantined_message() {
    let env = TestEnv::with_config("[ingest]\nmax_message_bytes = 2048\n").await;
    let good = env.dir.path().join("good.eml");
    std::fs::write(
        &good,
        customer_mail("j1@customer.example", "Printer", "It jams."),
    )
    .unwrap();
    let big = env.dir.path().join("big.eml");
    std::fs::write(
        &big,
        customer_mail("j2@customer.example", "Logs", &"y".repeat(5000)),
    )
    .unwrap();
    let out = run_binary(
        &env.config_path,
        &["ingest", good.to_str().unwrap(), big.to_str().unwrap()],
        None,
        &[("MAILDESK_LOG_FORMAT", "json"), ("MAILDESK_LOG", "info")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{stderr}");
    // Every line about the quarantined message (it names its file).
    let about_quarantine: Vec<_> = lines
        .iter()
        .filter(|l| l.to_string().contains("big.eml"))
        .collect();
    assert_eq!(about_quarantine.len(), 1, "{stderr}");
    let line = about_quarantine[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["quarantine_id"], quarantine_ids(&env)[0], "{stderr}");
    assert_eq!(line["message"], "message quarantined", "{stderr}");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains("max_message_bytes"),
        "{stderr}"
    );
    let stored: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "message stored")
        .collect();
    assert_eq!(stored.len(), 1, "{stderr}");
    assert!(stored[0]["ticket_id"].is_i64() && stored[0]["message_id"].is_i64());

    // A command's own error is a JSON line too.
    let out = run_binary(
        &env.config_path,
        &["--set", "log.format=json", "ticket", "show", "424242"],
        None,
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for l in stderr.lines() {
        let line: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert_eq!(line["level"], "ERROR", "{l}");
    }
    assert!(stderr.contains("not found"), "{stderr}");
}

#[tokio::test]
async fn text_log_has_no_colour_off_a_terminal_and_one_quarantine_line() {
    let env = TestEnv::with_config("[ingest]\nmax_message_bytes = 2048\n").await;
    let big = customer_mail("t1@customer.example", "Logs", &"z".repeat(5000));
    let file = env.dir.path().join("big.eml");
    std::fs::write(&file, big).unwrap();
    let out = run_binary(
        &env.config_path,
        &["ingest", file.to_str().unwrap()],
        None,
        &[("MAILDESK_LOG", "info")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.is_empty());
    assert!(
        !stderr.contains('\x1b'),
        "ANSI escapes in a pipe: {stderr:?}"
    );
    let quarantine_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("big.eml")).collect();
    assert_eq!(quarantine_lines.len(), 1, "{stderr}");
    let id = quarantine_ids(&env)[0];
    assert!(
        quarantine_lines[0].contains(&format!("quarantine_id={id}")),
        "{stderr}"
    );
}
