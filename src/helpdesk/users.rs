//! Who may use the portal: creating, editing, disabling and deleting staff users,
//! passwords, and registration by invitation. One set of rules for the portal, the
//! command line and (later) the API. Every change works in the caller's transaction;
//! password hashing (slow on purpose) happens before it, in [`hash_password`].
//!
//! The invariant kept here: there is always at least one active admin. Demoting,
//! disabling or deleting the last one is refused, with the admins' rows locked while
//! the transaction decides (so two admins cannot disable each other at the same time).

use tracing::info;

use crate::config::WebConfig;
use crate::domain::access::Action;
use crate::domain::{address, Role};
use crate::helpdesk::actions::{ActionError, Actor};
use crate::mail::hash::sha256_hex;
use crate::outbound::OutboundOptions;
use crate::store::{api_tokens, invitations, sessions, users, Conn, StoreError, Tx};

type Result<T> = std::result::Result<T, ActionError>;

/// Who makes a change.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    /// A signed-in user: an admin for other users, anyone for their own profile.
    User(&'a Actor),
    /// The operator on the server (`maildesk user …`).
    Operator,
}

impl By<'_> {
    fn actor_id(&self) -> Option<i64> {
        match self {
            By::User(actor) => Some(actor.user.id),
            By::Operator => None,
        }
    }

    fn require_admin(&self, what: &'static str) -> Result<()> {
        match self {
            By::User(actor) => actor.require(Action::ManageUsers, what),
            By::Operator => Ok(()),
        }
    }

    fn is_self(&self, id: i64) -> bool {
        self.actor_id() == Some(id)
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ActionError {
    ActionError::Invalid {
        field,
        message: message.into(),
    }
}

/// A refusal because of what is stored (a taken address, the last admin, owned
/// tickets), not because of the value typed.
fn conflict(field: &'static str, message: String) -> ActionError {
    ActionError::Conflict {
        field,
        current: None,
        message,
    }
}

/// A failure that is nobody's input (hashing failed): an internal error.
fn internal(message: String) -> ActionError {
    ActionError::Store(StoreError::Database(sqlx::Error::Protocol(message)))
}

/// The longest name accepted.
const NAME_MAX: usize = 200;

/// A trimmed, non-empty name of sensible length.
pub fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "enter a name"));
    }
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("at most {NAME_MAX} characters, no control characters"),
        ));
    }
    Ok(name.to_string())
}

/// The normalised address (lowercase), if it looks like one.
pub fn clean_email(email: &str) -> Result<String> {
    let email = address::normalize(email);
    if email.is_empty() {
        return Err(invalid("email", "enter an e-mail address"));
    }
    if !address::is_valid(&email) || email.len() > 254 {
        return Err(invalid(
            "email",
            format!("{email:?} is not an e-mail address"),
        ));
    }
    Ok(email)
}

pub fn parse_role(role: &str) -> Result<Role> {
    role.parse()
        .map_err(|_| invalid("role", format!("{role:?} is not a role: admin or staff")))
}

/// Hashes a new password (argon2id, off the async threads, within the process's
/// hashing limit). `confirm`, when given, must match. Errors name the field `password`.
pub async fn hash_password(password: &str, confirm: Option<&str>) -> Result<String> {
    if confirm.is_some_and(|c| c != password) {
        return Err(invalid("password", "the two entries differ"));
    }
    crate::helpdesk::password::hash(password)
        .await
        .map_err(password_error)
}

fn password_error(e: crate::helpdesk::password::PasswordError) -> ActionError {
    use crate::helpdesk::password::PasswordError;
    match e {
        PasswordError::TooShort => invalid(
            "password",
            format!(
                "at least {} characters",
                crate::helpdesk::password::MIN_LENGTH
            ),
        ),
        PasswordError::Busy => ActionError::Busy,
        PasswordError::Hash(e) => internal(e),
    }
}

async fn refuse_taken_email(conn: &mut Conn, email: &str, except: Option<i64>) -> Result<()> {
    match users::find_by_email(conn, email).await? {
        Some(other) if Some(other.id) != except => Err(conflict(
            "email",
            format!("a user with e-mail {email} already exists"),
        )),
        _ => Ok(()),
    }
}

