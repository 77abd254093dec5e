//! Every API operation × every kind of caller: who gets past the permission checks and
//! who is refused (401/403), against the class each operation has below. The operations
//! come from the served OpenAPI document, so a new route without a class fails here.
//! Each request is valid (real ids, a valid body, `If-Match: *`), so that no 404 or 422
//! hides a missing check; what a call may destroy is made afresh after every call that
//! got through (a refused one leaves it as it was).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use maildesk::domain::{Role, TaskPriority, TaskStatus};
use maildesk::inbound::ingest::Outcome;
use maildesk::mail::hash::sha256_hex;
use maildesk::store::{invitations, oauth, tasks, unix_now, users, webhooks};
use serde_json::{json, Value};

use crate::support::api::{call, make_token, parsed, Auth};
use crate::support::ingest_text;
use crate::support::portal::{
    add_user, customer_mail, Browser, Portal, Response, ADMIN, PASSWORD, STAFF,
};

/// What a caller needs for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Nobody signed in: the document, sign-in, registration, the OAuth token endpoint.
    Public,
    /// Any signed-in caller (a GET).
    Read,
    /// A write- or admin-scoped token, or a session with its CSRF token.
    Write,
    /// An admin, by an admin-scoped token or an admin's session.
    Admin,
    /// Admin-only on someone else's resource; on one's own, as its method says.
    AdminUnlessOwn,
}

use Class::*;

/// Every operation's class, as `METHOD path` of the OpenAPI document.
const CLASSES: &[(&str, Class)] = &[
    ("GET /api/v1/openapi.json", Public),
    ("GET /api/v1/auth/verify", Read),
    ("POST /api/v1/auth/login", Public),
    ("POST /api/v1/auth/logout", Write),
    ("POST /api/v1/auth/register", Public),
    ("GET /api/v1/tickets", Read),
    ("POST /api/v1/tickets", Write),
    ("GET /api/v1/tickets/{reference}", Read),
    ("PATCH /api/v1/tickets/{reference}", Write),
    ("DELETE /api/v1/tickets/{reference}", Admin),
    ("POST /api/v1/tickets/{reference}/replies", Write),
    ("POST /api/v1/tickets/{reference}/notes", Write),
    ("POST /api/v1/tickets/{reference}/merge", Write),
    ("GET /api/v1/tasks", Read),
    ("POST /api/v1/tasks", Write),
    ("GET /api/v1/tasks/{id}", Read),
    ("PATCH /api/v1/tasks/{id}", Write),
    ("DELETE /api/v1/tasks/{id}", AdminUnlessOwn),
    ("GET /api/v1/users", Admin),
    ("POST /api/v1/users", Admin),
    ("GET /api/v1/users/{id}", AdminUnlessOwn),
    ("PATCH /api/v1/users/{id}", AdminUnlessOwn),
    ("DELETE /api/v1/users/{id}", Admin),
    ("GET /api/v1/attachments/{id}", Read),
    ("GET /api/v1/quarantine", Admin),
    ("GET /api/v1/quarantine/{id}", Admin),
    ("POST /api/v1/quarantine/{id}/retry", Admin),
    ("POST /api/v1/oauth/token", Public),
    ("GET /api/v1/oauth/clients", Admin),
    ("POST /api/v1/oauth/clients", Admin),
    ("DELETE /api/v1/oauth/clients/{id}", Admin),
    ("GET /api/v1/webhooks", Admin),
    ("POST /api/v1/webhooks", Admin),
    ("GET /api/v1/webhooks/{id}", Admin),
    ("PATCH /api/v1/webhooks/{id}", Admin),
    ("DELETE /api/v1/webhooks/{id}", Admin),
    ("GET /api/v1/webhooks/{id}/deliveries", Admin),
    ("POST /api/v1/webhooks/deliveries/{id}/retry", Admin),
];

/// A token's scope; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl Class {
    /// The scope a call needs (`None`: nothing), on a resource of the caller's or not.
    fn needs(self, method: &str, own: bool) -> Option<Scope> {
        let by_method = if method == "GET" {
            Scope::Read
        } else {
            Scope::Write
        };
        match self {
            Public => None,
            Read => Some(Scope::Read),
            Write => Some(Scope::Write),
            Admin => Some(Scope::Admin),
            AdminUnlessOwn if own => Some(by_method),
            AdminUnlessOwn => Some(Scope::Admin),
        }
    }
}

