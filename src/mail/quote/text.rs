//! The line rules of `visible_text`: what each line of a plain-text reply is, from tables
//! of the phrases mail clients write in many languages.
//!
//! Pattern lists were gathered with public reply parsers as a guide (crisp-oss/
//! email-reply-parser, MIT; github/email_reply_parser, MIT; mailgun/talon, Apache-2.0):
//! the phrases are the mail clients' own, written out here as plain tables.

use std::sync::OnceLock;

use super::super::compose::REPLY_MARKER;

/// Endings of attribution lines ("On Mon, Ann <a@x> wrote:"), lowercased, NBSP as space.
const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "writes:",
    "schrieb:",
    "schreef:",
    "a écrit :",
    "a écrit:",
    "écrit :",
    "escribió:",
    "escreveu:",
    "ha scritto:",
    "scritto:",
    "pisze:",
    "napisał(a):",
    "napisał:",
    "napisała:",
    "написал(а):",
    "написал:",
    "написала:",
    "пишет:",
    "skrev:",
    "kirjoitti:",
    "yazdı:",
    "írta:",
    "napsal(a):",
    "napsal:",
    "έγραψε:",
    "写道：",
    "写道:",
    "寫道：",
    "寫道:",
    "のメッセージ:",
    "のメッセージ：",
    "のメール:",
    "のメール：",
    "작성:",
];

/// How attribution lines begin (so a wrapped one can be joined), lowercased.
const ATTRIBUTION_STARTS: &[&str] = &[
    "on ", "am ", "le ", "el ", "il ", "op ", "em ", "no dia ", "w dniu ", "dnia ", "den ", "pe ",
    "в ", "пн,", "вт,", "ср,", "чт,", "пт,", "сб,", "вс,", "在", "于",
];

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
    " napisał",
    " skrev",
    " написал",
    " пишет",
];

/// Separator phrases of quoted or forwarded messages (inside dashes, or alone with a
/// colon), lowercased.
const SEPARATOR_PHRASES: &[&str] = &[
    "original message",
    "forwarded message",
    "begin forwarded message",
    "ursprüngliche nachricht",
    "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht",
    "message d'origine",
    "message d’origine",
    "message original",
    "message transféré",
    "début du message réexpédié",
    "début du message transféré",
    "mensaje original",
    "mensaje reenviado",
    "comienzo del mensaje reenviado",
    "messaggio originale",
    "messaggio inoltrato",
    "inizio messaggio inoltrato",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "begin doorgestuurd bericht",
    "mensagem original",
    "mensagem encaminhada",
    "início da mensagem reencaminhada",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "przekazana wiadomość",
    "początek przekazywanej wiadomości",
    "исходное сообщение",
    "пересылаемое сообщение",
    "переадресованное сообщение",
    "начало переадресованного сообщения",
    "oprindelig besked",
    "videresendt besked",
    "opprinnelig melding",
    "ursprungligt meddelande",
    "vidarebefordrat meddelande",
    "alkuperäinen viesti",
    "原始邮件",
    "原始郵件",
    "转发邮件",
    "转发的邮件",
    "元のメッセージ",
    "転送されたメッセージ",
    "オリジナルメッセージ",
];

/// "From:" of a quoted message's header block (Outlook and the like), lowercased.
const FROM_LABELS: &[&str] = &[
    "from:",
    "from :",
    "von:",
    "von :",
    "de:",
    "de :",
    "da:",
    "van:",
    "od:",
    "från:",
    "fra:",
    "lähettäjä:",
    "от:",
    "от кого:",
    "发件人:",
    "发件人：",
    "寄件者:",
    "寄件者：",
    "差出人:",
    "差出人：",
];