/// A store conflict on insert or update is the unique address (two concurrent changes).
fn email_conflict(e: StoreError) -> ActionError {
    match e {
        StoreError::Conflict(message) => conflict("email", message),
        other => other.into(),
    }
}

/// Refuses the change if `id` is the only active admin. Locks the admins' rows first.
async fn keep_an_admin(tx: &mut Tx, id: i64, field: &'static str, what: &str) -> Result<()> {
    let admins = users::lock_active_admins(tx).await?;
    if admins == [id] {
        return Err(invalid(
            field,
            format!(
                "this is the last active admin and cannot be {what}; make another user admin first"
            ),
        ));
    }
    Ok(())
}

pub struct NewAccount<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub role: Role,
    /// From [`hash_password`].
    pub password_hash: &'a str,
}

/// Adds a user (admins and the operator). Pending invitations of the address are
/// revoked: the account exists now.
pub async fn create(tx: &mut Tx, by: By<'_>, new: &NewAccount<'_>, now: i64) -> Result<i64> {
    by.require_admin("add users")?;
    let name = clean_name(new.name)?;
    let email = clean_email(new.email)?;
    insert_account(tx, &name, &email, new.role, new.password_hash, now).await
}

async fn insert_account(
    tx: &mut Tx,
    name: &str,
    email: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> Result<i64> {
    refuse_taken_email(tx, email, None).await?;
    let id = users::insert(
        tx,
        &users::NewUser {
            email,
            name,
            role,
            password_hash,
        },
        now,
    )
    .await
    .map_err(email_conflict)?;
    invitations::revoke_for_email(tx, email, now).await?;
    info!(user = %email, %role, "user added");
    Ok(id)
}

/// A change of name, address and (for admins) role.
pub struct Edit<'a> {
    pub name: &'a str,
    pub email: &'a str,
    /// `None` keeps the role (one's own profile).
    pub role: Option<Role>,
    /// Whether the editor proved their current password: needed to change one's own
    /// address (the address is the sign-in name).
    pub password_verified: bool,
}

/// Edits a user: admins edit anyone; everyone edits their own name and address.
pub async fn update(
    tx: &mut Tx,
    by: By<'_>,
    id: i64,
    edit: &Edit<'_>,
    now: i64,
) -> Result<users::User> {
    let user = users::get(tx, id).await?;
    let current_role = user.role;
    let role = edit.role.unwrap_or(current_role);
    if !by.is_self(id) || role != current_role {
        by.require_admin("edit other users or roles")?;
    }
    let name = clean_name(edit.name)?;
    let email = clean_email(edit.email)?;
    if email != user.email {
        if by.is_self(id) && !edit.password_verified {
            return Err(invalid(
                "current",
                "enter your current password to change your e-mail address",
            ));
        }
        refuse_taken_email(tx, &email, Some(id)).await?;
    }
    if current_role == Role::Admin && role != Role::Admin && user.active == 1 {
        keep_an_admin(tx, id, "role", "demoted").await?;
    }
    users::update(tx, id, &name, &email, role, now)
        .await
        .map_err(email_conflict)?;
    info!(user = %email, %role, "user edited");
    Ok(users::get(tx, id).await?)
}

/// What a password change or a disable ended for the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    /// Portal and API sessions signed out.
    pub sessions: u64,
    /// Personal API tokens revoked.
    pub tokens: u64,
}

impl Ended {
    /// "2 session(s) ended, 1 API token(s) revoked" (what `maildesk user` prints; the
    /// portal says it through its fixed notices).
    pub fn counts(&self) -> String {
        format!(
            "{} session(s) ended, {} API token(s) revoked",
            self.sessions, self.tokens
        )
    }
}

/// Ends what the user's old credentials opened, in the caller's transaction: their
/// sessions but `keep`, their personal API tokens (revoked for good: enabling the user
/// later does not bring them back), and the access tokens of OAuth clients acting as
/// them (the credentials version in those tokens no longer matches; the clients get new
/// ones with their own credentials).
async fn end_access(tx: &mut Tx, id: i64, keep: Option<&str>, now: i64) -> Result<Ended> {
    let sessions = sessions::delete_for_user(tx, id, keep).await?;
    let tokens = api_tokens::revoke_all_for_user(tx, id, now).await?;
    users::raise_credentials_version(tx, id).await?;
    Ok(Ended { sessions, tokens })
}

