//! The API's OpenAPI 3.1 document, `GET /api/v1/openapi.json`. It is generated from the
//! handlers' `#[utoipa::path]` annotations by the same table that builds the router
//! ([`super::router`] registers every route through `utoipa_axum::routes!`), so a route
//! cannot exist without being documented.

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes,
    SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "maildesk API",
        version = "1",
        description = "Tickets, tasks and users of a maildesk helpdesk, with the same rules as \
            the staff portal. Callers authenticate with a personal API token or an OAuth2 \
            client's access token (`Authorization: Bearer …`), or with a portal session \
            (cookie) plus its CSRF token in `X-CSRF-Token` on every change. A token acts with \
            at most its scope (`read` for GET, `write` to change, `admin` for admin resources) \
            and never beyond its user's role. Changes to tickets, tasks and users take \
            `If-Match` with the ETag from GET (`428` without it, `412` when stale). Errors \
            are `application/problem+json` (RFC 9457); refused input names its `field`. \
            Requests are limited per token and per client address (`429` with `Retry-After`)."
    ),
    tags(
        (name = "auth", description = "Sign-in for browser clients, and who is calling"),
        (name = "tickets", description = "The ticket queue, conversations and changes"),
        (name = "tasks", description = "Internal tasks"),
        (name = "users", description = "Staff users and invitations"),
        (name = "attachments", description = "Files that came with mail"),
        (name = "quarantine", description = "Mail that could not be taken in, kept for a look"),
        (name = "oauth", description = "OAuth2 client credentials for machine clients"),
        (name = "webhooks", description = "Signed event deliveries to other systems"),
        (name = "meta", description = "This document"),
    ),
    security(("bearer" = []), ("oauth2" = []), ("session" = [], "csrf" = [])),
    components(schemas(Problem)),
    modifiers(&Conventions),
)]
pub struct ApiDoc;

/// The ways to authenticate, which the operations' `security` name.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A personal API token (`mdk_…`, made in the portal under Account → \
                         API tokens) or an OAuth2 client's access token.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/api/v1/oauth/token",
                    Scopes::from_iter([
                        ("read", "read what the client's user may see"),
                        ("write", "change tickets and tasks"),
                        (
                            "admin",
                            "admin resources (users, quarantine, webhooks, clients)",
                        ),
                    ]),
                ))],
                "Machine clients registered by an admin; the access token lasts 15 minutes.",
            )),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "An OAuth2 client's id and secret, at the token endpoint only.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "maildesk_session",
                "The portal session (`__Host-maildesk_session` over HTTPS), from \
                 `POST /api/v1/auth/login`.",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token, from `POST /api/v1/auth/login`; required on \
                 every change made with a session.",
            ))),
        );
    }
}

/// What every operation shares and the annotations cannot say once. (Not a `Modify`:
/// modifiers run before `routes!` adds the operations.)
fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for operation in operations(item) {
            // Handler names repeat across modules (`list`, `show`): the tag makes
            // them unique, as OpenAPI requires (`tickets_list`).
            if let (Some(tag), Some(id)) = (
                operation.tags.as_ref().and_then(|t| t.first()),
                operation.operation_id.as_mut(),
            ) {
                *id = format!("{tag}_{id}");
            }
            operation
                .responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| problem_response().into());
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.patch.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn problem_response() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("The request was refused or failed: a problem document (RFC 9457).")
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The document, serialised once when the router is built.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    pub fn new(mut openapi: utoipa::openapi::OpenApi) -> Document {
        complete(&mut openapi);
        let json = serde_json::to_vec_pretty(&openapi).expect("the OpenAPI document serialises");
        Document(Bytes::from(json))
    }
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document (no sign-in needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses((status = OK, description = "The OpenAPI 3.1 document", content_type = "application/json")),
)]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0,
    )
        .into_response()
}

// Parameters several operations share (documentation only: the handlers take them as
// `Path<String>` and from the headers).

/// A ticket in a path.
#[derive(utoipa::IntoParams)]
#[into_params(names("reference"), parameter_in = Path)]
#[allow(dead_code)]
pub struct TicketRef(
    /// The ticket's number, or a reference like `#42`.
    String,
);

/// A numbered resource in a path.
#[derive(utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct Id(i64);

/// The version a change is based on.
#[derive(utoipa::IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatch(
    /// The `ETag` from the GET this change is based on (`*`: whatever is there now).
    String,
);
