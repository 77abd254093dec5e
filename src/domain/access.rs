//! Who may do what: one table for the portal, the API and staff by e-mail.

use super::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the queue, tickets, attachments and the dashboard.
    ViewTickets,
    /// Reply, write notes, change status, priority, category and assignee.
    WorkTickets,
    MergeTickets,
    /// Read raw quarantined mail (anyone's), retry or discard it.
    ManageQuarantine,
    ManageUsers,
    DeleteTickets,
    /// Create internal tasks, edit any task, change its status (its creator may delete it).
    WorkTasks,
    /// Delete a task someone else created.
    DeleteAnyTask,
    /// Reports over a period (counts, response times, backlog), downloads included.
    ViewReports,
    /// Register webhooks and OAuth2 machine clients (other systems' access).
    ManageIntegrations,
}

pub fn may(role: Role, action: Action) -> bool {
    match action {
        Action::ViewTickets
        | Action::WorkTickets
        | Action::MergeTickets
        | Action::WorkTasks
        | Action::ViewReports => true,
        Action::ManageQuarantine
        | Action::ManageUsers
        | Action::DeleteTickets
        | Action::DeleteAnyTask
        | Action::ManageIntegrations => role == Role::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_work_tickets_admins_also_administer() {
        for action in [
            Action::ViewTickets,
            Action::WorkTickets,
            Action::MergeTickets,
            Action::WorkTasks,
            Action::ViewReports,
        ] {
            assert!(may(Role::Staff, action) && may(Role::Admin, action));
        }
        for action in [
            Action::ManageQuarantine,
            Action::ManageUsers,
            Action::DeleteTickets,
            Action::DeleteAnyTask,
            Action::ManageIntegrations,
        ] {
            assert!(!may(Role::Staff, action) && may(Role::Admin, action));
        }
    }
}
