//! The staff portal driven through its router (`oneshot`, no socket): a test's portal
//! over a real database, signed-in browsers, responses, users and routes to check.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use maildesk::domain::Role;
use maildesk::inbound::ingest::{Ingestor, Outcome};
use maildesk::store::{tickets, unix_now, users, Store};
use maildesk::web::{self, AppState};
use tower::ServiceExt;

use crate::support::{ingest_text, TestEnv};

pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN: &str = "ada@example.com";
pub const STAFF: &str = "sam@example.com";
pub const DISABLED: &str = "dis@example.com";

/// A local SMTP port nobody listens on: mail is queued, never sent, in these tests.
const SMTP: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n";

pub struct Portal {
    pub env: TestEnv,
    pub ingestor: Ingestor,
    pub state: AppState,
    pub app: axum::Router,
    pub wake: Arc<tokio::sync::Notify>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A signed-in browser: its session cookie and the session's CSRF token.
#[derive(Clone, Default)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

impl Portal {
    pub async fn new() -> Portal {
        Self::with_config("").await
    }

    pub async fn with_config(extra: &str) -> Portal {
        Self::with_config_text(&format!("{SMTP}{extra}")).await
    }

    /// A portal that sends no mail at all: no `[smtp]`.
    pub async fn without_smtp(extra: &str) -> Portal {
        Self::with_config_text(extra).await
    }

    async fn with_config_text(text: &str) -> Portal {
        let env = TestEnv::with_config(text).await;
        let store = env.store().await;
        for (email, name, role) in [
            (ADMIN, "Ada Admin", Role::Admin),
            (STAFF, "Sam Staff", Role::Staff),
            (DISABLED, "Dee Disabled", Role::Staff),
        ] {
            add_user(&store, email, name, role).await;
        }
        Self::over(env, store).await
    }

    /// A portal over `env`'s database as it is (an upgraded or moved one).
    pub async fn over(env: TestEnv, store: Store) -> Portal {
        let ingestor = Ingestor::open(&env.config, store).await.expect("ingestor");
        let wake = Arc::new(tokio::sync::Notify::new());
        let state = AppState::new(
            env.config.clone(),
            ingestor.clone(),
            maildesk::store::jobs::Wake::with_outbox(wake.clone()),
        );
        Portal {
            app: web::router(state.clone()),
            state,
            env,
            ingestor,
            wake,
        }
    }

    pub fn store(&self) -> &Store {
        self.ingestor.store()
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, browser: &Browser, path: &str) -> Response {
        let mut request = Request::get(path);
        if !browser.cookie.is_empty() {
            request = request.header(header::COOKIE, &browser.cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// A form POST with the browser's CSRF token (unless the fields name one).
    pub async fn post(&self, browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            form.append_pair("csrf", &browser.csrf);
        }
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !browser.cookie.is_empty() {
            request = request.header(header::COOKIE, &browser.cookie);
        }
        self.send(request.body(Body::from(form.finish())).unwrap())
            .await
    }

    /// Signs in through the form; panics unless it works.
    pub async fn sign_in(&self, email: &str) -> Browser {
        let response = self.try_sign_in(email, PASSWORD).await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "sign-in of {email}: {}",
            response.body
        );
        let cookie = session_cookie(&response).expect("a session cookie");
        let mut browser = Browser {
            cookie,
            csrf: String::new(),
        };
        let page = self.get(&browser, "/portal").await;
        assert_eq!(page.status, StatusCode::OK);
        browser.csrf = field_value(&page.body, "csrf").expect("csrf token on the page");
        browser
    }

    /// A browser signed in as `email`, whose account is then disabled (its session must
    /// stop working at once).
    pub async fn sign_in_then_disable(&self, email: &str) -> Browser {
        let browser = self.sign_in(email).await;
        let mut conn = self.store().acquire().await.unwrap();
        let user = users::find_by_email(&mut conn, email)
            .await
            .unwrap()
            .unwrap();
        users::set_active(&mut conn, user.id, false, unix_now())
            .await
            .unwrap();
        browser
    }

    pub async fn try_sign_in(&self, email: &str, password: &str) -> Response {
        let page = self.get(&Browser::default(), "/portal/login").await;
        let login_cookie = set_cookie(&page, "maildesk_login").expect("login cookie");
        let csrf = field_value(&page.body, "csrf").expect("login csrf");
        let browser = Browser {
            cookie: login_cookie,
            csrf,
        };
        self.post(
            &browser,
            "/portal/login",
            &[
                ("email", email),
                ("password", password),
                ("next", "/portal"),
            ],
        )
        .await
    }

    pub async fn ingest(&self, raw: &str) -> i64 {
        match ingest_text(&self.ingestor, raw).await {
            Outcome::Created { ticket_id, .. } | Outcome::Threaded { ticket_id, .. } => ticket_id,
            other => panic!("not stored as ticket mail: {other:?}"),
        }
    }

    pub async fn ticket(&self, id: i64) -> tickets::Ticket {
        let mut conn = self.store().acquire().await.unwrap();
        tickets::get(&mut conn, id).await.unwrap()
    }
}

pub async fn add_user(store: &Store, email: &str, name: &str, role: Role) -> i64 {
    let hash = maildesk::helpdesk::password::hash_now(PASSWORD).unwrap();
    let mut conn = store.acquire().await.unwrap();
    users::insert(
        &mut conn,
        &users::NewUser {
            email,
            name,
            role,
            password_hash: &hash,
        },
        unix_now(),
    )
    .await
    .unwrap()
}

/// The `name=value` of a cookie the response sets.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&prefix))
        .map(|v| v.split(';').next().unwrap().to_string())
}

pub fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("maildesk_session=") && !v.contains("Max-Age=0"))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// The value of the first `<input name="…" value="…">` on a page.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A form's fields.
pub type Fields<'a> = Vec<(&'a str, &'a str)>;
/// (method, path, form, what staff get, what admins get).
pub type Route<'a> = (&'a str, String, Fields<'a>, StatusCode, StatusCode);

/// Requests every route as each of (anonymous, disabled, staff, admin) and checks the
/// status each gets; anonymous and disabled users are always sent to the sign-in page.
pub async fn check_routes(portal: &Portal, routes: &[Route<'_>], browsers: [&Browser; 4]) {
    let [anonymous, disabled, staff, admin] = browsers;
    let see = StatusCode::SEE_OTHER;
    for (method, path, form, for_staff, for_admin) in routes {
        for (who, browser, expected) in [
            ("anonymous", anonymous, see),
            ("disabled", disabled, see),
            ("staff", staff, *for_staff),
            ("admin", admin, *for_admin),
        ] {
            let response = if *method == "GET" {
                portal.get(browser, path).await
            } else {
                portal.post(browser, path, form).await
            };
            assert_eq!(
                response.status, expected,
                "{method} {path} as {who}: {}",
                response.body
            );
            if matches!(who, "anonymous" | "disabled") {
                assert!(
                    response.location().starts_with("/portal/login?next="),
                    "{method} {path} as {who} goes to sign-in, not {:?}",
                    response.location()
                );
            }
        }
    }
}

pub fn customer_mail(from: &str, id: &str, subject: &str, body: &str) -> String {
    format!("From: Cora Customer <{from}>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n{body}\r\n")
}

/// The token of the first `/portal/register?token=` link in a text.
pub fn token_in(text: &str) -> Option<String> {
    let marker = "/portal/register?token=";
    let start = text.find(marker)? + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (token.len() == 64).then_some(token)
}