/// One kind of caller and what it may do.
struct Caller {
    label: &'static str,
    auth: Auth,
    /// The user it acts as, and whether that user is an admin now.
    user: Option<(i64, bool)>,
    /// How far it reaches reading (GET) and changing: a session without its CSRF token
    /// reads everything and changes nothing.
    reads: Option<Scope>,
    changes: Option<Scope>,
    /// A session's user, to sign in again after a sign-out.
    signs_in_as: Option<&'static str>,
}

impl Caller {
    fn token(label: &'static str, token: String, user: (i64, bool), scope: Scope) -> Caller {
        Caller {
            label,
            auth: Auth::Token(token),
            user: Some(user),
            reads: Some(scope),
            changes: Some(scope),
            signs_in_as: None,
        }
    }

    fn session(
        label: &'static str,
        browser: &Browser,
        email: &'static str,
        user: (i64, bool),
        csrf: bool,
    ) -> Caller {
        Caller {
            label,
            auth: Auth::Session(browser.clone(), csrf),
            user: Some(user),
            reads: Some(Scope::Admin),
            changes: csrf.then_some(Scope::Admin),
            signs_in_as: Some(email),
        }
    }

    /// Whether a call needing `needs` gets through: the scope, and for admin actions
    /// the user's role too (a token never goes beyond its user's role).
    fn passes(&self, method: &str, needs: Option<Scope>) -> bool {
        let Some(needs) = needs else { return true };
        let reach = if method == "GET" {
            self.reads
        } else {
            self.changes
        };
        let admin = self.user.is_some_and(|(_, admin)| admin);
        reach >= Some(needs) && (needs < Scope::Admin || admin)
    }
}

/// What a call sends besides its method and path.
#[derive(Default)]
struct Req {
    /// The id in the path, if it has one.
    id: Option<i64>,
    json: Option<Value>,
    /// A form body instead (the token endpoint's).
    form: Option<String>,
    /// `If-Match: *`: changed whatever its version.
    if_match: bool,
    /// The request's own `Authorization` (the token endpoint authenticates the client,
    /// not a caller), in place of the caller's.
    authorization: Option<String>,
    /// It ends the calling session: a session caller signs in again afterwards.
    ends_session: bool,
    /// A refusal that is not about permission (a token has no session to end).
    also_fine: Option<StatusCode>,
}

impl Req {
    fn on(id: i64) -> Req {
        Req {
            id: Some(id),
            ..Req::default()
        }
    }

    fn json(mut self, value: Value) -> Req {
        self.json = Some(value);
        self
    }

    fn if_match(mut self) -> Req {
        self.if_match = true;
        self
    }
}

/// The fixtures the operations share (what no call destroys), and a counter for fresh
/// ones.
struct Env {
    portal: Portal,
    /// A staff user no caller acts as: the owner of "someone else's" things.
    other: i64,
    ticket: i64,
    task: i64,
    attachment: i64,
    quarantined: i64,
    webhook: i64,
    /// An OAuth client (id, secret) for the token endpoint.
    client: (String, String),
    counter: AtomicU64,
}

impl Env {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    async fn fresh_ticket(&self) -> i64 {
        let n = self.next();
        let from = format!("cust{n}@example.net");
        let id = format!("scope{n}@example.net");
        self.portal
            .ingest(&customer_mail(&from, &id, "VPN down", "It dropped."))
            .await
    }

    async fn fresh_task(&self, creator: i64) -> i64 {
        let mut conn = self.portal.store().acquire().await.unwrap();
        let task = tasks::NewTask {
            title: "Call the vendor",
            description: "",
            priority: TaskPriority::Medium,
            status: TaskStatus::Todo,
            creator_id: creator,
            assignee_id: None,
            ticket_id: None,
            due_date: None,
        };
        tasks::insert(&mut conn, &task, unix_now()).await.unwrap()
    }

    async fn fresh_user(&self) -> i64 {
        let email = format!("leaver{}@example.com", self.next());
        let mut conn = self.portal.store().acquire().await.unwrap();
        let user = users::NewUser {
            email: &email,
            name: "Lee Leaver",
            role: Role::Staff,
            password_hash: "not a hash: never signs in",
        };
        users::insert(&mut conn, &user, unix_now()).await.unwrap()
    }

