//! What every handler can reach: the store, the configuration, the ingestor (the one
//! path a customer's web message takes), the workers' wake-ups and the limits.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{api, portal::live};
use crate::config::Config;
use crate::inbound::ingest::Ingestor;
use crate::outbound::OutboundOptions;
use crate::runtime::live::LiveHub;
use crate::store::jobs::Wake;
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
        let decoy_hash =
            crate::helpdesk::password::hash_now(&crate::domain::secret::random_token())
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
