//! The real-world corpus (../shared/mail-corpus): every message is stored, and what we
//! extract agrees with the expected results. Each disagreement must be listed, with its
//! reason, in tests/fixtures/corpus-known-differences.tsv.

use std::collections::BTreeSet;

use maildesk::helpdesk::ticket_views;
use maildesk::inbound::ingest::{Origin, Outcome};
use serde_json::Value;

use crate::support::{corpus_dir, TestEnv};

const KNOWN_DIFFERENCES: &str = include_str!("../fixtures/corpus-known-differences.tsv");
const REQUIRED_AGREEMENT: f64 = 0.97;

/// Whitespace runs (Unicode, NBSP included) collapse to one space, as index.jsonl says.
fn collapse(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Tally {
    checked: usize,
    agreed: usize,
    disagreements: Vec<(String, String, String)>,
}

impl Tally {
    fn check(&mut self, file: &str, field: &str, agrees: bool, detail: impl FnOnce() -> String) {
        self.checked += 1;
        if agrees {
            self.agreed += 1;
        } else {
            self.disagreements
                .push((file.to_string(), field.to_string(), detail()));
        }
    }
}

fn known_differences() -> BTreeSet<(String, String)> {
    KNOWN_DIFFERENCES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split('\t');
            let file = cols.next().unwrap_or_default().to_string();
            let field = cols.next().unwrap_or_default().to_string();
            let reason = cols.next().unwrap_or_default();
            assert!(
                !reason.trim().is_empty(),
                "known difference without a reason: {l}"
            );
            (file, field)
        })
        .collect()
}