/// The other fields of such a header block.
const HEADER_LABELS: &[&str] = &[
    "sent:",
    "date:",
    "to:",
    "cc:",
    "subject:",
    "gesendet:",
    "datum:",
    "an:",
    "betreff:",
    "envoyé :",
    "envoyé:",
    "date :",
    "à :",
    "à:",
    "objet :",
    "objet:",
    "enviado:",
    "enviado el:",
    "fecha:",
    "para:",
    "asunto:",
    "inviato:",
    "data:",
    "a:",
    "oggetto:",
    "verzonden:",
    "aan:",
    "onderwerp:",
    "enviada em:",
    "assunto:",
    "wysłano:",
    "wysłane:",
    "do:",
    "temat:",
    "skickat:",
    "till:",
    "ämne:",
    "sendt:",
    "til:",
    "emne:",
    "отправлено:",
    "дата:",
    "кому:",
    "тема:",
    "发送时间:",
    "发送时间：",
    "收件人:",
    "收件人：",
    "主题:",
    "主题：",
    "日期:",
    "日期：",
    "送信日時:",
    "送信日時：",
    "宛先:",
    "宛先：",
    "件名:",
    "件名：",
];

/// Mobile and webmail footers: the reply ends above them (with or without a link).
const FOOTER_STARTS: &[&str] = &[
    "sent from ",
    "sent with ",
    "sent via ",
    "get outlook for ",
    "download outlook for ",
    "von meinem ",
    "gesendet von ",
    "gesendet mit ",
    "gesendet vom ",
    "outlook für ",
    "envoyé de mon ",
    "envoyé depuis ",
    "envoyé à partir de ",
    "envoyé avec ",
    "télécharger outlook pour ",
    "obtenir outlook pour ",
    "enviado desde ",
    "enviado con ",
    "enviado do meu ",
    "enviado do ",
    "enviado a partir d",
    "obtener outlook para ",
    "obter o outlook para ",
    "baixe o outlook para ",
    "inviato da ",
    "inviato dal ",
    "inviato con ",
    "scarica outlook per ",
    "verzonden met ",
    "verzonden vanaf ",
    "verstuurd vanaf ",
    "verstuurd met ",
    "outlook voor ",
    "wysłane z ",
    "wysłano z ",
    "wysłane przy użyciu ",
    "pobierz outlook dla ",
    "отправлено из ",
    "отправлено с ",
    "отправлено через ",
    "получить outlook для ",
    "sendt fra ",
    "skickat från ",
    "lähetetty ",
    "发自我的",
    "從我的",
    "发送自",
    "發自我的",
];

/// Footers that end with their phrase ("iPhoneから送信", "Von meinem iPad gesendet").
const FOOTER_ENDINGS: &[&str] = &["から送信", "发送"];

static FROM_FIRST: OnceLock<[bool; 256]> = OnceLock::new();
static HEADER_FIRST: OnceLock<[bool; 256]> = OnceLock::new();
static FOOTER_FIRST: OnceLock<[bool; 256]> = OnceLock::new();
static ATTRIBUTION_FIRST: OnceLock<[bool; 256]> = OnceLock::new();

/// Does `lower` start with one of `words`? The first byte is looked up first, so most
/// lines are answered without comparing any word.
fn starts_with_any(lower: &str, words: &[&str], first: &OnceLock<[bool; 256]>) -> bool {
    let Some(&b) = lower.as_bytes().first() else {
        return false;
    };
    let set = first.get_or_init(|| {
        let mut set = [false; 256];
        for word in words {
            if let Some(&c) = word.as_bytes().first() {
                set[usize::from(c)] = true;
            }
        }
        set
    });
    set[usize::from(b)] && words.iter().any(|w| lower.starts_with(w))
}

/// What a line is, for the cut.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Blank,
    /// Starts with `>`.
    Quoted,
    /// Part of an attribution ("On … wrote:"), one to three lines.
    Attribution,
    /// Ends the reply: a separator, the start of a quoted header block, a signature
    /// delimiter or a mobile footer.
    End,
    Text,
}

/// The lowercased, NBSP-free form of a line that rules compare; long lines and quoted
/// lines are never rule lines, so they are not copied.
pub(super) fn norm(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.len() > 400 || t.starts_with('>') {
        return None;
    }
    let t = t.trim_matches(|c| c == '*' || c == '\u{200b}' || c == '\u{feff}');
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '\u{a0}' | '\u{202f}' | '\t' => out.push(' '),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
    }
    Some(out)
}

pub(super) fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

pub(super) fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

pub(super) fn is_marker(line: &str) -> bool {
    line.contains(REPLY_MARKER) || line.contains("reply above this line")
}

