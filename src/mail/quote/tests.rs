//! Table-driven tests with made-up replies of every kind the rules know.

use super::*;

/// Runs `visible_text` on the fixture with CRLF line ends (as mail arrives).
fn visible(text: &str) -> String {
    visible_text(&text.replace('\n', "\r\n"))
}

fn check(cases: &[(&str, &str, &str)]) {
    let mut failed = Vec::new();
    for (name, text, expected) in cases {
        let got = visible(text);
        if got != *expected {
            failed.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// Kind 1: attribution lines, one to three lines, many languages and date formats.
const ATTRIBUTIONS: &[(&str, &str, &str)] = &[
    ("en gmail", "Thanks, fixed.\n\nOn Mon, Jan 2, 2023 at 10:00 AM Support <support@example.com> wrote:\n> old text\n", "Thanks, fixed."),
    ("en gmail wrapped", "Thanks, fixed.\n\nOn Tue, 3 Mar 2026 at 10:04, Support <support+12-ab@example.com>\nwrote:\n\n> old text\n", "Thanks, fixed."),
    ("en three lines", "Thanks.\n\nOn Tue, 3 Mar 2026 at 10:04, Support Team\n<support@example.com>\nwrote:\n> old\n", "Thanks."),
    ("en apple", "Still broken.\n\nOn 2 Jan 2023, at 10:00, Support <support@example.com> wrote:\n\n> old\n", "Still broken."),
    ("en name first", "ok\n\nSupport <support@example.com> wrote:\n> old\n", "ok"),
    ("en no quote marks (from html)", "Yes.\n\nOn Mon, Jan 2, 2023 at 10:00 AM Support <s@example.com> wrote:\nOld text without quote marks.\n", "Yes."),
    ("de thunderbird", "Geht wieder.\n\nAm 02.01.2023 um 10:00 schrieb Support:\n> alt\n", "Geht wieder."),
    ("de gmail wrapped", "Danke!\n\nAm Di., 3. März 2026 um 10:04 Uhr schrieb Support <\nsupport@example.com>:\n\n> alt\n", "Danke!"),
    ("de name last", "Passt.\n\nAm 03.03.2026 um 10:04 schrieb Support <support@example.com>:\n> alt\n", "Passt."),
    ("fr gmail", "Merci !\n\nLe lun. 2 janv. 2023 à 10:00, Support <s@example.com> a écrit :\n> vieux\n", "Merci !"),
    ("fr wrapped nbsp", "Merci.\n\nLe mar. 3 mars 2026 à 10:04, Support <s@example.com> a\n\u{a0}écrit\u{a0}:\n> vieux\n", "Merci."),
    ("es", "Gracias.\n\nEl lun, 2 ene 2023 a las 10:00, Support escribió:\n> viejo\n", "Gracias."),
    ("es wrapped", "Gracias.\n\nEl mar, 3 mar 2026 a las 10:04, Support (<s@example.com>)\nescribió:\n> viejo\n", "Gracias."),
    ("it", "Grazie.\n\nIl giorno mar 3 mar 2026 alle ore 10:04 Support <s@example.com> ha\nscritto:\n> vecchio\n", "Grazie."),
    ("nl", "Bedankt.\n\nOp di 3 mrt 2026 om 10:04 schreef Support <s@example.com>:\n> oud\n", "Bedankt."),
    ("pt", "Obrigado.\n\nEm ter., 3 de mar. de 2026 às 10:04, Support <s@example.com>\nescreveu:\n> antigo\n", "Obrigado."),
    ("pl", "Dzięki.\n\nW dniu 3.03.2026 o 10:04, Support <s@example.com> pisze:\n> stare\n", "Dzięki."),
    ("pl gmail", "Dzięki.\n\nwt., 3 mar 2026 o 10:04 Support <s@example.com> napisał(a):\n> stare\n", "Dzięki."),
    ("ru two lines", "Спасибо.\n\n02.04.2026 14:20 пользователь \"Bob\" <bob@example.com>\nнаписал:\n> старое\n", "Спасибо."),
    ("ru gmail", "Спасибо.\n\nвт, 3 мар. 2026 г. в 10:04, Support <s@example.com>:\n> старое\n", "Спасибо."),
    ("ru thunderbird", "Спасибо.\n\n03.03.2026 10:04, Support пишет:\n> старое\n", "Спасибо."),
    ("ja gmail", "ありがとうございます。\n\n2026年3月3日(火) 10:04 Support <s@example.com>:\n> 古い\n", "ありがとうございます。"),
    ("ja apple", "了解です。\n\n2026/03/03 10:04、Support <s@example.com>のメール:\n> 古い\n", "了解です。"),
    ("zh", "谢谢。\n\n在 2026年3月3日，上午10:04，Support <s@example.com> 写道：\n> 旧\n", "谢谢。"),
    ("zh gmail", "谢谢。\n\nSupport <s@example.com> 于2026年3月3日周二 10:04写道：\n> 旧\n", "谢谢。"),
    ("zoho dashed", "Thanks.\n\n---- On Tue, 03 Mar 2026 10:04:50 +0100 Support <s@example.com> wrote ----\n\nold text\n", "Thanks."),
    ("sv", "Tack.\n\nDen 3 mars 2026 kl. 10:04 skrev Support <s@example.com>:\n> gammal\n", "Tack."),
    ("name only, above quoted lines", "Thanks.\n\nSupport wrote:\n\n> old\n", "Thanks."),
    ("not an attribution", "As I wrote:\nthe printer is broken.", "As I wrote:\nthe printer is broken."),
    ("not an attribution 2", "I wrote: this is fine, not an attribution line\nmore", "I wrote: this is fine, not an attribution line\nmore"),
    ("dated prose with a verb", "On 3 March 2026 I wrote to you:\nthe printer is still broken.", "On 3 March 2026 I wrote to you:\nthe printer is still broken."),
    ("on in prose", "On Monday the printer broke.\nPlease help.", "On Monday the printer broke.\nPlease help."),
];

/// Kind 2: inline answers stay, trailing history goes.
const INLINE: &[(&str, &str, &str)] = &[
    ("interleaved", "> Is it on?\nYes.\n> Plugged in?\nNo.", "> Is it on?\nYes.\n> Plugged in?\nNo."),
    ("question then answer", "> question?\nmy answer", "> question?\nmy answer"),
    ("bottom posted", "> Shall we?\n\nYes, let's.", "> Shall we?\n\nYes, let's."),
    ("attribution then inline", "On Mon, Jan 2, 2023 at 10:00 AM Support <s@example.com> wrote:\n> Is it on?\nYes.\n", "On Mon, Jan 2, 2023 at 10:00 AM Support <s@example.com> wrote:\n> Is it on?\nYes."),
    ("inline then trailing history", "> Is it on?\nYes.\n\n> Anything else?\n> Support\n>\n> On Sun, Ann <a@example.com> wrote:\n>> broken\n", "> Is it on?\nYes."),
    ("trailing quote without attribution", "Yes please.\n\n> Shall we?\n> Really?\n", "Yes please."),
    ("top posted over attribution and quote", "Fine.\n\nOn Mon, 2 Jan 2023, Support <s@example.com> wrote:\n> a\n> b\n>\n> c\n", "Fine."),
];

/// Kind 3: signatures and mobile/webmail footers.
const SIGNATURES: &[(&str, &str, &str)] = &[
    ("dash dash space", "Thanks!\n\n-- \nAnn Example\nACME Ltd.\n", "Thanks!"),
    ("dash dash", "Thanks!\n--\nAnn\n", "Thanks!"),
    ("iphone", "ok\n\nSent from my iPhone\n\n> On Jan 2 Support wrote:\n", "ok"),
    ("iphone de", "ja\n\nVon meinem iPhone gesendet\n", "ja"),
    ("outlook android de", "Passt.\n\nGesendet von Outlook für Android<https://aka.ms/AAb9ysg>\n", "Passt."),
    ("ipad fr", "D'accord.\n\nEnvoyé de mon iPad\n", "D'accord."),
    ("es", "Vale.\n\nEnviado desde mi Samsung Galaxy\n", "Vale."),
    ("ru", "Хорошо.\n\nОтправлено из мобильной Почты Mail.ru\n", "Хорошо."),
    ("outlook ios with link", "Sure.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n________________________________\nFrom: Support <s@example.com>\n", "Sure."),
    ("outlook ios link next line", "Sure.\n\nGet Outlook for iOS\n<https://aka.ms/o0ukef>\n", "Sure."),
    ("it", "Va bene.\n\nInviato da iPhone\n", "Va bene."),
    ("nl", "Prima.\n\nVerstuurd vanaf mijn iPhone\n", "Prima."),
    ("pt", "Certo.\n\nEnviado do meu iPhone\n", "Certo."),
    ("pl", "Dobrze.\n\nWysłane z iPhone'a\n", "Dobrze."),
    ("ja", "はい。\n\niPhoneから送信\n", "はい。"),
    ("zh", "好的。\n\n发自我的iPhone\n", "好的。"),
    ("sent from in prose", "Sent from my office yesterday, the parcel never arrived at the warehouse in Leeds.\nWhere is it?", "Sent from my office yesterday, the parcel never arrived at the warehouse in Leeds.\nWhere is it?"),
    ("signature only keeps all", "-- \nAnn Example\n", "-- \nAnn Example"),
];

/// Kind 4: delimiter lines end the reply; such characters in a sentence do not.
const DELIMITERS: &[(&str, &str, &str)] = &[
    ("dashes", "Answer.\n-----\nold\n", "Answer."),
    (
        "underscores",
        "Answer.\n\n________________________________\nold\n",
        "Answer.",
    ),
    ("equals", "Answer.\n=====\nold\n", "Answer."),
    ("tildes", "Answer.\n~~~\nold\n", "Answer."),
    ("stars", "Answer.\n***\nold\n", "Answer."),
    ("pluses", "Answer.\n+++\nold\n", "Answer."),
    ("zero width", "Answer.\n\u{200b}\nold\n", "Answer."),
    (
        "in a sentence",
        "This is not a ---------- delimiter.\nNor this ___ one.",
        "This is not a ---------- delimiter.\nNor this ___ one.",
    ),
];

/// Kind 5: forwarded and embedded headers.
const HEADERS: &[(&str, &str, &str)] = &[
    ("original message", "Please call me.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n", "Please call me."),
    ("original message de", "Bitte anrufen.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\n", "Bitte anrufen."),
    ("thunderbird original", "Ok.\n\n-------- Original Message --------\nSubject: x\n", "Ok."),
    ("outlook web", "Done.\n\n________________________________\nFrom: Support <support@example.com>\nSent: Monday, January 2, 2023 10:00\nTo: Ann\n", "Done."),
    ("outlook de", "Erledigt.\n\nVon: Support <support@example.com>\nGesendet: Montag, 2. Januar 2023 10:00\nAn: Ann\nBetreff: AW: Test\n", "Erledigt."),
    ("outlook fr", "Fait.\n\nDe : Support <support@example.com>\nEnvoyé : lundi 2 janvier 2023 10:00\nÀ : Ann\nObjet : RE: Test\n", "Fait."),
    ("outlook it", "Fatto.\n\nDa: Support <support@example.com>\nInviato: lunedì 2 gennaio 2023 10:00\nA: Ann\nOggetto: R: Test\n", "Fatto."),
    ("outlook es", "Hecho.\n\nDe: Support <support@example.com>\nEnviado: lunes, 2 de enero de 2023 10:00\nPara: Ann\nAsunto: RE: Test\n", "Hecho."),
    ("outlook nl", "Klaar.\n\nVan: Support <support@example.com>\nVerzonden: maandag 2 januari 2023 10:00\nAan: Ann\nOnderwerp: RE: Test\n", "Klaar."),
    ("outlook ru", "Готово.\n\nОт: Support <support@example.com>\nОтправлено: 2 января 2023 г. 10:00\nКому: Ann\nТема: RE: Test\n", "Готово."),
    ("outlook zh", "好了。\n\n发件人: Support <support@example.com>\n发送时间: 2023年1月2日 10:00\n收件人: Ann\n主题: 回复: Test\n", "好了。"),
    ("outlook ja", "完了。\n\n差出人: Support <support@example.com>\n送信日時: 2023年1月2日 10:00\n宛先: Ann\n件名: RE: Test\n", "完了。"),
    ("gmx sent first", "Erledigt.\n\nGesendet: Mittwoch, 03. März 2026 um 10:04 Uhr\nVon: \"Support\" <s@example.com>\nAn: ann@example.com\nBetreff: Test\nalter Text\n", "Erledigt."),
    ("embedded without blank line", "See below.\nFrom: Support <support@example.com>\nDate: Mon, 2 Jan 2023\nSubject: Test\n\nold\n", "See below."),
    ("one line header", "Ok.\n\nFrom: Support [mailto:s@example.com] Sent: Monday To: Ann Subject: Test\nold\n", "Ok."),
    ("begin forwarded", "FYI\n\nBegin forwarded message:\n\nFrom: Bob <b@example.com>\nSubject: x\n", "FYI"),
    ("gmail forwarded", "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@example.com>\n", "FYI"),
    ("forward without comment keeps all", "---------- Forwarded message ---------\nFrom: Bob <b@example.com>\nDate: Mon\n\nHello", "---------- Forwarded message ---------\nFrom: Bob <b@example.com>\nDate: Mon\n\nHello"),
    ("from in prose", "From: my side it is fine.\nThanks", "From: my side it is fine.\nThanks"),
];

/// Our own marker: always cut there, with the attribution the client put above it.
const MARKER: &[(&str, &str, &str)] = &[
    ("plain", "Here is the log.\n\n##- Please type your reply above this line -##\nticket text\n", "Here is the log."),
    ("gmail", "Here is the log.\n\nOn Tue, 3 Mar 2026 at 10:04, Support <support+12-ab@example.com>\nwrote:\n\n> ##- Please type your reply above this line -##\n>\n> Hello Ann\n", "Here is the log."),
    ("outlook", "Here.\n\n________________________________\nFrom: Support <support@example.com>\nSent: Tuesday, March 3, 2026 10:04\nTo: Ann <ann@example.com>;\n Bob <bob@example.com>\nSubject: [#12] Printer\n\n##- Please type your reply above this line -##\n", "Here."),
    ("apple", "Here.\n\n> On 3 Mar 2026, at 10:04, Support <support@example.com> wrote:\n> \n> ##- Please type your reply above this line -##\n", "Here."),
    ("quoted lines above marker are the writer's", "> from your last mail\nmy note\n> ##- Please type your reply above this line -##\n", "> from your last mail\nmy note"),
    ("german client", "Hier.\n\nAm 03.03.2026 um 10:04 schrieb Support <support@example.com>:\n> ##- Please type your reply above this line -##\n", "Hier."),
    ("mobile footer above marker", "Yes.\n\nSent from my iPhone\n\nOn 3 Mar 2026, at 10:04, Support <support@example.com> wrote:\n\n> ##- Please type your reply above this line -##\n", "Yes."),
    ("bottom posted under marker", "> ##- Please type your reply above this line -##\n> Hello Ann\n\nMy answer.", "> ##- Please type your reply above this line -##\n> Hello Ann\n\nMy answer."),
];

/// A reply whose visible part would be empty keeps the whole text.
const NEVER_EMPTY: &[(&str, &str, &str)] = &[
    ("only quoted", "> a\n> b\n", "> a\n> b"),
    (
        "only attribution and quote",
        "On Mon, 2 Jan 2023, Support <s@example.com> wrote:\n> a\n",
        "On Mon, 2 Jan 2023, Support <s@example.com> wrote:\n> a",
    ),
    ("empty", "", ""),
    ("blank", "\n\n  \n", ""),
    ("plain", "Just text.\nTwo lines.", "Just text.\nTwo lines."),
];

#[test]
fn attributions() {
    check(ATTRIBUTIONS);
}

#[test]
fn inline_answers() {
    check(INLINE);
}

#[test]
fn signatures_and_footers() {
    check(SIGNATURES);
}

#[test]
fn delimiter_lines() {
    check(DELIMITERS);
}

#[test]
fn forwarded_and_embedded_headers() {
    check(HEADERS);
}

#[test]
fn our_marker() {
    check(MARKER);
}

#[test]
fn never_empty() {
    check(NEVER_EMPTY);
}

/// HTML: (name, html, must contain, must not contain).
const HTML: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "gmail",
        r#"<div dir="ltr">Thanks, works.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, 3 Mar 2026 at 10:04, Support &lt;s@example.com&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">old text</blockquote></div>"#,
        &["Thanks, works."],
        &["old text", "wrote:"],
    ),
    (
        "gmail signature",
        r#"<div dir="ltr">Thanks.<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br><div dir="ltr" class="gmail_signature">Ann<br>ACME</div></div><br><div class="gmail_quote">old</div>"#,
        &["Thanks."],
        &["ACME", "old"],
    ),
    (
        "outlook web",
        r#"<html><head><style>p{margin:0}</style></head><body><div id="divtagdefaultwrapper">Done, thanks.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Support<br><b>Sent:</b> Monday</div><div>old text</div></body></html>"#,
        &["Done, thanks."],
        &["old text", "Sent:"],
    ),
    (
        "outlook desktop",
        r#"<div class="WordSection1"><p class="MsoNormal">Erledigt.</p><p class="MsoNormal">&nbsp;</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>Von:</b> Support &lt;s@example.com&gt;<br><b>Gesendet:</b> Montag</p></div></div><p class="MsoNormal">alter Text</p></div>"#,
        &["Erledigt."],
        &["alter Text", "Gesendet"],
    ),
    (
        "apple mail",
        r#"<html><body dir="auto">Fine by me.<br><br><div dir="ltr">Sent from my iPhone</div><div dir="ltr"><br><blockquote type="cite">On 3 Mar 2026, at 10:04, Support &lt;s@example.com&gt; wrote:<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">old text</div></blockquote></body></html>"#,
        &["Fine by me."],
        &["old text", "iPhone"],
    ),
    (
        "thunderbird",
        r#"<p>Works now.</p><div class="moz-cite-prefix">Am 03.03.2026 um 10:04 schrieb Support:<br></div><blockquote type="cite" cite="mid:x@y">alter Text</blockquote>"#,
        &["Works now."],
        &["alter Text", "schrieb"],
    ),
    (
        "thunderbird bottom posted",
        r#"<div class="moz-cite-prefix">On 03.03.2026 10:04, Support wrote:<br></div><blockquote type="cite">Is it on?</blockquote><p>Yes it is.</p>"#,
        &["Is it on?", "Yes it is."],
        &[],
    ),
    (
        "yahoo",
        r#"<div>Ok then.</div><div class="yahoo_quoted"><div>On Tuesday, March 3, 2026, Support wrote:</div><div>old text</div></div>"#,
        &["Ok then."],
        &["old text"],
    ),
    (
        "yandex",
        r#"<div>Спасибо.</div><div>&nbsp;</div><div>03.03.2026, 10:04, "Support" &lt;s@example.com&gt;:</div><blockquote><div>старый текст</div></blockquote>"#,
        &["Спасибо."],
        &["старый", "03.03.2026"],
    ),
    (
        "mail.ru",
        r#"<div>Хорошо.</div><div>Вторник, 3 марта 2026, 10:04 +03:00 от Support &lt;s@example.com&gt;:<br><blockquote style="border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;">старый текст</blockquote></div>"#,
        &["Хорошо."],
        &["старый"],
    ),
    ("mail.ru bare attribution", "<HTML><BODY><p>Fine, thanks.</p><p>Ann</p><br><br>Tue, 3 Mar 2026 10:04:51 +0300 от Support &lt;s@example.com&gt;:<br>\n<blockquote style=\"border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;\"><div class=\"js-helper js-readmsg-msg\"><div>old text</div></div></blockquote><br></BODY></HTML>", &["Fine, thanks.", "Ann"], &["old text", "Support"]),
    ("hotmail stopSpelling", "<html><body class='hmmessage'><div dir='ltr'>All good.<div>Ann<br><div><hr id=\"stopSpelling\">Date: Tue, 3 Mar 2026 10:04 +0100<br>Subject: Test<br>From: s@example.com<br><div>old text</div></div></div></div></body></html>", &["All good.", "Ann"], &["old text", "Subject"]),
    ("windows mail border-top", "<div dir=\"ltr\"><div>Sure.</div><div data-signatureblock=\"true\"><div><br></div></div><div style=\"padding-top: 5px; border-top-color: rgb(229, 229, 229); border-top-width: 1px; border-top-style: solid;\"><div><b>От:</b>&nbsp;<a href=\"mailto:s@example.com\">Support</a><br><b>Отправлено:</b>&nbsp;вторник, 3 марта 2026 г. 10:04</div></div><div>старый текст</div></div>", &["Sure."], &["старый", "Отправлено"]),
    ("signature div with border-top is kept", "<div>Thanks.</div><div style=\"border-top:1px solid #ccc\">Ann Example, ACME</div>", &["Thanks.", "Ann Example"], &[]),
    (
        "zimbra",
        r#"<div>Done.</div><hr id="zwchr" data-marker="__DIVIDER__"><div data-marker="__HEADERS__"><b>From: </b>Support</div><div data-marker="__QUOTED_TEXT__">old text</div>"#,
        &["Done."],
        &["old text", "From:"],
    ),
    (
        "our marker",
        r#"<p>Here is the log.</p><div>On Tue, 3 Mar 2026 at 10:04, Support &lt;s@example.com&gt; wrote:</div><div><p style="color:#888">##- Please type your reply above this line -##</p><p>Hello Ann</p></div>"#,
        &["Here is the log."],
        &["Hello Ann", "Please type"],
    ),
    (
        "original message text",
        r#"<p>Call me.</p><p>-----Original Message-----</p><p>From: Support</p>"#,
        &["Call me."],
        &["Original", "From:"],
    ),
    (
        "only quoted keeps all",
        r#"<div class="gmail_quote">only old text</div>"#,
        &["only old text"],
        &[],
    ),
    (
        "no quote unchanged",
        r#"<p>Hello <b>there</b></p>"#,
        &["Hello <b>there</b>"],
        &[],
    ),
];

#[test]
fn html_quote_containers_are_cut() {
    let mut failed = Vec::new();
    for (name, html, keep, gone) in HTML {
        let cut = cut_quoted_html(html);
        let clean = visible_html(html);
        for out in [&cut, &clean] {
            for k in *keep {
                if !out.contains(k) {
                    failed.push(format!("{name}: {k:?} missing from {out:?}"));
                }
            }
            for g in *gone {
                if out.contains(g) {
                    failed.push(format!("{name}: {g:?} still in {out:?}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn visible_html_is_sanitised() {
    let html = r#"<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p onclick="x()">Hi</p><script>evil()</script><div class="gmail_quote">old</div></body></html>"#;
    let out = visible_html(html);
    assert!(out.contains("Hi"), "{out}");
    for gone in ["script", "alert", "evil", "onclick", "color:red", "old"] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    assert_eq!(visible_html("<p>Hello</p>"), "<p>Hello</p>");
    // Not sanitised by cut_quoted_html: the portal does that with its own policy.
    let cut = cut_quoted_html(html);
    assert!(
        cut.contains("onclick") && cut.contains("<script>") && !cut.contains("old"),
        "{cut}"
    );
}

#[test]
fn deep_nesting_is_flattened_and_fast() {
    let deep = "<div>".repeat(50_000) + "deep text" + &"</div>".repeat(50_000);
    let start = std::time::Instant::now();
    let out = visible_html(&deep);
    assert!(out.contains("deep text"));
    assert!(
        out.matches("<div>").count() <= 400,
        "{}",
        out.matches("<div>").count()
    );
    assert!(start.elapsed().as_secs() < 5);
    // Comments, scripts and attribute values with `<` or `>` do not count.
    let html = "<div title=\"a>b\"><!-- <div> --><script>if (a<b) {}</script>x</div>";
    assert_eq!(html::flatten_deep(html), html);
    // Raw-text elements count both ways, so they cannot hide the depth.
    let sneaky = "<div><style></style><script>x</script>".repeat(5_000);
    let flat = html::flatten_deep(&sneaky);
    assert!(
        flat.matches("<div>").count() <= 400,
        "{}",
        flat.matches("<div>").count()
    );
    let normal = "<div><p>a<p>b<ul><li>c<li>d</ul></div>".repeat(10);
    assert_eq!(html::flatten_deep(&normal), normal);
}

#[test]
fn html_text_agrees() {
    let html = r#"<div dir="ltr">Thanks, works.</div><div class="gmail_quote">On Tue, Support wrote:<blockquote>old text</blockquote></div>"#;
    assert_eq!(visible_text_of_html(html), "Thanks, works.");
}

#[test]
fn hostile_html_does_not_panic() {
    let deep = "<div>".repeat(20_000) + "text" + &"</div>".repeat(5);
    let cases = [
        String::new(),
        "<".to_string(),
        "<blockquote".to_string(),
        "<div class=\"gmail_quote\">".repeat(1000),
        "<blockquote>x".repeat(2000),
        deep,
        "<table><tr><td><blockquote>".repeat(500),
        "<p>a</p><hr>".repeat(5000),
        "\u{0}<p>\u{feff}</p>".to_string(),
    ];
    for html in &cases {
        let _ = cut_quoted_html(html);
        let _ = visible_html(html);
        let _ = visible_text_of_html(html);
    }
}

#[test]
fn hostile_text_is_fast_enough() {
    // A body of quoted lines once took 21 s (quadratic); these must stay linear.
    let bodies = [
        ">\n".repeat(80 * 1024),
        "On Monday\n".repeat(20_000),
        "From: x\n".repeat(20_000),
        "wrote:\n".repeat(20_000),
        "On 3 Mar 2026 Ann <a@x>\n".repeat(20_000),
        "> q?\nanswer\n".repeat(20_000),
    ];
    for body in &bodies {
        let start = std::time::Instant::now();
        let _ = visible_text(body);
        assert!(start.elapsed().as_secs() < 2, "{:?}…", &body[..20]);
    }
}

/// Our own mail, quoted by the common clients: always cut exactly at the marker.
#[test]
fn replies_to_our_own_mail_are_cut_at_the_marker() {
    use crate::domain::secret::Secret;
    use crate::mail::compose::{self, Identity, Thread};
    let identity = Identity {
        helpdesk: "Example Support".into(),
        from: "Example Support <support@example.com>".into(),
        support_address: "support@example.com".into(),
        subject_prefix: "Support".into(),
        secret: Secret("0123456789abcdef0123".into()),
        plus_address_reply_to: true,
    };
    let refs = vec!["m1@c.example".to_string()];
    let thread = Thread {
        ticket_id: 42,
        ticket_subject: "Printer on fire",
        in_reply_to: Some("m1@c.example"),
        references: &refs,
    };
    let ours = [
        compose::acknowledgement(
            &identity,
            &thread,
            "ann@c.example",
            Some("Ann"),
            Default::default(),
        )
        .unwrap(),
        compose::reply(
            &identity,
            &thread,
            &[("ann@c.example", Some("Ann"))],
            &[],
            "Alex",
            "We are on our way.\n\n-- \nnot a signature of Ann's",
            Default::default(),
        )
        .unwrap(),
        compose::resolved(
            &identity,
            &thread,
            ("ann@c.example", Some("Ann")),
            Default::default(),
        )
        .unwrap(),
    ];
    let answer = "Thanks, it is out.\n\nAnn";
    for mail in &ours {
        let quoted: String = mail.text.lines().map(|l| format!("> {l}\n")).collect();
        let texts = [
            // Gmail, wrapped attribution.
            format!("{answer}\n\nOn Tue, 3 Mar 2026 at 10:04, Example Support <support+42-x@example.com>\nwrote:\n\n{quoted}"),
            // Apple Mail (iOS), with its footer.
            format!("{answer}\n\nSent from my iPhone\n\n> On 3 Mar 2026, at 10:04, Example Support <support@example.com> wrote:\n> \n{quoted}"),
            // Outlook: header block, history not quoted.
            format!("{answer}\n\n________________________________\nFrom: Example Support <support@example.com>\nSent: Tuesday, March 3, 2026 10:04 AM\nTo: Ann <ann@c.example>\nSubject: {}\n\n{}", mail.subject, mail.text),
            // Thunderbird, German.
            format!("{answer}\n\nAm 03.03.2026 um 10:04 schrieb Example Support:\n{quoted}"),
        ];
        for text in &texts {
            assert_eq!(visible(text), answer, "{text}");
        }
        let htmls = [
            format!("<div dir=\"ltr\">Thanks, it is out.<br><br>Ann</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Tue, Example Support wrote:</div><blockquote class=\"gmail_quote\">{}</blockquote></div>", mail.html),
            format!("<div>Thanks, it is out.<br><br>Ann</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> Example Support</div>{}", mail.html),
            format!("<p>Thanks, it is out.<br><br>Ann</p><div>03.03.2026, 10:04, \"Example Support\" &lt;support@example.com&gt;:</div><div>{}</div>", mail.html),
        ];
        for html in &htmls {
            let out = visible_html(html);
            assert!(out.contains("Thanks, it is out."), "{out}");
            assert!(
                !out.contains("Please type") && !out.contains("#42"),
                "{out}"
            );
            assert!(
                !out.contains("Example Support"),
                "the attribution goes too: {out}"
            );
            assert_eq!(visible_text_of_html(html), answer, "{html}");
        }
    }
}
