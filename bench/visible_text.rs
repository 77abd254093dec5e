//! How long `visible_text` takes on big and hostile bodies (a figure, not a test):
//!     cargo run --release --example visible-text
//! The quoted-history scan runs inside the ingest transaction and on every `ticket show`,
//! so it must stay linear: a 1 MB body well under 100 ms.

use std::time::Instant;

use maildesk::mail::quote::visible_text;

fn main() {
    let mb = 1024 * 1024;
    let cases: Vec<(&str, String)> = vec![
        ("quoted lines (>)", "> quoted text\n".repeat(mb / 14)),
        ("160 KB of >", ">\n".repeat(80 * 1024)),
        (
            "answer then quote",
            format!(
                "Thanks!\n\nOn Mon, Ann wrote:\n{}",
                "> old\n".repeat(mb / 6)
            ),
        ),
        ("interleaved", "> q?\nanswer\n".repeat(mb / 13)),
        ("From: lines", "From: x\n".repeat(mb / 8)),
        ("attribution starts", "On Monday\n".repeat(mb / 10)),
        ("one long line", "x".repeat(mb)),
        (
            "plain prose",
            "Just some words in a line.\n".repeat(mb / 27),
        ),
    ];
    for (name, text) in &cases {
        let start = Instant::now();
        let mut kept = 0;
        let runs = 5;
        for _ in 0..runs {
            kept = visible_text(text).len();
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        println!(
            "{name:<20} {:>8} bytes  {ms:>8.2} ms  (kept {kept} bytes)",
            text.len()
        );
    }
}
