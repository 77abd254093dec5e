//! 10,000 made-up but realistic replies for bench/quote.rs: every kind `visible_text`
//! knows, in several languages, sizes from a line to 1 MB. Deterministic (a fixed seed).

/// A small xorshift generator: the same corpus on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const OWN: &[&str] = &[
    "Thanks, that fixed it.",
    "The printer on the second floor still shows error 0x41 after the restart.",
    "Danke, jetzt geht es wieder.",
    "Merci beaucoup, tout fonctionne maintenant.",
    "Gracias, ya funciona.",
    "Grazie, adesso funziona.",
    "Bedankt, het werkt weer.",
    "Obrigado, já está a funcionar.",
    "Dzięki, już działa.",
    "Спасибо, теперь всё работает.",
    "ありがとうございます、直りました。",
    "谢谢，现在可以用了。",
    "Could you send me the invoice for March as a PDF, please? Our accounting needs it by Friday.",
];

const ATTRIBUTIONS: &[&str] = &[
    "On Tue, 3 Mar 2026 at 10:04, Support <support+12-ab@example.com> wrote:",
    "On Tue, 3 Mar 2026 at 10:04, Support <support+12-ab@example.com>\nwrote:",
    "Am 03.03.2026 um 10:04 schrieb Support <support@example.com>:",
    "Le mar. 3 mars 2026 à 10:04, Support <support@example.com> a\nécrit :",
    "El mar, 3 mar 2026 a las 10:04, Support (<support@example.com>) escribió:",
    "Il giorno mar 3 mar 2026 alle ore 10:04 Support <support@example.com> ha scritto:",
    "Op di 3 mrt 2026 om 10:04 schreef Support <support@example.com>:",
    "Em ter., 3 de mar. de 2026 às 10:04, Support <support@example.com> escreveu:",
    "W dniu 3.03.2026 o 10:04, Support <support@example.com> pisze:",
    "02.04.2026 14:20 пользователь \"Support\" <support@example.com>\nнаписал:",
    "2026年3月3日(火) 10:04 Support <support@example.com>:",
    "在 2026年3月3日，上午10:04，Support <support@example.com> 写道：",
];

const HEADERS: &[&str] = &[
    "-----Original Message-----\nFrom: Support <support@example.com>\nSent: Tuesday, March 3, 2026 10:04 AM\nTo: Ann <ann@example.com>\nSubject: RE: [#12] Printer",
    "________________________________\nFrom: Support <support@example.com>\nSent: Tuesday, March 3, 2026 10:04\nTo: Ann\nSubject: [#12] Printer",
    "Von: Support <support@example.com>\nGesendet: Dienstag, 3. März 2026 10:04\nAn: Ann\nBetreff: AW: [#12] Drucker",
    "De : Support <support@example.com>\nEnvoyé : mardi 3 mars 2026 10:04\nÀ : Ann\nObjet : RE: [#12] Imprimante",
    "---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Tue, 3 Mar 2026 at 10:04\nSubject: Printer",
];

const FOOTERS: &[&str] = &[
    "Sent from my iPhone",
    "Von meinem iPad gesendet",
    "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Envoyé de mon iPhone",
    "Enviado desde mi Samsung Galaxy",
    "Отправлено из мобильной Почты Mail.ru",
    "-- \nAnn Example\nACME Ltd., Leeds",
];

const QUOTED: &[&str] = &[
    "Hello Ann, thank you for writing to the helpdesk. We have received your message.",
    "Could you restart the printer and tell us what the display shows?",
    "Kind regards, the support team",
    "",
];

fn history(rng: &mut Rng, bytes: usize, prefix: &str) -> String {
    let mut out = String::with_capacity(bytes + 128);
    while out.len() < bytes {
        out.push_str(prefix);
        out.push_str(rng.pick(QUOTED));
        out.push('\n');
        if rng.below(40) == 0 {
            out.push_str(prefix);
            out.push_str(rng.pick(ATTRIBUTIONS).split('\n').next().unwrap_or(""));
            out.push('\n');
        }
    }
    out
}

/// Sizes: most replies are a few KB of history, some tens of KB, one in a hundred
/// between 100 KB and 1 MB.
fn size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0 => 100 * 1024 + rng.below(924 * 1024),
        1..=9 => 8 * 1024 + rng.below(92 * 1024),
        _ => rng.below(8 * 1024),
    }
}

pub fn replies(count: usize) -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| {
            let own = format!("{}\n\n{}\n", rng.pick(OWN), rng.pick(OWN));
            let bytes = size(&mut rng);
            match rng.below(9) {
                0 => format!(
                    "{own}\n{}\n\n{}",
                    rng.pick(ATTRIBUTIONS),
                    history(&mut rng, bytes, "> ")
                ),
                1 => format!(
                    "{own}\n{}\n\n{}",
                    rng.pick(HEADERS),
                    history(&mut rng, bytes, "")
                ),
                2 => format!(
                    "{own}\n{}\n\n{}\n{}",
                    rng.pick(FOOTERS),
                    rng.pick(ATTRIBUTIONS),
                    history(&mut rng, bytes, "> ")
                ),
                3 => {
                    // Inline answers, then the rest of the history.
                    let mut s = String::new();
                    for _ in 0..(1 + rng.below(5)) {
                        s.push_str(&format!("> {}\n{}\n\n", rng.pick(QUOTED), rng.pick(OWN)));
                    }
                    s + &history(&mut rng, bytes, "> ")
                }
                4 => format!(
                    "{own}\n{}\n\n> ##- Please type your reply above this line -##\n>\n{}",
                    rng.pick(ATTRIBUTIONS),
                    history(&mut rng, bytes, "> ")
                ),
                5 => format!(
                    "{own}\n{}\n{}",
                    rng.pick(ATTRIBUTIONS),
                    history(&mut rng, bytes, "")
                ),
                6 => format!("{own}\n-----\n{}", history(&mut rng, bytes, "")),
                7 => history(&mut rng, bytes.max(200), "> "),
                _ => format!("{own}{}", history(&mut rng, bytes / 4, "")),
            }
        })
        .collect()
}