#[tokio::test]
async fn corpus_is_stored_and_agrees_with_expected_results() {
    let env = TestEnv::new().await;
    let ingestor = env.ingestor().await;
    let dir = corpus_dir();
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    let mut tally = Tally {
        checked: 0,
        agreed: 0,
        disagreements: Vec::new(),
    };
    let mut stored = 0;
    for line in index.lines().filter(|l| !l.trim().is_empty()) {
        let expected: Value = serde_json::from_str(line).unwrap();
        let file = expected["file"].as_str().unwrap().to_string();
        let raw = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let origin = Origin::new(format!("corpus:{file}"), None);
        let outcome = ingestor
            .ingest(&raw, &origin)
            .await
            .unwrap_or_else(|e| panic!("{file} was not stored: {e}"));
        stored += 1;
        let (ticket_id, message_id) = match outcome {
            Outcome::Created {
                ticket_id,
                message_id,
            }
            | Outcome::Threaded {
                ticket_id,
                message_id,
            }
            | Outcome::Duplicate {
                ticket_id,
                message_id,
            } => (ticket_id, message_id),
            Outcome::Quarantined { reason, .. } => {
                tally.check(&file, "stored", false, || format!("quarantined: {reason}"));
                continue;
            }
        };
        let detail = ticket_views::load(ingestor.store(), ticket_id)
            .await
            .unwrap();
        let message = detail
            .messages
            .iter()
            .find(|m| m.id == message_id)
            .expect("stored message is on its ticket");
        compare(&mut tally, &file, &expected, message);
    }
    assert_eq!(
        stored,
        index.lines().filter(|l| !l.trim().is_empty()).count()
    );

    let rate = tally.agreed as f64 / tally.checked as f64;
    println!(
        "corpus agreement: {}/{} fields ({:.1}%)",
        tally.agreed,
        tally.checked,
        rate * 100.0
    );
    let known = known_differences();
    let unexplained: Vec<_> = tally
        .disagreements
        .iter()
        .filter(|(f, field, _)| !known.contains(&(f.clone(), field.clone())))
        .collect();
    for (file, field, detail) in &tally.disagreements {
        println!("  differs: {file}\t{field}\t{detail}");
    }
    let current: BTreeSet<(String, String)> = tally
        .disagreements
        .iter()
        .map(|(f, field, _)| (f.clone(), field.clone()))
        .collect();
    for stale in known.difference(&current) {
        println!(
            "  known difference no longer seen (remove it from the list): {}\t{}",
            stale.0, stale.1
        );
    }
    assert!(
        unexplained.is_empty(),
        "disagreements not in tests/fixtures/corpus-known-differences.tsv:\n{}",
        unexplained
            .iter()
            .map(|(f, field, d)| format!("{f}\t{field}\t{d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        rate >= REQUIRED_AGREEMENT,
        "corpus agreement {:.1}% is below {:.0}%",
        rate * 100.0,
        REQUIRED_AGREEMENT * 100.0
    );
}

fn compare(tally: &mut Tally, file: &str, expected: &Value, message: &ticket_views::MessageView) {
    if let Some(from) = expected["from"].as_str() {
        tally.check(
            file,
            "from",
            message.from.eq_ignore_ascii_case(from.trim()),
            || format!("expected {from:?}, got {:?}", message.from),
        );
    }
    if let Some(name) = expected["from_name"].as_str() {
        let ours = message.from_name.clone().unwrap_or_default();
        tally.check(file, "from_name", collapse(&ours) == collapse(name), || {
            format!("expected {name:?}, got {ours:?}")
        });
    }
    if let Some(subject) = expected["subject"].as_str() {
        tally.check(
            file,
            "subject",
            collapse(&message.subject) == collapse(subject),
            || format!("expected {subject:?}, got {:?}", message.subject),
        );
    }
    if let Some(id) = expected["message_id"].as_str() {
        tally.check(file, "message_id", message.message_id == id.trim(), || {
            format!("expected {id:?}, got {:?}", message.message_id)
        });
    }
    let text = collapse(&message.text);
    for (i, snippet) in expected["text_contains"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let snippet = collapse(snippet.as_str().unwrap_or_default());
        tally.check(file, &format!("text[{i}]"), text.contains(&snippet), || {
            format!("{snippet:?} not in text ({} chars)", text.len())
        });
    }
    compare_attachments(tally, file, expected, message);
}

fn compare_attachments(
    tally: &mut Tally,
    file: &str,
    expected: &Value,
    message: &ticket_views::MessageView,
) {
    let mut unmatched: Vec<&ticket_views::AttachmentView> = message.attachments.iter().collect();
    let ours = || {
        message
            .attachments
            .iter()
            .map(|a| format!("{} ({}, {} bytes)", a.filename, a.content_type, a.size))
            .collect::<Vec<_>>()
            .join("; ")
    };
    for (i, want) in expected["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let size = want["size"].as_i64();
        let name = want["name"]
            .as_str()
            .filter(|_| !want["name_not_in_headers"].as_bool().unwrap_or(false));
        let position = match name {
            Some(name) => {
                let found = unmatched.iter().position(|a| a.filename == name);
                tally.check(
                    file,
                    &format!("attachment[{i}].name"),
                    found.is_some(),
                    || format!("no attachment named {name:?}; ours: {}", ours()),
                );
                // Named differently (e.g. a path we stripped): the size may still match.
                found.or_else(|| unmatched.iter().position(|a| Some(a.size) == size))
            }
            // A name the source made up (or a raw encoded one): match on size instead.
            None => unmatched
                .iter()
                .position(|a| Some(a.size) == size)
                .or_else(|| {
                    (size.is_none())
                        .then_some(0)
                        .filter(|_| !unmatched.is_empty())
                }),
        };
        if let Some(size) = size {
            let got = position.map(|p| unmatched[p].size);
            tally.check(
                file,
                &format!("attachment[{i}].size"),
                got == Some(size),
                || format!("expected {size} bytes, got {got:?}; ours: {}", ours()),
            );
        }
        if let Some(p) = position {
            unmatched.remove(p);
        }
    }
}

/// Ingesting the corpus a second time (through the CLI, as an admin would) creates nothing.
#[tokio::test]
async fn ingesting_the_corpus_twice_creates_nothing_new() {
    let env = TestEnv::new().await;
    let dir = corpus_dir();
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    let files: Vec<String> = index
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            dir.join(v["file"].as_str().unwrap()).display().to_string()
        })
        .collect();
    let mut args = vec!["ingest", "--json"];
    args.extend(files.iter().map(String::as_str));

    let first = env.cli_json(&args);
    let total = |c: &Value| {
        ["created", "threaded", "duplicates", "quarantined"]
            .iter()
            .map(|k| c[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        total(&first),
        files.len() as u64,
        "every message is accounted for: {first}"
    );
    assert_eq!(first["failed"], 0);
    let tickets_before = env.cli_json(&["ticket", "list", "--json"]);
    let quarantine_before = env.cli_json(&["quarantine", "list", "--json"]);

    let second = env.cli_json(&args);
    assert_eq!(
        (
            second["created"].as_u64(),
            second["threaded"].as_u64(),
            second["quarantined"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "second run: {second}"
    );
    assert_eq!(second["duplicates"].as_u64(), Some(files.len() as u64));
    assert_eq!(env.cli_json(&["ticket", "list", "--json"]), tickets_before);
    assert_eq!(
        env.cli_json(&["quarantine", "list", "--json"]),
        quarantine_before
    );
}
