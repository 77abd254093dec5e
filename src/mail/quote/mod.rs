//! What a person actually wrote in a reply: the text (or HTML) without the quoted history,
//! the signature and the client's footers. The full message is always kept; this is for
//! display and for relaying staff replies.
//!
//! # Plain text (`visible_text`)
//!
//! Every line is classified once (`text::classify`): blank, quoted (`>`), part of an
//! attribution, an *end* line, or the writer's own text. Attributions ("On …, Ann <a@x>
//! wrote:", "Am … schrieb …:", "Le … a écrit :", "… пишет:", "在 … 写道：", Gmail's
//! "2026年3月3日(火) 10:04 Ann <a@x>:" …) are found from their last line, which ends with a
//! colon, joining it with up to two lines above when a client wrapped it (the widest
//! join that starts like an attribution wins); a bare "Support wrote:" counts only right
//! above quoted lines. No line is looked at more than a bounded number of times, and the
//! classification stops at the first line that ends the reply, so the work is linear in
//! the text and a long history below the reply is not even read.
//! End lines are: delimiter lines (only `-`, `_`, `=`, `~`, `*` or `+`, two or more; only
//! zero-width characters; the `-- ` signature delimiter), separators ("-----Original
//! Message-----", "Begin forwarded message:" and their translations), the start of a
//! quoted header block ("From:" followed by "Sent:"/"Date:"/"To:"/"Subject:" within four
//! lines, in many languages; "Gesendet:"/"Date:" first and then "Von:"/"From:", as GMX and
//! Hotmail write it; or all on one line), and mobile/webmail footers ("Sent from my
//! iPhone", "Von meinem iPad gesendet", "Get Outlook for iOS", "iPhoneから送信" …), with
//! or without a link after them.
//!
//! The rules, in order:
//! 1. **Our marker.** If the text has our "reply above this line" marker, the reply is
//!    what is above it, less what the writer's client put right above the quoted marker
//!    (blank and bare `>` lines, an attribution, a header block, a separator). The rules
//!    below then run on that part only (for a footer or signature the writer left). A
//!    reply posted below our quoted mail (nothing above the marker) goes on to rule 2.
//! 2. **The first end line** cuts the reply there, and so does an attribution whose next
//!    non-blank line is *not* quoted (history pasted without `>`, e.g. from an HTML part).
//! 3. **Trailing quoted history goes, inline answers stay.** Above the cut, everything
//!    after the writer's last own line (quoted lines, attributions, blank lines) is
//!    dropped; quoted blocks followed by own text are part of the reply and kept with
//!    their attribution ("> question?" then "my answer" keeps both).
//! 4. **Never empty.** If no own line is left (only quoted text, a forward without a
//!    comment), the whole text is shown.
//!
//! Texts over 4 MB are shown whole.
//!
//! # HTML (`cut_quoted_html`, `visible_html`)
//!
//! The HTML is parsed once with html5ever (what ammonia uses) and walked once, without
//! recursion (see `html`). Quote containers — Gmail `.gmail_quote`, Thunderbird
//! `.moz-cite-prefix`, `blockquote` (Apple Mail's `type=cite` and any other), Yahoo
//! `.yahoo_quoted`, Proton, Tutanota, Zoho, Zimbra's `__QUOTED_TEXT__`, Gmail signatures,
//! trailing `<hr>` — are removed when no text of the writer follows them, with an
//! attribution right before them (Yandex, Mail.ru and others put it in a plain `div`).
//! Cut points — Outlook's `#divRplyFwdMsg`, `#appendonsend`, `#stopSpelling`,
//! `#OLK_SRC_BODY_SECTION`, a `border-top` div starting with "From:", Zimbra's divider, our
//! marker, a separator, footer or delimiter in its own element — remove themselves and
//! everything after them in document order; a cut point before any text of the writer
//! (a forward without a comment) is not one. The same never-empty rule applies: if nothing
//! of the writer would be left, the HTML is kept whole. `visible_html` then sanitises the
//! result with ammonia's defaults (scripts and styles go). Nesting deeper than 400
//! elements is flattened before parsing (one pass over the bytes), because html5ever's
//! tree builder is quadratic in the depth. `visible_text_of_html` turns the cut HTML into
//! text and applies the text rules, for bodies that have no plain-text part.