/// Disables a user (ending their sessions, tokens and clients' access tokens at once,
/// see [`end_access`]) or enables one (nothing ended comes back).
pub async fn set_active(
    tx: &mut Tx,
    by: By<'_>,
    id: i64,
    active: bool,
    now: i64,
) -> Result<(users::User, Ended)> {
    by.require_admin("disable or enable users")?;
    let user = users::get(tx, id).await?;
    let mut ended = Ended::default();
    if !active {
        if by.is_self(id) {
            return Err(invalid(
                "active",
                "you cannot disable yourself; another admin can",
            ));
        }
        if user.role == Role::Admin && user.active == 1 {
            keep_an_admin(tx, id, "active", "disabled").await?;
        }
        ended = end_access(tx, id, None, now).await?;
    }
    users::set_active(tx, id, active, now).await?;
    info!(user = %user.email, active, sessions = ended.sessions, tokens = ended.tokens,
        "user {}", if active { "enabled" } else { "disabled" });
    Ok((user, ended))
}

/// Deletes a user who owns nothing; anyone who does is refused (disable them instead).
pub async fn delete(tx: &mut Tx, by: By<'_>, id: i64) -> Result<users::User> {
    by.require_admin("delete users")?;
    let user = users::get(tx, id).await?;
    if by.is_self(id) {
        return Err(invalid(
            "user",
            "you cannot delete yourself; another admin can",
        ));
    }
    if user.role == Role::Admin && user.active == 1 {
        keep_an_admin(tx, id, "user", "deleted").await?;
    }
    let owned = users::owned(tx, id).await?;
    if !owned.is_empty() {
        let list: Vec<String> = owned
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        return Err(conflict(
            "user",
            format!(
                "{} cannot be deleted: they still have {}. Disable the account instead.",
                user.email,
                list.join(", ")
            ),
        ));
    }
    users::delete(tx, id).await?;
    info!(user = %user.email, "user deleted");
    Ok(user)
}

/// Sets a password (from [`hash_password`]) and ends what the old one opened (see
/// [`end_access`]), except `keep` (one's own current session). Admins and the operator
/// set anyone's; everyone their own.
pub async fn set_password(
    tx: &mut Tx,
    by: By<'_>,
    id: i64,
    password_hash: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<Ended> {
    if !by.is_self(id) {
        by.require_admin("set other users' passwords")?;
    }
    let user = users::get(tx, id).await?;
    users::set_password_hash(tx, id, password_hash, now).await?;
    let ended = end_access(tx, id, keep, now).await?;
    info!(user = %user.email, sessions = ended.sessions, tokens = ended.tokens,
        "password set; sessions and API tokens ended");
    Ok(ended)
}

/// Where invitation links point: `web.public_url`, else `http://` + `web.listen`.
pub fn portal_base(web: &WebConfig) -> String {
    match &web.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", web.listen),
    }
}

/// The mail settings and texts an invitation needs.
pub struct InviteContext<'a> {
    /// `None` without `[smtp]`: nothing is mailed and the link is returned for the
    /// admin to pass on.
    pub outbound: Option<&'a OutboundOptions>,
    pub helpdesk: &'a str,
    pub web: &'a WebConfig,
    pub now: i64,
}

/// An invitation made or renewed.
#[derive(Debug)]
pub struct Invited {
    pub id: i64,
    pub email: String,
    pub link: String,
    /// Whether a mail went to the outbox (wake the worker after commit).
    pub mailed: bool,
}

/// Invites an address as `role`: a one-time link, valid `web.invitation_hours`, by mail.
/// An earlier pending invitation of the address is revoked; an existing user's address
/// is refused.
pub async fn invite(
    tx: &mut Tx,
    ctx: &InviteContext<'_>,
    actor: &Actor,
    email: &str,
    role: Role,
) -> Result<Invited> {
    actor.require(Action::ManageUsers, "invite users")?;
    let email = clean_email(email)?;
    if users::find_by_email(tx, &email).await?.is_some() {
        return Err(invalid("email", format!("{email} already has an account")));
    }
    invitations::revoke_for_email(tx, &email, ctx.now).await?;
    let token = crate::domain::secret::random_token();
    let expires_at = ctx.now + i64::from(ctx.web.invitation_hours) * 3600;
    let id = invitations::insert(
        tx,
        &sha256_hex(token.as_bytes()),
        &email,
        role,
        Some(actor.user.id),
        ctx.now,
        expires_at,
    )
    .await?;
    let invitation = invitations::get(tx, id).await?;
    send_invitation(tx, ctx, actor, &invitation, &token).await
}