    /// An open invitation's token.
    async fn fresh_invitation(&self) -> String {
        let token = maildesk::domain::secret::random_token();
        let email = format!("hire{}@example.com", self.next());
        let now = unix_now();
        let mut conn = self.portal.store().acquire().await.unwrap();
        let hash = sha256_hex(token.as_bytes());
        invitations::insert(&mut conn, &hash, &email, Role::Staff, None, now, now + 3600)
            .await
            .unwrap();
        token
    }

    async fn fresh_quarantined(&self) -> i64 {
        let junk = format!("\u{0}\u{1}binary junk {}", self.next());
        match ingest_text(&self.portal.ingestor, &junk).await {
            Outcome::Quarantined { entry_id, .. } => entry_id,
            other => panic!("expected quarantine: {other:?}"),
        }
    }

    async fn fresh_webhook(&self, active: bool) -> i64 {
        let mut conn = self.portal.store().acquire().await.unwrap();
        let hook = webhooks::NewWebhook {
            url: "https://hooks.example.com/maildesk",
            secret: "whsec_test",
            events: "ticket.created",
            active,
            created_by: None,
        };
        webhooks::create(&mut conn, &hook, unix_now())
            .await
            .unwrap()
    }

    /// A delivery that failed (the only kind an admin queues again): an active webhook
    /// gets a new ticket's event, the attempt is claimed and recorded as given up, and
    /// the webhook is switched off so that later tickets make no more deliveries.
    async fn fresh_failed_delivery(&self) -> i64 {
        let hook = self.fresh_webhook(true).await;
        self.fresh_ticket().await;
        let store = self.portal.store();
        let mut conn = store.acquire().await.unwrap();
        let now = unix_now();
        for claimed in webhooks::claim_due(&mut conn, store.backend(), now, 60, 100)
            .await
            .unwrap()
        {
            let failed = maildesk::store::jobs::Finish::Dead {
                status: Some(500),
                error: "HTTP 500",
            };
            webhooks::finish(&mut conn, claimed.id, claimed.attempts, failed, now)
                .await
                .unwrap();
        }
        let off = webhooks::Changes {
            url: None,
            events: None,
            active: Some(false),
            secret: None,
        };
        webhooks::update(&mut conn, hook, &off, now).await.unwrap();
        let delivery = &webhooks::deliveries(&mut conn, hook, None, 1)
            .await
            .unwrap()[0];
        assert_eq!(delivery.state, "failed");
        delivery.id
    }

    async fn fresh_client(&self, scope: &str, acts_as: i64) -> (i64, String, String) {
        let client_id = format!(
            "{}scopes{}",
            maildesk::integrations::oauth::CLIENT_PREFIX,
            self.next()
        );
        let secret = maildesk::domain::secret::random_token();
        let mut conn = self.portal.store().acquire().await.unwrap();
        let new = oauth::NewClient {
            client_id: &client_id,
            name: "scopes robot",
            secret_hash: &sha256_hex(secret.as_bytes()),
            scope,
            acts_as,
            created_by: acts_as,
        };
        let id = oauth::create(&mut conn, &new, unix_now()).await.unwrap();
        (id, client_id, secret)
    }