mod html;
#[cfg(test)]
mod tests;
mod text;

use text::Kind;

pub use html::{cut_quoted_html, visible_html};

/// Longer texts are shown whole: no person types that much above a quote, and the work
/// stays bounded whatever arrives.
const MAX_SCANNED_BYTES: usize = 4 * 1024 * 1024;

/// The part of `text` the writer wrote (see the module documentation for the rules);
/// the whole text if nothing of the writer would be left. Linear in the size of the text.
pub fn visible_text(text: &str) -> String {
    if text.len() > MAX_SCANNED_BYTES {
        return text.trim().to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    // One search of the whole text first: most replies do not quote our mail.
    let has_marker = text::is_marker(text);
    if let Some(marker) = lines.iter().position(|l| has_marker && text::is_marker(l)) {
        let above = &lines[..marker];
        let classified = text::classify(above, false);
        let end = above_marker(above, &classified, marker);
        if let Some(reply) = cut(&above[..end], &classified.kinds[..end]) {
            return reply;
        }
        let reply = join(&above[..end]);
        if !reply.is_empty() {
            return reply;
        }
    }
    let classified = text::classify(&lines, true);
    let read = classified.kinds.len();
    cut(&lines[..read], &classified.kinds).unwrap_or_else(|| join(&lines))
}

/// The text of an HTML body as staff should read it: the HTML's quote containers cut
/// first, then turned into text, then the text rules. For messages that have no plain
/// text part, so that the text and `visible_html` agree.
pub fn visible_text_of_html(html: &str) -> String {
    visible_text(&mail_parser::decoders::html::html_to_text(
        &cut_quoted_html(html),
    ))
}

/// Rules 2–4 on `lines`: `None` if no own line would be left.
fn cut(lines: &[&str], kinds: &[Kind]) -> Option<String> {
    let n = lines.len();
    let mut end = n;
    let mut i = 0;
    while i < n {
        match kinds[i] {
            Kind::End => {
                end = i;
                break;
            }
            Kind::Attribution => {
                let span_end = (i..n).find(|&k| kinds[k] != Kind::Attribution).unwrap_or(n);
                let next = (span_end..n).find(|&k| kinds[k] != Kind::Blank);
                if next.is_some_and(|k| kinds[k] == Kind::Quoted) {
                    i = span_end;
                } else {
                    end = i;
                    break;
                }
            }
            _ => i += 1,
        }
    }
    let last_own = (0..end).rev().find(|&k| kinds[k] == Kind::Text)?;
    Some(join(&lines[..=last_own]))
}

/// Rule 1: where the writer's part ends above our marker at `marker`.
fn above_marker(lines: &[&str], classified: &text::Classified, marker: usize) -> usize {
    let (kinds, norms) = (&classified.kinds, &classified.norms);
    let bare_quote = |l: &str| l.trim().chars().all(|c| c == '>' || c.is_whitespace());
    let mut h = marker;
    loop {
        while h > 0 && bare_quote(lines[h - 1]) {
            h -= 1;
        }
        if h == 0 {
            break;
        }
        match kinds[h - 1] {
            Kind::Attribution => {
                while h > 0 && kinds[h - 1] == Kind::Attribution {
                    h -= 1;
                }
                continue;
            }
            Kind::End => {
                h -= 1;
                continue;
            }
            _ => {}
        }
        // The end of an Outlook header block ("From: … Sent: … To: … Subject: …").
        let from = (h.saturating_sub(8)..h)
            .rev()
            .take_while(|&j| !text::is_blank(lines[j]))
            .find(|&j| norms[j].as_deref().is_some_and(text::is_from_label));
        match from {
            Some(j)
                if (j + 1..h)
                    .filter_map(|x| norms[x].as_deref())
                    .any(text::is_header_label) =>
            {
                h = j;
            }
            _ => break,
        }
    }
    h
}

/// The lines without the blank ones around them, joined with `\n`.
fn join(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !text::is_blank(l))
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !text::is_blank(l))
        .map_or(start, |e| e + 1);
    let mut out = lines[start..end.max(start)].join("\n");
    out.truncate(out.trim_end().len());
    out
}