/// A new link for a pending invitation (the old one stops working), mailed again.
pub async fn resend(
    tx: &mut Tx,
    ctx: &InviteContext<'_>,
    actor: &Actor,
    id: i64,
) -> Result<Invited> {
    actor.require(Action::ManageUsers, "invite users")?;
    let token = crate::domain::secret::random_token();
    let expires_at = ctx.now + i64::from(ctx.web.invitation_hours) * 3600;
    if !invitations::renew(tx, id, &sha256_hex(token.as_bytes()), ctx.now, expires_at).await? {
        return Err(ActionError::NotFound(format!("pending invitation {id}")));
    }
    let invitation = invitations::get(tx, id).await?;
    send_invitation(tx, ctx, actor, &invitation, &token).await
}

async fn send_invitation(
    tx: &mut Tx,
    ctx: &InviteContext<'_>,
    actor: &Actor,
    invitation: &invitations::Invitation,
    token: &str,
) -> Result<Invited> {
    let link = format!("{}/portal/register?token={token}", portal_base(ctx.web));
    let mut mailed = false;
    if let Some(options) = ctx.outbound {
        let text = format!(
            "Hello,\n\n{inviter} invited you to the {helpdesk} helpdesk as {role}.\n\n\
             Choose your name and password here:\n\n{link}\n\n\
             The link works once, until {expires}. If you did not expect this mail, ignore it.\n",
            inviter = actor.user.name,
            helpdesk = ctx.helpdesk,
            role = invitation.role,
            expires = crate::domain::datetime::utc_minutes(invitation.expires_at),
        );
        let subject = format!("Your invitation to {}", ctx.helpdesk);
        mailed = crate::outbound::mail_person(
            tx,
            options,
            "invitation",
            (&invitation.email, None),
            &subject,
            text,
            None,
            ctx.now,
        )
        .await?
            > 0;
    }
    info!(invited = %invitation.email, by = %actor.user.email, mailed, "invitation sent");
    Ok(Invited {
        id: invitation.id,
        email: invitation.email.clone(),
        link,
        mailed,
    })
}

pub async fn revoke_invitation(tx: &mut Tx, actor: &Actor, id: i64, now: i64) -> Result<()> {
    actor.require(Action::ManageUsers, "revoke invitations")?;
    if !invitations::revoke(tx, id, now).await? {
        return Err(ActionError::NotFound(format!("pending invitation {id}")));
    }
    Ok(())
}

/// The invitation a link's token opens, if it can still be used. Unknown, used, revoked
/// and expired links all give `None` (the page does not say which).
pub async fn open_invitation(
    conn: &mut Conn,
    token: &str,
    now: i64,
) -> Result<Option<invitations::Invitation>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let found = invitations::find_by_hash(conn, &sha256_hex(token.as_bytes())).await?;
    Ok(found.filter(|i| i.is_open(now)))
}

/// Registers the invitee: uses the invitation (once: of two concurrent submits one
/// wins) and creates the user with the invited address and role. `None` when the link
/// cannot be used (any reason).
pub async fn register(
    tx: &mut Tx,
    token: &str,
    name: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<users::User>> {
    let name = clean_name(name)?;
    let Some(invitation) = open_invitation(tx, token, now).await? else {
        return Ok(None);
    };
    if !invitations::mark_used(tx, invitation.id, now).await?
        || users::find_by_email(tx, &invitation.email).await?.is_some()
    {
        return Ok(None);
    }
    let role = invitation.role;
    let id = insert_account(tx, &name, &invitation.email, role, password_hash, now).await?;
    info!(user = %invitation.email, "registered by invitation");
    Ok(Some(users::get(tx, id).await?))
}
