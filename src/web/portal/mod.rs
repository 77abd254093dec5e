//! The staff portal (`/portal/…`): one module per resource.

pub mod account;
pub mod api_clients;
pub mod dashboard;
pub mod files;
pub mod live;
pub mod quarantine;
pub mod queue;
pub mod reports;
pub mod tasks;
pub mod ticket;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::routing::{get, post};
use axum::Router;

use crate::web::AppState;

/// The portal's pages: every one behind a staff session, but registration by invitation.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/portal/register",
            get(users::register_page).post(users::register),
        )
        .merge(signed_in(state))
}

fn signed_in(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/portal", get(dashboard::show))
        .route("/portal/", get(dashboard::show))
        .route("/portal/tickets", get(queue::show))
        .route("/portal/tickets/bulk", post(queue::bulk))
        .route("/portal/tickets/{reference}", get(ticket::show))
        .route("/portal/tickets/{reference}/update", post(ticket::update))
        .route("/portal/tickets/{reference}/reply", post(ticket::reply))
        .route("/portal/tickets/{reference}/note", post(ticket::note))
        .route("/portal/tickets/{reference}/merge", post(ticket::merge))
        .route("/portal/tickets/{reference}/delete", post(ticket::delete))
        .route(
            "/portal/tickets/{reference}/revoke-links",
            post(crate::web::public::revoke_links),
        )
        .route("/portal/messages/{id}/raw", get(files::raw_message))
        .route(
            "/portal/messages/{id}/cid/{content_id}",
            get(files::cid_image),
        )
        .route("/portal/attachments/{id}", get(files::attachment))
        .route("/portal/quarantine", get(quarantine::list))
        .route("/portal/quarantine/{id}", get(quarantine::show))
        .route("/portal/quarantine/{id}/raw", get(quarantine::raw))
        .route("/portal/quarantine/{id}/retry", post(quarantine::retry))
        .route("/portal/quarantine/{id}/discard", post(quarantine::discard))
        .route("/portal/tasks", get(tasks::list).post(tasks::create))
        .route("/portal/tasks/new", get(tasks::new_form))
        .route("/portal/tasks/{id}", get(tasks::show).post(tasks::edit))
        .route("/portal/tasks/{id}/status", post(tasks::set_status))
        .route("/portal/tasks/{id}/delete", post(tasks::delete))
        .route("/portal/reports", get(reports::show))
        .route("/portal/reports/{file}", get(reports::csv))
        .route("/portal/account", get(account::show))
        .route("/portal/account/password", post(account::change_password))
        .route("/portal/account/sessions/end", post(account::end_session))
        .route(
            "/portal/account/sessions/end-others",
            post(account::end_other_sessions),
        )
        .route("/portal/events", get(live::events))
        .route("/portal/account/profile", post(account::change_profile))
        .route(
            "/portal/account/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route("/portal/account/tokens/{id}/revoke", post(tokens::revoke))
        .route("/portal/users", get(users::list).post(users::create))
        .route("/portal/users/invite", post(users::invite))
        .route(
            "/portal/users/invitations/{id}/resend",
            post(users::resend_invitation),
        )
        .route(
            "/portal/users/invitations/{id}/revoke",
            post(users::revoke_invitation),
        )
        .route("/portal/users/{id}", get(users::show).post(users::update))
        .route("/portal/users/{id}/disable", post(users::disable))
        .route("/portal/users/{id}/enable", post(users::enable))
        .route("/portal/users/{id}/password", post(users::reset_password))
        .route("/portal/users/{id}/delete", post(users::delete))
        .route(
            "/portal/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route("/portal/admin/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/portal/admin/webhooks/deliveries/{id}/retry",
            post(webhooks::retry),
        )
        .route("/portal/logout", post(crate::web::auth::logout))
        .route(
            "/portal/admin/api-clients",
            get(api_clients::list).post(api_clients::create),
        )
        .route(
            "/portal/admin/api-clients/{id}/revoke",
            post(api_clients::revoke),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::auth::require_session,
        ))
}
