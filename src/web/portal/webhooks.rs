//! `/portal/admin/webhooks` (admins): the webhooks, each with its latest deliveries and
//! their state; register one (its secret shown on the page that made it), retry a failed
//! delivery, delete a webhook. Everything else is in the API (`/api/v1/webhooks`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use crate::domain::access::Action;
use crate::integrations::webhooks::{check_target, check_url, new_secret, parse_events, EVENTS};
use crate::store::{unix_now, webhooks as store};
use crate::web::auth::Staff;
use crate::web::error::{WebError, WebResult};
use crate::web::view::{self, MakeForm, Nav, Notice};
use crate::web::AppState;

/// Deliveries shown per webhook.
const SHOWN: i64 = 20;

struct DeliveryLine {
    d: store::Delivery,
    when: String,
    next: String,
}

struct HookView {
    w: store::Webhook,
    counts: String,
    deliveries: Vec<DeliveryLine>,
}

#[derive(Template)]
#[template(path = "web/webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    hooks: Vec<HookView>,
    notice: Option<String>,
    /// The secret of the webhook just made.
    created: Option<String>,
    error: Option<(String, String)>,
    form: NewHookForm,
    /// Each event and whether the form ticks it.
    events: Vec<(&'static str, bool)>,
    csrf: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewHookForm {
    #[serde(default)]
    url: String,
    /// One per ticked box.
    #[serde(default)]
    event: Vec<String>,
}

fn admin(staff: &Staff) -> WebResult<()> {
    Ok(staff
        .actor
        .require(Action::ManageIntegrations, "manage webhooks")?)
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    notice: Option<Notice>,
) -> WebResult<Response> {
    admin(&staff)?;
    render(&state, &staff, MakeForm::listed(notice)).await
}

async fn render(
    state: &AppState,
    staff: &Staff,
    shown: MakeForm<NewHookForm, String>,
) -> WebResult<Response> {
    let MakeForm {
        notice,
        created,
        error,
        form,
        status,
    } = shown;
    let now = unix_now();
    let mut conn = state.store.acquire().await?;
    let mut hooks = Vec::new();
    for w in store::list(&mut conn).await? {
        let counts = store::count_by_state(&mut conn, w.id)
            .await?
            .into_iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect::<Vec<_>>()
            .join(", ");
        let deliveries = store::deliveries(&mut conn, w.id, None, SHOWN)
            .await?
            .into_iter()
            .map(|d| DeliveryLine {
                when: view::ago(d.created_at, now),
                next: if d.state == "pending" {
                    if d.next_attempt_at <= now {
                        "due".into()
                    } else {
                        format!("in {} s", d.next_attempt_at - now)
                    }
                } else {
                    String::new()
                },
                d,
            })
            .collect();
        hooks.push(HookView {
            w,
            counts,
            deliveries,
        });
    }
    drop(conn);
    let events = EVENTS
        .iter()
        .map(|e| (*e, form.event.iter().any(|x| x == e)))
        .collect();
    let page = WebhooksPage {
        nav: Some(Nav::new(state, staff, "webhooks")),
        hooks,
        notice,
        created,
        error,
        form,
        events,
        csrf: staff.csrf.clone(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    Form(form): Form<NewHookForm>,
) -> WebResult<Response> {
    admin(&staff)?;
    let checked = match check_url(&form.url) {
        Ok(uri) => check_target(&uri, &state.config.webhooks).await,
        Err(e) => Err(e),
    }
    .map_err(|e| ("url".to_string(), e))
    .and_then(|_| parse_events(&form.event).map_err(|e| ("event".to_string(), e)));
    let events = match checked {
        Ok(events) => events,
        Err(error) => return render(&state, &staff, MakeForm::refused(error, form)).await,
    };
    let secret = new_secret();
    let mut conn = state.store.acquire().await?;
    let id = store::create(
        &mut conn,
        &store::NewWebhook {
            url: form.url.trim(),
            secret: &secret,
            events: &events,
            active: true,
            created_by: Some(staff.user().id),
        },
        unix_now(),
    )
    .await?;
    drop(conn);
    tracing::info!(user = %staff.user().email, webhook_id = id, "webhook registered");
    render(&state, &staff, MakeForm::made(secret)).await
}

pub async fn retry(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    admin(&staff)?;
    let mut conn = state.store.acquire().await?;
    if !store::requeue(&mut conn, id, unix_now()).await? {
        return Err(WebError::Conflict(
            "only a failed delivery is retried".into(),
        ));
    }
    Ok(view::done("/portal/admin/webhooks", Notice::DeliveryRequeued).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> WebResult<Response> {
    admin(&staff)?;
    let mut conn = state.store.acquire().await?;
    store::delete(&mut conn, id).await?;
    tracing::info!(user = %staff.user().email, webhook_id = id, "webhook deleted");
    Ok(view::done("/portal/admin/webhooks", Notice::WebhookDeleted).into_response())
}