/// A line of only `-`, `_`, `=`, `~`, `*`, `+` (two or more), or only zero-width
/// characters; the signature delimiter `-- `.
pub(super) fn is_delimiter(line: &str) -> bool {
    let t = line.trim_matches(|c: char| c.is_whitespace());
    if t.is_empty() {
        return false;
    }
    if t.chars().all(|c| {
        matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
    }) {
        return true;
    }
    let mut chars = t.chars();
    let first = chars.next().unwrap_or(' ');
    matches!(first, '-' | '_' | '=' | '~' | '*' | '+')
        && t.len() >= 2
        && t.chars().all(|c| c == first)
}

/// "-----Original Message-----", "Begin forwarded message:" and their translations.
pub(super) fn is_separator(lower: &str) -> bool {
    let dashed = lower.starts_with("--") || lower.starts_with("__") || lower.starts_with("==");
    let colon = lower.ends_with(':') || lower.ends_with('：');
    if !dashed && !colon {
        return false;
    }
    let inner = lower
        .trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c == ' ' || c == '*')
        .trim_end_matches([':', '：'])
        .trim();
    if dashed && lower.ends_with("--") && is_attribution(&format!("{inner}:")) {
        // Zoho: "---- On Wed, 24 Feb 2021 14:02 +0530 ann@example.com wrote ----".
        return true;
    }
    if inner.len() > 60 || inner.is_empty() {
        return false;
    }
    if dashed {
        return SEPARATOR_PHRASES.iter().any(|p| inner.contains(p));
    }
    colon && SEPARATOR_PHRASES.contains(&inner)
}

pub(super) fn is_from_label(lower: &str) -> bool {
    starts_with_any(lower, FROM_LABELS, &FROM_FIRST)
}

pub(super) fn is_header_label(lower: &str) -> bool {
    starts_with_any(lower, HEADER_LABELS, &HEADER_FIRST)
}

/// An Outlook "From: … Sent: …" header all on one line.
pub(super) fn is_one_line_header(lower: &str) -> bool {
    is_from_label(lower)
        && [
            " sent: ",
            " gesendet: ",
            " envoyé : ",
            " enviado: ",
            " inviato: ",
            " date: ",
        ]
        .iter()
        .any(|l| lower.contains(l))
}

pub(super) fn is_footer(lower: &str) -> bool {
    let chars = lower.chars().count();
    let limit = if lower.contains("http") { 200 } else { 60 };
    if chars > limit {
        return false;
    }
    if lower.starts_with("von meinem ") {
        return lower.contains(" gesendet");
    }
    starts_with_any(lower, FOOTER_STARTS, &FOOTER_FIRST)
        || (chars <= 40
            && !lower.contains(' ')
            && FOOTER_ENDINGS.iter().any(|e| lower.ends_with(e)))
}

