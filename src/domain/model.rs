//! The helpdesk's vocabulary: closed sets of values stored as lowercase text.

use std::fmt;
use std::str::FromStr;

/// A value that is not one of an enumeration's spellings; says which ones are allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind} (expected one of: {allowed})")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub allowed: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Exactly the stored spelling (the loose parsing of `FromStr` is for input).
            pub fn from_stored(text: &str) -> Result<Self, UnknownValue> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| Self::unknown(text))
            }

            fn unknown(value: &str) -> UnknownValue {
                UnknownValue {
                    kind: $kind,
                    value: value.to_string(),
                    allowed: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(value: &str) -> Result<Self, UnknownValue> {
                let wanted = value.trim().to_ascii_lowercase().replace(['-', ' '], "_");
                Self::ALL.iter().copied().find(|v| v.as_str() == wanted).ok_or_else(|| Self::unknown(value))
            }
        }
    };
}

text_enum!(
    /// Where a ticket stands. `resolved` reopens on a customer reply; `closed` does so only
    /// within the configured window, after which a reply opens a new, linked ticket.
    TicketStatus, "ticket status" {
        Open = "open",
        InProgress = "in_progress",
        Waiting = "waiting",
        Resolved = "resolved",
        Closed = "closed",
    }
);

text_enum!(Priority, "priority" { Low = "low", Medium = "medium", High = "high", Urgent = "urgent" });

text_enum!(TaskPriority, "task priority" { Low = "low", Medium = "medium", High = "high" });

text_enum!(TaskStatus, "task status" { Todo = "todo", InProgress = "in_progress", Done = "done" });

text_enum!(
    /// `in` is mail we received, `out` mail we sent (or will send).
    Direction, "direction" { Inbound = "in", Outbound = "out" }
);

text_enum!(
    /// `public` is seen by the customer, `note` only by staff, `automatic` is machine mail
    /// (auto-replies, bounces, lists) kept for the record but never answered.
    MessageKind, "message kind" { Public = "public", Note = "note", Automatic = "automatic" }
);

text_enum!(Role, "role" { Admin = "admin", Staff = "staff" });

text_enum!(ParticipantRole, "participant role" { Requester = "requester", Cc = "cc" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loosely_and_prints_canonically() {
        assert_eq!(
            "In Progress".parse::<TicketStatus>().unwrap(),
            TicketStatus::InProgress
        );
        assert_eq!(
            "in-progress".parse::<TaskStatus>().unwrap(),
            TaskStatus::InProgress
        );
        assert_eq!(TicketStatus::InProgress.to_string(), "in_progress");
        assert_eq!(Direction::Inbound.as_str(), "in");
    }

    #[test]
    fn stored_spellings_are_read_exactly() {
        assert_eq!(
            TicketStatus::from_stored("in_progress").unwrap(),
            TicketStatus::InProgress
        );
        let err = TicketStatus::from_stored("In Progress").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"In Progress\" is not a valid ticket status \
             (expected one of: open, in_progress, waiting, resolved, closed)"
        );
    }

    #[test]
    fn unknown_value_names_the_allowed_ones() {
        let err = "urgent".parse::<TaskPriority>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"urgent\" is not a valid task priority (expected one of: low, medium, high)"
        );
    }
}
