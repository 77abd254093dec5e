//! What a person actually wrote in a reply: the text above the quoted history. The full
//! text is always kept; this is for display and for relaying staff replies.

use super::compose::REPLY_MARKER;

/// Lines that end an attribution ("On Mon, Ann wrote:") in the languages our users write.
const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
    "schreef:",
    "escreveu:",
    "pisze:",
    "написал(а):",
    "написал:",
    "napisał(a):",
    "skrev:",
    "kirjoitti:",
    "yazdı:",
    "írta:",
    "napsal(a):",
];

/// Separators Outlook (desktop, web, mobile) puts above the quoted message.
const ORIGINAL_MESSAGE_LINES: &[&str] = &[
    "-----original message-----",
    "-----ursprüngliche nachricht-----",
    "-----message d'origine-----",
    "-----mensaje original-----",
    "-----messaggio originale-----",
    "-----oorspronkelijk bericht-----",
    "-----mensagem original-----",
    "-----forwarded message-----",
    "---------- forwarded message ---------",
];

/// Header lines of a quoted message in Outlook's "From: … Sent: …" block.
const FROM_LABELS: &[&str] = &[
    "from:", "von:", "de :", "de:", "da:", "van:", "od:", "från:", "от:",
];
const SENT_LABELS: &[&str] = &[
    "sent:",
    "date:",
    "gesendet:",
    "datum:",
    "envoyé :",
    "envoyé:",
    "enviado:",
    "inviato:",
    "verzonden:",
    "wysłano:",
    "skickat:",
    "отправлено:",
];

/// Mobile mail apps' signatures: what follows them is quoted history.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my ",
    "sent from mail for windows",
    "get outlook for ",
    "von meinem iphone gesendet",
    "von meinem ipad gesendet",
    "gesendet von meinem",
    "envoyé de mon ",
    "enviado desde mi ",
    "enviado do meu ",
    "inviato da ",
    "verzonden met ",
    "verstuurd vanaf mijn ",
];

/// Longer texts are shown whole: no person types that much above a quote, and the work
/// stays bounded whatever arrives.
const MAX_SCANNED_BYTES: usize = 4 * 1024 * 1024;

/// The part of `text` above quoted history; the whole text if nothing is recognised (or
/// if the writer answered below the quote, the text without the quoted lines). Linear in
/// the size of the text: every line is looked at a bounded number of times.
pub fn visible_text(text: &str) -> String {
    if text.len() > MAX_SCANNED_BYTES {
        return text.trim().to_string();
    }
    let all: Vec<&str> = text.lines().collect();
    // Bottom-posted: a leading quote (with its attribution) above the writer's answer.
    let leading_quote = all.iter().position(|l| !l.trim().is_empty()).filter(|&i| {
        all[i].trim_start().starts_with('>') || is_attribution(&all[i].trim().to_lowercase())
    });
    let lines: Vec<&str> = match leading_quote {
        Some(start) => {
            let own = (start..all.len()).find(|&i| {
                let l = all[i].trim();
                !l.is_empty() && !l.starts_with('>') && !is_attribution(&l.to_lowercase())
            });
            // Interleaved answers (quote, answer, quote, answer) are kept whole.
            match own {
                Some(own) if !all[own..].iter().any(|l| l.trim_start().starts_with('>')) => {
                    all[own..].to_vec()
                }
                _ => all.clone(),
            }
        }
        None => all.clone(),
    };
    let quoted_to_end = quoted_to_end(&lines);
    let cut = (0..lines.len())
        .find(|&i| starts_history(&lines, i, quoted_to_end[i]))
        .unwrap_or(lines.len());
    let above = lines[..cut].join("\n").trim_end().to_string();
    if !above.trim().is_empty() {
        return above;
    }
    // Bottom-posted: keep the writer's own lines, drop the quoted ones.
    let own: Vec<&str> = lines
        .iter()
        .skip(cut)
        .filter(|l| !l.trim_start().starts_with('>') && !is_marker(l))
        .copied()
        .collect();
    let own = own.join("\n").trim().to_string();
    if own.is_empty() {
        text.trim().to_string()
    } else {
        own
    }
}

/// For each line: is everything from it to the end blank or quoted (`>`)? One pass from
/// the end, so asking it for every line costs nothing (asking by scanning the rest made a
/// body of quoted lines quadratic: 160 KB took 21 s).
fn quoted_to_end(lines: &[&str]) -> Vec<bool> {
    let mut flags = vec![false; lines.len()];
    let mut all_quoted = true;
    for (i, line) in lines.iter().enumerate().rev() {
        let l = line.trim_start();
        all_quoted = all_quoted && (l.trim_end().is_empty() || l.starts_with('>'));
        flags[i] = all_quoted;
    }
    flags
}

fn is_marker(line: &str) -> bool {
    line.contains(REPLY_MARKER) || line.contains("reply above this line")
}

