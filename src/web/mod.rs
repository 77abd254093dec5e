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
mod state;
mod view;

use axum::routing::get;
use axum::Router;

pub use state::{AppState, Inner};

pub fn router(state: AppState) -> Router {
    let metrics_here = state.config.metrics.enabled && state.config.metrics.listen.is_none();
    let mut app = Router::new();
    if metrics_here {
        app = app.route("/metrics", get(metrics::show));
    }
    app.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/portal/login", get(auth::login_page).post(auth::login))
        .route("/static/{file}", get(assets::serve))
        .merge(portal::routes(&state))
        .merge(api::routes(&state))
        .merge(public::routes(&state))
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
