//! `visible_text` over 10,000 realistic replies (a figure, not a test):
//!     cargo run --release --example quote
//! Prints replies per second and the slowest reply. Aim: 20,000 replies/s, none over 5 ms.
//! The corpus (mixed kinds and languages, sizes up to 1 MB) is in bench/quote_corpus.rs.

mod quote_corpus;

use std::time::{Duration, Instant};

use maildesk::mail::quote::{visible_html, visible_text};

fn main() {
    let replies = quote_corpus::replies(10_000);
    let total: usize = replies.iter().map(String::len).sum();
    let mut slowest = (Duration::ZERO, 0);
    let mut kept = 0;
    let start = Instant::now();
    for (i, reply) in replies.iter().enumerate() {
        let t = Instant::now();
        kept += visible_text(reply).len();
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, i);
        }
    }
    let elapsed = start.elapsed();
    println!(
        "visible_text: {} replies, {:.1} MB in {:.3} s: {:.0} replies/s; slowest {:.3} ms (reply {}, {} bytes); kept {} bytes",
        replies.len(),
        total as f64 / 1e6,
        elapsed.as_secs_f64(),
        replies.len() as f64 / elapsed.as_secs_f64(),
        slowest.0.as_secs_f64() * 1000.0,
        slowest.1,
        replies[slowest.1].len(),
        kept
    );

    // The HTML side, on the same texts wrapped as Gmail would (fewer: it parses a tree).
    let htmls: Vec<String> = replies
        .iter()
        .take(2_000)
        .map(|r| {
            let (own, rest) = r.split_once("\n\n").unwrap_or((r, ""));
            format!(
                "<div dir=\"ltr\">{}</div><div class=\"gmail_quote\"><blockquote>{}</blockquote></div>",
                own.replace('<', "&lt;"),
                rest.replace('<', "&lt;").replace('\n', "<br>\n")
            )
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    for html in &htmls {
        let t = Instant::now();
        let _ = visible_html(html);
        slowest = slowest.max(t.elapsed());
    }
    let elapsed = start.elapsed();
    println!(
        "visible_html: {} replies in {:.3} s: {:.0} replies/s; slowest {:.3} ms",
        htmls.len(),
        elapsed.as_secs_f64(),
        htmls.len() as f64 / elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}