    /// What a call of `op` sends; `owner` owns the resource where ownership matters.
    async fn request(&self, op: &str, owner: i64) -> Req {
        match op {
            "GET /api/v1/openapi.json"
            | "GET /api/v1/auth/verify"
            | "GET /api/v1/tickets"
            | "GET /api/v1/tasks"
            | "GET /api/v1/users"
            | "GET /api/v1/quarantine"
            | "GET /api/v1/oauth/clients"
            | "GET /api/v1/webhooks" => Req::default(),
            "POST /api/v1/auth/login" => {
                Req::default().json(json!({"email": STAFF, "password": PASSWORD}))
            }
            "POST /api/v1/auth/logout" => Req {
                ends_session: true,
                also_fine: Some(StatusCode::BAD_REQUEST),
                ..Req::default()
            },
            "POST /api/v1/auth/register" => Req::default().json(json!({
                "token": self.fresh_invitation().await,
                "name": "Nia New",
                "password": PASSWORD,
            })),
            "POST /api/v1/tickets" => Req::default().json(json!({
                "requester": format!("asker{}@example.net", self.next()),
                "subject": "Printer",
                "body": "It jams.",
                "acknowledge": false,
            })),
            "GET /api/v1/tickets/{reference}" => Req::on(self.ticket),
            "PATCH /api/v1/tickets/{reference}" => Req::on(self.ticket)
                .if_match()
                .json(json!({"priority": "high"})),
            "DELETE /api/v1/tickets/{reference}" => Req::on(self.fresh_ticket().await),
            // A ticket of its own: replies to one customer are limited per hour.
            "POST /api/v1/tickets/{reference}/replies" => {
                Req::on(self.fresh_ticket().await).json(json!({"body": "Try again now."}))
            }
            "POST /api/v1/tickets/{reference}/notes" => {
                Req::on(self.ticket).json(json!({"body": "Checked the logs."}))
            }
            "POST /api/v1/tickets/{reference}/merge" => {
                Req::on(self.fresh_ticket().await).json(json!({"target": self.ticket}))
            }
            "POST /api/v1/tasks" => Req::default().json(json!({"title": "Order toner"})),
            "GET /api/v1/tasks/{id}" => Req::on(self.task),
            "PATCH /api/v1/tasks/{id}" => Req::on(self.task)
                .if_match()
                .json(json!({"priority": "high"})),
            "DELETE /api/v1/tasks/{id}" => Req::on(self.fresh_task(owner).await),
            "POST /api/v1/users" => Req::default().json(json!({
                "email": format!("invitee{}@example.com", self.next()),
                "role": "staff",
            })),
            "GET /api/v1/users/{id}" => Req::on(owner),
            "PATCH /api/v1/users/{id}" => Req::on(owner)
                .if_match()
                .json(json!({"name": format!("Renamed {}", self.next())})),
            "DELETE /api/v1/users/{id}" => Req::on(self.fresh_user().await),
            "GET /api/v1/attachments/{id}" => Req::on(self.attachment),
            "GET /api/v1/quarantine/{id}" => Req::on(self.quarantined),
            "POST /api/v1/quarantine/{id}/retry" => Req::on(self.fresh_quarantined().await),
            "POST /api/v1/oauth/token" => Req {
                form: Some("grant_type=client_credentials".into()),
                authorization: Some(basic(&self.client.0, &self.client.1)),
                ..Req::default()
            },
            "POST /api/v1/oauth/clients" => Req::default().json(json!({
                "name": "billing robot",
                "scope": "read",
                "acts_as": self.other,
            })),
            "DELETE /api/v1/oauth/clients/{id}" => {
                Req::on(self.fresh_client("read", self.other).await.0)
            }
            "POST /api/v1/webhooks" => Req::default().json(json!({
                // A literal loopback address: allowed by the config below, and nothing to
                // resolve (a made-up name is refused when the webhook is saved).
                "url": "http://127.0.0.1:9/new",
                "events": ["ticket.created"],
                "active": false,
            })),
            "GET /api/v1/webhooks/{id}" | "GET /api/v1/webhooks/{id}/deliveries" => {
                Req::on(self.webhook)
            }
            "PATCH /api/v1/webhooks/{id}" => {
                Req::on(self.webhook).json(json!({"events": ["ticket.created"]}))
            }
            "DELETE /api/v1/webhooks/{id}" => Req::on(self.fresh_webhook(false).await),
            "POST /api/v1/webhooks/deliveries/{id}/retry" => {
                Req::on(self.fresh_failed_delivery().await)
            }
            other => panic!("no request for {other}: add one to Env::request"),
        }
    }
}

fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

async fn send(portal: &Portal, method: &str, path: &str, auth: &Auth, req: &Req) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    match auth {
        Auth::Nobody => {}
        Auth::Token(token) => {
            if req.authorization.is_none() {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
        }
        Auth::Session(browser, csrf) => {
            request = request.header(header::COOKIE, &browser.cookie);
            if *csrf {
                request = request.header("x-csrf-token", &browser.csrf);
            }
        }
    }
    if let Some(own) = &req.authorization {
        request = request.header(header::AUTHORIZATION, own);
    }
    if req.if_match {
        request = request.header(header::IF_MATCH, "*");
    }
    let body = if let Some(value) = &req.json {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from(value.to_string())
    } else if let Some(form) = &req.form {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        Body::from(form.clone())
    } else {
        Body::empty()
    };
    portal.send(request.body(body).unwrap()).await
}

/// The path of `template` with its one `{…}` parameter filled in.
fn fill(template: &str, id: Option<i64>) -> String {
    match (template.split_once('{'), id) {
        (Some((before, rest)), Some(id)) => {
            let after = rest.split_once('}').expect("a closed parameter").1;
            format!("{before}{id}{after}")
        }
        (None, None) => template.to_string(),
        _ => panic!("{template}: the request's id does not fit the path"),
    }
}

