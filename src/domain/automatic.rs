//! Is this inbound mail written by a machine? (DESIGN.md, "Loops and automatic mail")
//! Automatic mail is stored but never acknowledged, and never changes a ticket's status.

use std::fmt;

/// The header facts the decision needs, collected by the parser.
#[derive(Debug, Default, Clone)]
pub struct AutomaticSignals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub has_x_autoreply: bool,
    pub has_x_autorespond: bool,
    pub has_x_auto_response_suppress: bool,
    pub has_list_id: bool,
    pub has_list_unsubscribe: bool,
    /// The Return-Path value without brackets; `Some("")` is the null sender `<>`.
    pub return_path: Option<String>,
    pub sender_address: Option<String>,
    /// `multipart/report; report-type=delivery-status` (a DSN), or a bare
    /// `message/delivery-status` part at the top.
    pub is_delivery_status: bool,
    pub x_loop: Vec<String>,
}

/// Why a message counts as automatic; shown to staff on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutomaticReason {
    AutoSubmitted(String),
    Precedence(String),
    AutoReplyHeader(&'static str),
    MailingList(&'static str),
    NullReturnPath,
    SystemSender(String),
    DeliveryStatus,
    OwnLoop(String),
}

impl fmt::Display for AutomaticReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AutoSubmitted(v) => write!(f, "Auto-Submitted: {v}"),
            Self::Precedence(v) => write!(f, "Precedence: {v}"),
            Self::AutoReplyHeader(h) => write!(f, "{h} header"),
            Self::MailingList(h) => write!(f, "mailing list ({h})"),
            Self::NullReturnPath => f.write_str("null Return-Path <>"),
            Self::SystemSender(a) => write!(f, "system sender {a}"),
            Self::DeliveryStatus => f.write_str("delivery status report"),
            Self::OwnLoop(v) => write!(f, "our own X-Loop {v}"),
        }
    }
}

/// First matching rule wins; `own_loop_markers` are the X-Loop values we put on our mail.
pub fn classify(
    signals: &AutomaticSignals,
    own_loop_markers: &[String],
) -> Option<AutomaticReason> {
    if let Some(marker) = signals.x_loop.iter().find(|v| {
        own_loop_markers
            .iter()
            .any(|own| own.eq_ignore_ascii_case(v.trim()))
    }) {
        return Some(AutomaticReason::OwnLoop(marker.trim().to_string()));
    }
    if let Some(value) = &signals.auto_submitted {
        let keyword = first_word(value);
        if !keyword.is_empty() && keyword != "no" {
            return Some(AutomaticReason::AutoSubmitted(keyword));
        }
    }
    if let Some(value) = &signals.precedence {
        let keyword = first_word(value);
        if matches!(keyword.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some(AutomaticReason::Precedence(keyword));
        }
    }
    if signals.has_x_autoreply {
        return Some(AutomaticReason::AutoReplyHeader("X-Autoreply"));
    }
    if signals.has_x_autorespond {
        return Some(AutomaticReason::AutoReplyHeader("X-Autorespond"));
    }
    if signals.has_x_auto_response_suppress {
        return Some(AutomaticReason::AutoReplyHeader("X-Auto-Response-Suppress"));
    }
    if signals.has_list_id {
        return Some(AutomaticReason::MailingList("List-Id"));
    }
    if signals.has_list_unsubscribe {
        return Some(AutomaticReason::MailingList("List-Unsubscribe"));
    }
    if signals.is_delivery_status {
        return Some(AutomaticReason::DeliveryStatus);
    }
    if signals.return_path.as_deref().map(str::trim) == Some("") {
        return Some(AutomaticReason::NullReturnPath);
    }
    if let Some(sender) = signals
        .sender_address
        .as_deref()
        .filter(|a| crate::domain::address::is_system_sender(a))
    {
        return Some(AutomaticReason::SystemSender(sender.to_string()));
    }
    None
}

fn first_word(value: &str) -> String {
    value
        .split(|c: char| c == ';' || c.is_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_default(signals: AutomaticSignals) -> Option<AutomaticReason> {
        classify(&signals, &["support@example.com".to_string()])
    }

    #[test]
    fn human_mail_is_not_automatic() {
        let signals = AutomaticSignals {
            auto_submitted: Some("no".into()),
            precedence: Some("first-class".into()),
            return_path: Some("ann@example.com".into()),
            sender_address: Some("ann@example.com".into()),
            ..Default::default()
        };
        assert_eq!(classify_default(signals), None);
    }

    #[test]
    fn each_rule_fires() {
        let cases = [
            (
                AutomaticSignals {
                    auto_submitted: Some("auto-replied; owner-email=x".into()),
                    ..Default::default()
                },
                "Auto-Submitted: auto-replied",
            ),
            (
                AutomaticSignals {
                    precedence: Some("Bulk".into()),
                    ..Default::default()
                },
                "Precedence: bulk",
            ),
            (
                AutomaticSignals {
                    precedence: Some("auto_reply".into()),
                    ..Default::default()
                },
                "Precedence: auto_reply",
            ),
            (
                AutomaticSignals {
                    has_x_autoreply: true,
                    ..Default::default()
                },
                "X-Autoreply header",
            ),
            (
                AutomaticSignals {
                    has_x_autorespond: true,
                    ..Default::default()
                },
                "X-Autorespond header",
            ),
            (
                AutomaticSignals {
                    has_x_auto_response_suppress: true,
                    ..Default::default()
                },
                "X-Auto-Response-Suppress header",
            ),
            (
                AutomaticSignals {
                    has_list_id: true,
                    ..Default::default()
                },
                "mailing list (List-Id)",
            ),
            (
                AutomaticSignals {
                    has_list_unsubscribe: true,
                    ..Default::default()
                },
                "mailing list (List-Unsubscribe)",
            ),
            (
                AutomaticSignals {
                    return_path: Some(String::new()),
                    ..Default::default()
                },
                "null Return-Path <>",
            ),
            (
                AutomaticSignals {
                    sender_address: Some("MAILER-DAEMON@mx.example.org".into()),
                    ..Default::default()
                },
                "system sender MAILER-DAEMON@mx.example.org",
            ),
            (
                AutomaticSignals {
                    is_delivery_status: true,
                    ..Default::default()
                },
                "delivery status report",
            ),
            (
                AutomaticSignals {
                    x_loop: vec![" Support@Example.com".into()],
                    ..Default::default()
                },
                "our own X-Loop Support@Example.com",
            ),
        ];
        for (signals, expected) in cases {
            assert_eq!(
                classify_default(signals).map(|r| r.to_string()).as_deref(),
                Some(expected)
            );
        }
    }

    #[test]
    fn foreign_x_loop_is_not_ours() {
        let signals = AutomaticSignals {
            x_loop: vec!["other@example.org".into()],
            ..Default::default()
        };
        assert_eq!(classify_default(signals), None);
    }
}
