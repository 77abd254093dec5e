//! What other programs use: OAuth2 machine clients' tokens and outgoing webhooks.

pub mod oauth;
pub mod webhooks;