async fn user_id(portal: &Portal, email: &str) -> i64 {
    let mut conn = portal.store().acquire().await.unwrap();
    users::find_by_email(&mut conn, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// An access token of a client at `scope` (within the client's).
async fn client_token(portal: &Portal, client: &(i64, String, String), scope: &str) -> String {
    let req = Req {
        form: Some(format!("grant_type=client_credentials&scope={scope}")),
        authorization: Some(basic(&client.1, &client.2)),
        ..Req::default()
    };
    let response = send(portal, "POST", "/api/v1/oauth/token", &Auth::Nobody, &req).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    parsed(&response)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The operations the served document lists, as `METHOD path`.
async fn documented_operations(portal: &Portal) -> BTreeSet<String> {
    let response = call(
        portal,
        "GET",
        "/api/v1/openapi.json",
        &Auth::Nobody,
        None,
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let document = parsed(&response);
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                found.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    found
}

/// The fixtures every call shares.
async fn env() -> Env {
    // Hundreds of calls from one address and by one token: no per-minute limit here.
    let portal =
        Portal::with_config(
            "[web]\napi_per_token_per_minute = 0\napi_per_client_per_minute = 0\n\n[webhooks]\nallow_private_targets = true\n",
        )
        .await;
    let other = add_user(
        portal.store(),
        "olga@example.com",
        "Olga Other",
        Role::Staff,
    )
    .await;
    let with_file = "From: Cora <cora@example.net>\r\nTo: support@example.com\r\nSubject: Log\r\n\
        Message-ID: <scopes-file@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n\
        --b\r\nContent-Type: text/plain; name=\"error.log\"\r\nContent-Disposition: attachment; filename=\"error.log\"\r\n\r\n\
        disk full\r\n--b--\r\n";
    let ticket = portal.ingest(with_file).await;
    let mut env = Env {
        portal,
        other,
        ticket,
        task: 0,
        attachment: 0,
        quarantined: 0,
        webhook: 0,
        client: (String::new(), String::new()),
        counter: AtomicU64::new(1),
    };
    let admin = env.portal.sign_in(ADMIN).await;
    let shown = call(
        &env.portal,
        "GET",
        &format!("/api/v1/tickets/{ticket}"),
        &Auth::Session(admin, false),
        None,
        None,
    )
    .await;
    env.attachment = parsed(&shown)["messages"][0]["attachments"][0]["id"]
        .as_i64()
        .expect("an attachment");
    env.task = env.fresh_task(other).await;
    env.quarantined = env.fresh_quarantined().await;
    env.webhook = env.fresh_webhook(false).await;
    let (_, id, secret) = env.fresh_client("read", other).await;
    env.client = (id, secret);
    env
}

/// Every kind of caller. The admin-scoped token of a staff user is a real case: an admin
/// makes it, then another admin demotes them.
async fn callers(env: &Env) -> Vec<Caller> {
    let portal = &env.portal;
    let staff = portal.sign_in(STAFF).await;
    let admin = portal.sign_in(ADMIN).await;
    // Its own session: another caller's sign-out must not end it.
    let admin_no_csrf = portal.sign_in(ADMIN).await;
    let staff_user = (user_id(portal, STAFF).await, false);
    let admin_user = (user_id(portal, ADMIN).await, true);

    let demoted_email = "dora@example.com";
    let demoted_id = add_user(portal.store(), demoted_email, "Dora Demoted", Role::Admin).await;
    let demoted_browser = portal.sign_in(demoted_email).await;
    let demoted_token = make_token(portal, &demoted_browser, "admin").await;
    let demotion = call(
        portal,
        "PATCH",
        &format!("/api/v1/users/{demoted_id}"),
        &Auth::Session(admin.clone(), true),
        Some(json!({"role": "staff"})),
        Some("*"),
    )
    .await;
    assert_eq!(demotion.status, StatusCode::OK, "{}", demotion.body);

    let mut callers = vec![Caller {
        label: "anonymous",
        auth: Auth::Nobody,
        user: None,
        reads: None,
        changes: None,
        signs_in_as: None,
    }];
    let personal = [
        ("staff's read token", &staff, staff_user, Scope::Read),
        ("staff's write token", &staff, staff_user, Scope::Write),
        ("admin's read token", &admin, admin_user, Scope::Read),
        ("admin's write token", &admin, admin_user, Scope::Write),
        ("admin's admin token", &admin, admin_user, Scope::Admin),
    ];
    for (label, browser, user, scope) in personal {
        let token = make_token(portal, browser, scope.as_str()).await;
        callers.push(Caller::token(label, token, user, scope));
    }
    let demoted = (demoted_id, false);
    let label = "admin token of a demoted admin";
    callers.push(Caller::token(label, demoted_token, demoted, Scope::Admin));
    // OAuth clients: one acting as the admin, asking each scope it allows; one acting as
    // staff.
    let as_admin = env.fresh_client("admin", admin_user.0).await;
    let as_staff = env.fresh_client("admin", staff_user.0).await;
    let clients = [
        ("admin client, read", &as_admin, admin_user, Scope::Read),
        ("admin client, write", &as_admin, admin_user, Scope::Write),
        ("admin client, admin", &as_admin, admin_user, Scope::Admin),
        ("staff client, admin", &as_staff, staff_user, Scope::Admin),
    ];
    for (label, client, user, scope) in clients {
        let token = client_token(portal, client, scope.as_str()).await;
        callers.push(Caller::token(label, token, user, scope));
    }
    callers.push(Caller::session(
        "admin's session with CSRF",
        &admin,
        ADMIN,
        admin_user,
        true,
    ));
    callers.push(Caller::session(
        "admin's session without CSRF",
        &admin_no_csrf,
        ADMIN,
        admin_user,
        false,
    ));
    callers.push(Caller::session(
        "staff's session with CSRF",
        &staff,
        STAFF,
        staff_user,
        true,
    ));
    callers
}

/// Runs one operation as every caller; returns what disagrees with its class.
async fn check(
    env: &Env,
    callers: &mut [Caller],
    op: &str,
    class: Class,
    own: bool,
) -> Vec<String> {
    let (method, template) = op.split_once(' ').unwrap();
    let row = if own {
        format!("{op} (own)")
    } else {
        op.to_string()
    };
    let mut wrong = Vec::new();
    // A request that no call has got through with yet, and its owner: a refused call
    // leaves its fixture as it was, so only one that got through needs a fresh one.
    let mut unused: Option<(i64, Req)> = None;
    for caller in callers.iter_mut() {
        let owner = match caller.user {
            Some((id, _)) if own => id,
            _ => env.other,
        };
        let req = match unused.take() {
            Some((made_for, req)) if made_for == owner => req,
            _ => env.request(op, owner).await,
        };
        let path = fill(template, req.id);
        let response = send(&env.portal, method, &path, &caller.auth, &req).await;
        let status = response.status;
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        let reached = status.is_success() || Some(status) == req.also_fine;
        let allowed = caller.passes(method, class.needs(method, own));
        if allowed && !reached {
            wrong.push(format!(
                "{row} as {}: {status}, expected it allowed: {}",
                caller.label, response.body
            ));
        } else if !allowed && !refused {
            wrong.push(format!(
                "{row} as {}: {status}, expected 401/403: {}",
                caller.label, response.body
            ));
        }
        if refused {
            unused = Some((owner, req));
        } else if req.ends_session && status.is_success() {
            if let Some(email) = caller.signs_in_as {
                let Auth::Session(browser, _) = &mut caller.auth else {
                    unreachable!()
                };
                *browser = env.portal.sign_in(email).await;
            }
        }
    }
    wrong
}

#[tokio::test]
async fn every_operation_lets_exactly_its_callers_through() {
    let env = env().await;
    let documented = documented_operations(&env.portal).await;
    let classified: BTreeSet<String> = CLASSES.iter().map(|(op, _)| op.to_string()).collect();
    assert_eq!(
        documented.difference(&classified).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "operations without a class: add them to CLASSES (and a request to Env::request)"
    );
    assert_eq!(
        classified.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "classes of operations the API does not have"
    );
    let mut callers = callers(&env).await;
    let mut wrong = Vec::new();
    for &(op, class) in CLASSES {
        let method = op.split_once(' ').unwrap().0;
        match class {
            Read => assert_eq!(method, "GET", "{op}: a read is a GET"),
            Write => assert_ne!(method, "GET", "{op}: a GET changes nothing"),
            _ => {}
        }
        wrong.extend(check(&env, &mut callers, op, class, false).await);
        if class == AdminUnlessOwn {
            wrong.extend(check(&env, &mut callers, op, class, true).await);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} calls disagree with their operation's class:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
