//! Staff by e-mail: a reply from a verified staff member may start with a small command
//! block that changes the ticket; `#note` keeps the mail internal.
//!
//! ```text
//! #note
//! #status resolved
//! #assign me            (or #assign agent@example.com)
//! #priority high
//! ```

use crate::domain::{Priority, TicketStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status(TicketStatus),
    Assign(AssignTo),
    Priority(Priority),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTo {
    Me,
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffMail {
    /// `#note`: an internal note, never sent to the customer.
    pub note: bool,
    pub commands: Vec<Command>,
    /// Command lines that could not be understood (kept in the text, reported in the log).
    pub rejected: Vec<String>,
    /// The text without the command block: what the customer receives.
    pub body: String,
}

/// Reads the command block at the top of a staff mail's visible text.
pub fn parse_staff_mail(visible: &str) -> StaffMail {
    let mut mail = StaffMail::default();
    let lines: Vec<&str> = visible.lines().collect();
    let mut consumed = 0;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            consumed = i + 1;
            continue;
        }
        let Some(rest) = trimmed.strip_prefix('#') else {
            break;
        };
        let mut words = rest.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_lowercase();
        let argument = words.collect::<Vec<_>>().join(" ");
        let command = match keyword.as_str() {
            "note" if argument.is_empty() => {
                mail.note = true;
                consumed = i + 1;
                continue;
            }
            "status" => argument.parse().ok().map(Command::Status),
            "priority" => argument.parse().ok().map(Command::Priority),
            "assign" if argument.eq_ignore_ascii_case("me") => Some(Command::Assign(AssignTo::Me)),
            "assign" if crate::domain::address::is_valid(&argument) => Some(Command::Assign(
                AssignTo::Email(crate::domain::address::normalize(&argument)),
            )),
            // Not a command ("#1 priority for us…"): the text starts here.
            _ if !["status", "priority", "assign", "note"].contains(&keyword.as_str()) => break,
            _ => None,
        };
        match command {
            Some(command) => mail.commands.push(command),
            None => mail.rejected.push(trimmed.to_string()),
        }
        consumed = i + 1;
    }
    mail.body = lines[consumed.min(lines.len())..]
        .join("\n")
        .trim()
        .to_string();
    mail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_command_block_and_keeps_the_rest() {
        let mail = parse_staff_mail("#status resolved\n#assign me\n#priority High\n\nWe replaced the toner.\n#hashtag in text stays");
        assert!(!mail.note);
        assert_eq!(
            mail.commands,
            vec![
                Command::Status(TicketStatus::Resolved),
                Command::Assign(AssignTo::Me),
                Command::Priority(Priority::High)
            ]
        );
        assert_eq!(mail.body, "We replaced the toner.\n#hashtag in text stays");
    }

    #[test]
    fn note_and_assignment_by_address() {
        let mail = parse_staff_mail("#note\n#assign Bob@Example.com\nCustomer seems upset.");
        assert!(mail.note);
        assert_eq!(
            mail.commands,
            vec![Command::Assign(AssignTo::Email("bob@example.com".into()))]
        );
        assert_eq!(mail.body, "Customer seems upset.");
    }

    #[test]
    fn plain_text_and_bad_commands() {
        let plain = parse_staff_mail("#1 priority for us is your printer.");
        assert_eq!(
            (plain.commands.len(), plain.body.as_str()),
            (0, "#1 priority for us is your printer.")
        );
        let bad = parse_staff_mail("#status sleeping\nText.");
        assert_eq!(bad.rejected, vec!["#status sleeping".to_string()]);
        assert_eq!(bad.body, "Text.");
    }
}