fn starts_history(lines: &[&str], i: usize, quoted_to_end: bool) -> bool {
    let line = lines[i].trim();
    let lower = line.to_lowercase();
    if is_marker(line) {
        return true;
    }
    if ORIGINAL_MESSAGE_LINES.iter().any(|s| lower.starts_with(s)) {
        return true;
    }
    if MOBILE_SIGNATURES.iter().any(|s| lower.starts_with(s)) && line.len() < 80 {
        return true;
    }
    if is_attribution(&lower)
        || (i + 1 < lines.len()
            && looks_like_attribution_start(&lower)
            && is_attribution(&format!("{lower} {}", lines[i + 1].trim().to_lowercase())))
    {
        return true;
    }
    // Outlook: an underscore rule or a "From:" line followed by a "Sent:"/"Date:" line.
    if FROM_LABELS.iter().any(|l| lower.starts_with(l)) {
        let next = lines
            .iter()
            .skip(i + 1)
            .take(3)
            .map(|l| l.trim().to_lowercase());
        return next
            .into_iter()
            .any(|n| SENT_LABELS.iter().any(|l| n.starts_with(l)));
    }
    if line.len() >= 20 && line.chars().all(|c| c == '_') {
        return lines.get(i + 1).is_some_and(|n| {
            FROM_LABELS
                .iter()
                .any(|l| n.trim().to_lowercase().starts_with(l))
        });
    }
    // A trailing block of quoted lines.
    line.starts_with('>') && quoted_to_end
}

/// Verbs of attribution lines whose name comes last ("Am … schrieb Ann <a@x>:").
const ATTRIBUTION_VERBS: &[&str] = &[
    " wrote",
    " schrieb",
    " a écrit",
    " escribió",
    " ha scritto",
    " schreef",
    " escreveu",
    " pisze",
    " skrev",
];

fn is_attribution(lower: &str) -> bool {
    if lower.len() >= 300 {
        return false;
    }
    ATTRIBUTION_ENDINGS.iter().any(|e| lower.ends_with(e))
        || (lower.ends_with(':')
            && looks_like_attribution_start(lower)
            && ATTRIBUTION_VERBS.iter().any(|v| lower.contains(v)))
}

/// Gmail wraps long attributions over two lines; only join lines that start like one.
fn looks_like_attribution_start(lower: &str) -> bool {
    [
        "on ", "am ", "le ", "el ", "il ", "op ", "em ", "w dniu ", "den ",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(text: &str) -> String {
        visible_text(&text.replace("\n", "\r\n"))
    }

    #[test]
    fn strips_common_clients() {
        let cases = [
            // Gmail (English, wrapped attribution)
            ("Thanks, fixed.\n\nOn Mon, Jan 2, 2023 at 10:00 AM Support <support@example.com>\nwrote:\n> old text\n", "Thanks, fixed."),
            // Apple Mail / Thunderbird
            ("Still broken.\n\nOn 2 Jan 2023, at 10:00, Support <support@example.com> wrote:\n\n> old\n", "Still broken."),
            // German Thunderbird / K-9
            ("Geht wieder.\n\nAm 02.01.2023 um 10:00 schrieb Support:\n> alt\n", "Geht wieder."),
            // French
            ("Merci !\n\nLe lun. 2 janv. 2023 à 10:00, Support <s@example.com> a écrit :\n> vieux\n", "Merci !"),
            // Spanish
            ("Gracias.\n\nEl lun, 2 ene 2023 a las 10:00, Support escribió:\n> viejo\n", "Gracias."),
            // Outlook desktop
            ("Please call me.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n", "Please call me."),
            // Outlook web / new Outlook
            ("Done.\n\n________________________________\nFrom: Support <support@example.com>\nSent: Monday, January 2, 2023 10:00\nTo: Ann\n", "Done."),
            // German Outlook
            ("Erledigt.\n\nVon: Support <support@example.com>\nGesendet: Montag, 2. Januar 2023 10:00\nAn: Ann\n", "Erledigt."),
            // Mobile
            ("ok\n\nSent from my iPhone\n\n> On Jan 2 Support wrote:\n", "ok"),
            ("ja\n\nVon meinem iPhone gesendet\n", "ja"),
            // Our own marker
            ("Here is the log.\n\n##- Please type your reply above this line -##\nticket text\n", "Here is the log."),
            // Trailing quote without attribution
            ("Yes please.\n\n> Shall we?\n> Really?\n", "Yes please."),
        ];
        for (text, expected) in cases {
            assert_eq!(visible(text), expected, "{text:?}");
        }
    }

    #[test]
    fn keeps_inline_answers_and_plain_text() {
        let inline = "> Is it on?\nYes.\n> Plugged in?\nNo.";
        assert_eq!(visible(inline), inline);
        assert_eq!(visible("Just text.\nTwo lines."), "Just text.\nTwo lines.");
        assert_eq!(
            visible("I wrote: this is fine, not an attribution line\nmore"),
            "I wrote: this is fine, not an attribution line\nmore"
        );
    }

    #[test]
    fn bottom_posting_keeps_the_answer() {
        assert_eq!(visible("> Shall we?\n\nYes, let's."), "Yes, let's.");
    }
}
