//! The HTTP side: health probes and the staff portal (server-rendered, works without
//! JavaScript). One module per resource; handlers parse, call the same domain and store
//! code the mail side uses, and render. Errors are mapped once, in [`error`].
pub mod api;
mod assets;
pub mod auth;
pub mod error;
mod health;
pub mod mailhtml;
pub mod metrics;
mod notice;
pub mod portal;
mod public;
mod security;
pub mod server;
mod view;

use std::sync::Arc;

use crate::store::jobs::Wake;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::inbound::ingest::Ingestor;
use crate::runtime::live::LiveHub;
use crate::outbound::OutboundOptions;
use crate::store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub store: Store,
    pub config: Config,
    pub ingestor: Ingestor,
    /// The workers' wakers, rung by a committed unit of work that queued their jobs.
    pub wake: Wake,
    /// An argon2 hash checked for unknown accounts, so they take as long as known ones.
    pub decoy_hash: String,
    /// When this process started (a mailbox gets its window for a first sync).
    pub started_at: i64,
    /// The database's changes, for open pages (fed by `crate::runtime::live::run_feed`).
    pub live: LiveHub,
    /// Cancelled when the server shuts down: long-lived responses (the live feed) end.
    pub shutdown: CancellationToken,
    /// The API's request limits per token and per client address.
    pub api_limits: api::limits::Limits,
    /// The signing keys of OAuth clients' access tokens, as last read.
    pub oauth_keys: crate::integrations::oauth::KeyRing,
    /// The live-update streams open, against their caps.
    pub live_streams: Arc<live::Streams>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    pub fn new(config: Config, ingestor: Ingestor, wake: Wake) -> AppState {
        Self::serving(config, ingestor, wake, CancellationToken::new())
    }

    /// The state of a server that stops when `shutdown` is cancelled.
    pub fn serving(
        config: Config,
        ingestor: Ingestor,
        wake: Wake,
        shutdown: CancellationToken,
    ) -> AppState {
        let decoy_hash = crate::helpdesk::password::hash_now(&crate::domain::secret::random_token())
            .expect("hashing a random password");
        let api_limits = api::limits::Limits::new(
            config.web.api_per_token_per_minute,
            config.web.api_per_client_per_minute,
        );
        let live_streams = live::Streams::new(
            config.web.live_streams_per_session,
            config.web.live_streams_total,
        );
        AppState {
            inner: Arc::new(Inner {
                api_limits,
                store: ingestor.store().clone(),
                config,
                ingestor,
                wake,
                decoy_hash,
                started_at: crate::store::unix_now(),
                live: LiveHub::default(),
                shutdown,
                oauth_keys: Default::default(),
                live_streams,
            }),
        }
    }

    pub fn outbound(&self) -> Option<&OutboundOptions> {
        self.ingestor.options().outbound.as_ref()
    }

    /// The rules' context for a change made now.
    pub fn action_context(&self) -> crate::helpdesk::actions::Context<'_> {
        crate::helpdesk::actions::Context {
            outbound: self.outbound(),
            categories: &self.config.helpdesk.categories,
            now: crate::store::unix_now(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let portal = Router::new()
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
            post(public::revoke_links),
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
        .route("/portal/logout", post(auth::logout))
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
            auth::require_session,
        ));
    let metrics_here = state.config.metrics.enabled && state.config.metrics.listen.is_none();
    let mut app = Router::new();
    if metrics_here {
        app = app.route("/metrics", get(metrics::show));
    }
    app.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/portal/login", get(auth::login_page).post(auth::login))
        .route(
            "/portal/register",
            get(users::register_page).post(users::register),
        )
        .route("/static/{file}", get(assets::serve))
        .merge(portal)
        .merge(api::router(&state))
        .merge(public::router(&state))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`metrics.listen`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::show))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// The largest form accepted (a long reply with quoted text fits easily).
const FORM_LIMIT: usize = 4 * 1024 * 1024;