/// A date, a time or a year: "10:04", "2026", "03.03.".
fn has_date_or_time(s: &str) -> bool {
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 4 {
                return true;
            }
            if i + 2 < b.len() && b[i + 1] == b':' && b[i + 2].is_ascii_digit() {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// A time of day: "10:04".
fn has_time(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit())
}

pub(super) fn starts_like_attribution(lower: &str) -> bool {
    starts_with_any(lower, ATTRIBUTION_STARTS, &ATTRIBUTION_FIRST)
        || lower.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Is this (lowercased, joined) text an attribution line?
pub(super) fn is_attribution(lower: &str) -> bool {
    if lower.len() >= 500 || !(lower.ends_with(':') || lower.ends_with('：')) {
        return false;
    }
    let start = starts_like_attribution(lower);
    let at = lower.contains('@');
    let dated = has_date_or_time(lower);
    if ATTRIBUTION_ENDINGS.iter().any(|e| lower.ends_with(e)) {
        return start || at || dated;
    }
    // Gmail in many languages: "2026年3月3日(火) 10:04 Ann <a@x>:", "вт, 3 мар. … <a@x>:".
    if (lower.ends_with(">:") || lower.ends_with(">：") || lower.ends_with("]:")) && at && dated {
        return true;
    }
    // "Am 03.03.2026 um 10:04 schrieb Ann:": clients always give the time here, prose
    // ("On 3 March 2026 I wrote to you:") does not.
    start && has_time(lower) && ATTRIBUTION_VERBS.iter().any(|v| lower.contains(v))
}

/// The kind of one line, before attributions are found.
fn basic_kind(lines: &[&str], i: usize, norm_i: Option<&str>) -> Kind {
    let line = lines[i];
    if is_blank(line) {
        return Kind::Blank;
    }
    if is_quoted(line) {
        return Kind::Quoted;
    }
    let Some(lower) = norm_i else {
        return Kind::Text;
    };
    if is_delimiter(line) || is_separator(lower) || is_footer(lower) || is_one_line_header(lower) {
        return Kind::End;
    }
    // A header block: "From:" then "Sent:"/"Date:"/"To:"/"Subject:" within four lines, or
    // (GMX, web.de) "Gesendet:"/"Date:" first and "Von:"/"From:" within four lines.
    let from = is_from_label(lower);
    if from || is_header_label(lower) {
        let block = lines[i + 1..lines.len().min(i + 5)]
            .iter()
            .take_while(|l| !is_blank(l))
            .filter_map(|l| norm(l))
            .any(|l| {
                if from {
                    is_header_label(&l)
                } else {
                    is_from_label(&l)
                }
            });
        if block {
            return Kind::End;
        }
    }
    Kind::Text
}

/// Lines classified from the top, with their compared forms.
pub(super) struct Classified {
    pub kinds: Vec<Kind>,
    pub norms: Vec<Option<String>>,
}

/// Classifies the lines from the top; attributions wrapped over up to three lines are
/// found by their last line (it ends with a colon), so each line is looked at a bounded
/// number of times. With `stop_at_end`, stops after the first line that ends the reply
/// (an end line, or an attribution not followed by quoted lines): nothing below it can
/// change the result, and long histories are not read at all.
pub(super) fn classify(lines: &[&str], stop_at_end: bool) -> Classified {
    let n = lines.len();
    let mut kinds: Vec<Kind> = Vec::with_capacity(n.min(4096));
    let mut norms: Vec<Option<String>> = Vec::with_capacity(n.min(4096));
    let mut joined = String::new();
    for j in 0..n {
        let lower = norm(lines[j]);
        let kind = basic_kind(lines, j, lower.as_deref());
        let ends_colon = kind == Kind::Text
            && lower
                .as_deref()
                .is_some_and(|l| l.ends_with(':') || l.ends_with('：'));
        kinds.push(kind);
        norms.push(lower);
        if kind == Kind::End && stop_at_end {
            break;
        }
        if !ends_colon {
            continue;
        }
        // The widest span that starts like an attribution, else the narrowest one.
        let mut chosen: Option<usize> = None;
        for start in (j.saturating_sub(2)..=j).rev() {
            if kinds[start..=j]
                .iter()
                .any(|k| !matches!(k, Kind::Text | Kind::Attribution))
            {
                break;
            }
            joined.clear();
            for norm in norms[start..=j].iter().flatten() {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(norm);
            }
            let first = norms[start].as_deref().unwrap_or("");
            let starts = starts_like_attribution(first);
            if (start == j || starts || joined.contains('@'))
                && is_attribution(&joined)
                && (chosen.is_none() || starts)
            {
                chosen = Some(start);
            }
        }
        // "Support wrote:" (no date, no address) right above quoted lines.
        let next_quoted = || {
            (j + 1..n)
                .find(|&k| !is_blank(lines[k]))
                .is_some_and(|k| is_quoted(lines[k]))
        };
        if chosen.is_none() {
            let lower = norms[j].as_deref().unwrap_or("");
            if lower.len() < 120
                && ATTRIBUTION_ENDINGS.iter().any(|e| lower.ends_with(e))
                && next_quoted()
            {
                chosen = Some(j);
            }
        }
        if let Some(start) = chosen {
            for kind in &mut kinds[start..=j] {
                *kind = Kind::Attribution;
            }
            if stop_at_end && !next_quoted() {
                break;
            }
        }
    }
    Classified { kinds, norms }
}
