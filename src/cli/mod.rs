//! The command line: parse arguments, load configuration, run one command, map the result
//! to an exit code (sysexits, so MTAs and service managers understand it).

pub mod progress;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::config::{Config, ConfigError, LogFormat, Sources};
use crate::domain::datetime;
use crate::domain::Role;
use crate::helpdesk::ticket_views;
use crate::inbound::ingest::{Counts, Ingestor, Origin, Outcome};
use crate::store::{self, Store, StoreError};

/// EX_TEMPFAIL: the MTA keeps the message and retries later.
pub const EXIT_TEMPFAIL: u8 = 75;
/// EX_CONFIG.
pub const EXIT_CONFIG: u8 = 78;
/// EX_USAGE.
pub const EXIT_USAGE: u8 = 64;
/// A piped message over `ingest.max_message_bytes`: the MTA returns it to its sender.
pub const EXIT_DATAERR: u8 = 65;
/// EX_CANTCREAT: the database file cannot be created where the configuration says.
pub const EXIT_CANTCREAT: u8 = 73;

#[derive(Parser, Debug)]
#[command(
    name = "maildesk",
    version,
    about = "E-mail helpdesk: mail in, tickets out."
)]
pub struct Cli {
    /// Configuration file [default: ./config.toml, else /etc/maildesk/config.toml]
    #[arg(long, short, global = true, env = "MAILDESK_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (overrides database.url)
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Override any configuration key, e.g. --set web.listen=127.0.0.1:9000
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon (database migrations, then workers and the web server)
    Serve,
    /// Apply database migrations and exit (or move a SQLite installation to PostgreSQL)
    Migrate {
        #[command(subcommand)]
        from: Option<MigrateCommand>,
    },
    /// Validate the configuration and open the database
    Check,
    /// Store messages from files, standard input or an mbox (exit 75: retry later)
    Ingest(IngestArgs),
    /// Fetch waiting mail from the IMAP mailboxes and exit
    Fetch {
        /// Fetch once and exit (the daemon, `serve`, keeps watching)
        #[arg(long, required = true)]
        once: bool,
        /// Only this mailbox
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// Hand the outbox to the SMTP server and exit
    Send {
        /// Send what is due once (the daemon, `serve`, keeps sending)
        #[arg(long, required = true)]
        once: bool,
    },
    /// Tickets
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Messages that could not be stored as ticket messages
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Staff users
    #[command(subcommand)]
    User(UserCommand),
    /// OAuth2 machine clients (register them in the portal or the API)
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Copy the SQLite database to a new file while the daemon runs, and check the copy
    Backup {
        /// The new file (it must not exist)
        path: PathBuf,
    },
    /// Purge the originals (.eml) of tickets closed longer than retention.raw_days
    Purge {
        /// Only show what would go (counts and bytes); change nothing
        #[arg(long)]
        dry_run: bool,
        /// List each ticket whose originals go
        #[arg(long, short)]
        verbose: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum MigrateCommand {
    /// Copy everything from a SQLite database into the configured PostgreSQL database,
    /// which must be new (stop `serve` first)
    FromSqlite {
        /// The SQLite database: sqlite://PATH or PATH
        #[arg(value_name = "SQLITE_URL")]
        source: String,
        /// Print the counts as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Mailbox the messages arrived in (sets the category of new tickets)
    #[arg(long)]
    mailbox: Option<String>,
    /// Read messages from an mbox file
    #[arg(long, value_name = "FILE", conflicts_with = "files")]
    mbox: Option<PathBuf>,
    /// Print the counts as JSON
    #[arg(long)]
    json: bool,
    /// Message files; `-` or nothing reads one message from standard input
    files: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum TicketCommand {
    /// List all tickets
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its messages
    Show {
        /// Ticket reference (42 or #42)
        reference: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// List open quarantine entries
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Include resolved entries
        #[arg(long)]
        all: bool,
    },
    /// Ingest a quarantined message again
    Retry {
        /// The entry's number (from `quarantine list`)
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
enum OauthCommand {
    /// Sign new access tokens with a new key; tokens signed with the old keys keep
    /// working until they expire (15 minutes), so nothing stops
    RotateKey,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a staff user
    Add {
        /// The user's e-mail address (also their sign-in name)
        email: String,
        /// Full name, shown in the portal and in replies
        #[arg(long)]
        name: String,
        /// admin (also quarantine and users) or staff
        #[arg(long, value_parser = parse_role, value_name = "admin|staff")]
        role: Role,
        /// Read the password from this file (first line); prompt otherwise
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List staff users
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they cannot sign in, and their portal sessions end at once
    Disable {
        /// The user's e-mail address
        email: String,
    },
    /// Enable a disabled user again
    Enable {
        /// The user's e-mail address
        email: String,
    },
    /// Set a new password (ends the user's portal sessions)
    Passwd {
        /// The user's e-mail address
        email: String,
        /// Read the password from this file (first line); prompt otherwise
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|e: crate::domain::UnknownValue| e.to_string())
}

/// A command's failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Held by another process (a second `serve` on one SQLite file): try again once it
    /// has stopped, so EX_TEMPFAIL, which lets systemd's `Restart=on-failure` retry.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Other(String),
}

/// A refused value is a usage error ("name: enter a name", 64); a refusal because of
/// what is stored ("… already exists", "the last active admin") exits 1.
impl From<crate::helpdesk::actions::ActionError> for CliError {
    fn from(e: crate::helpdesk::actions::ActionError) -> Self {
        use crate::helpdesk::actions::ActionError;
        match e {
            ActionError::Store(e) => CliError::Store(e),
            ActionError::Conflict { message, .. } => CliError::Other(message),
            other => CliError::Usage(other.to_string()),
        }
    }
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) => EXIT_CONFIG,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Busy(_) => EXIT_TEMPFAIL,
            CliError::Store(StoreError::Connect {
                failure: store::ConnectFailure::CannotCreate,
                ..
            }) => EXIT_CANTCREAT,
            CliError::Store(StoreError::Connect {
                failure: store::ConnectFailure::NoDatabase,
                ..
            }) => EXIT_CONFIG,
            CliError::Store(e) if e.is_temporary() => EXIT_TEMPFAIL,
            _ => 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A wrong command line is EX_USAGE (64), not clap's own 2.
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS // --help, --version
            };
        }
    };
    let is_serve = matches!(cli.command, Command::Serve);
    // The log's format is configuration, so the configuration comes first; its own
    // errors are said plainly below (there is no log yet, and they are for a person).
    let config = load_config(&cli);
    let format = config.as_ref().map_or(LogFormat::Text, |c| c.log.format);
    init_tracing(if is_serve { "info" } else { "warn" }, format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("maildesk: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let is_ingest = matches!(cli.command, Command::Ingest(_));
    match runtime.block_on(async { run(cli, config?).await }) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::error!(error = %e, "command failed");
            } else {
                eprintln!("maildesk: {e}");
            }
            // Whatever kept a piped message from being stored, the MTA must keep it.
            ExitCode::from(if is_ingest {
                EXIT_TEMPFAIL
            } else {
                e.exit_code()
            })
        }
    }
}

/// Set once the log writes JSON: the command's own messages then go through it too, so
/// every line on standard error is one JSON object.
static JSON_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn init_tracing(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILDESK_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},sqlx=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(colour_wanted()).try_init(),
    };
    if installed.is_ok() && format == LogFormat::Json {
        JSON_LOG.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Colour only for a person at a terminal (not a pipe, a file or the journal), and not
/// when `NO_COLOR` asks for none.
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A message of the command to its user: `maildesk: …` on standard error, or a log
/// event when the log is JSON.
fn say(message: &str) {
    if JSON_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!("{message}");
    } else {
        eprintln!("maildesk: {message}");
    }
}

fn load_config(cli: &Cli) -> Result<Config, CliError> {
    let mut overrides = Vec::new();
    for item in &cli.set {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            CliError::Usage(format!("--set {item:?}: expected SECTION.KEY=VALUE"))
        })?;
        overrides.push((key.trim().to_string(), value.to_string()));
    }
    if let Some(url) = &cli.database_url {
        overrides.push(("database.url".into(), format!("{url:?}")));
    }
    // Never silently the built-in defaults: a command run from another directory would
    // create and use a database of its own there.
    let file = match &cli.config {
        Some(path) => path.clone(),
        None => crate::config::find_file(crate::config::DEFAULT_FILES)?,
    };
    let sources = Sources {
        file: Some(file),
        file_required: true,
        env: std::env::vars().collect(),
        overrides,
    };
    Ok(Config::load(&sources)?)
}

async fn open_store(config: &Config) -> Result<Store, CliError> {
    let store = Store::connect(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(cli: Cli, mut config: Config) -> Result<u8, CliError> {
    if matches!(
        cli.command,
        Command::Serve | Command::Fetch { .. } | Command::Send { .. }
    ) {
        config.load_connection_secrets()?;
    }
    match cli.command {
        Command::Serve => {
            // Database errors keep their exit codes: systemd's RestartPreventExitStatus=
            // must see a configuration error (78) as one, not as a generic failure.
            app::serve(config).await.map_err(|e| match e {
                app::ServeError::AlreadyRunning(
                    e @ store::serve_lock::ServeLockError::Held { .. },
                ) => CliError::Busy(e.to_string()),
                app::ServeError::Store(e) => CliError::Store(e),
                other => CliError::Other(other.to_string()),
            })?;
            Ok(0)
        }
        Command::Migrate {
            from: Some(MigrateCommand::FromSqlite { source, json }),
        } => migrate_from_sqlite(&config, &source, json).await,
        Command::Migrate { from: None } => {
            open_store(&config).await?;
            println!("database is up to date");
            Ok(0)
        }
        Command::Check => check(&config).await,
        Command::Ingest(args) => ingest(&config, args).await,
        Command::Fetch { mailbox, .. } => fetch_once(&config, mailbox.as_deref()).await,
        Command::Send { .. } => send_once(&config).await,
        Command::Ticket(command) => ticket(&config, command).await,
        Command::Quarantine(command) => quarantine(&config, command).await,
        Command::User(command) => user(&config, command).await,
        Command::Oauth(OauthCommand::RotateKey) => {
            let store = open_store(&config).await?;
            let kid = crate::integrations::oauth::rotate(&store, store::unix_now()).await?;
            println!("new signing key {kid}: new access tokens carry it; the old keys verify for 15 more minutes");
            Ok(0)
        }
        Command::Backup { path } => backup(&config, &path).await,
        Command::Purge {
            dry_run,
            verbose,
            json,
        } => purge(&config, dry_run, verbose, json).await,
    }
}

async fn check(config: &Config) -> Result<u8, CliError> {
    let file = config
        .source_file
        .as_ref()
        .map_or_else(|| "(none)".to_string(), |p| p.display().to_string());
    println!("configuration file: {file}");
    println!("database url: {}", safe(&config.database_display()));
    println!(
        "configuration: ok ({:?} database, {} support address(es), {} mailbox(es))",
        config.backend(),
        config.helpdesk.support_addresses.len(),
        config.mailboxes.len()
    );
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    // The IMAP and SMTP passwords may be credentials only the service can read.
    let mut code = 0;
    if let Err(e) = config.clone().load_connection_secrets() {
        code = 1;
        println!("secrets: {e} (run as the service's user; systemd credentials are readable only by the service)");
    }
    let store = open_store(config).await?;
    store.ping().await?;
    let mut conn = store.acquire().await?;
    let tickets = store::tickets::count(&mut conn).await?;
    let open_quarantine = store::quarantine::count_open(&mut conn).await?;
    println!("database: ok ({tickets} tickets, {open_quarantine} open quarantine entries)");
    if config.smtp.is_some() {
        let queued = store::outbox::count_by_status(&mut conn, "queued").await?;
        let failed = store::outbox::count_by_status(&mut conn, "failed").await?;
        println!("outbox: {queued} waiting, {failed} failed (see `maildesk ticket show` for each)");
    }
    let webhooks = store::webhooks::list(&mut conn).await?;
    if !webhooks.is_empty() {
        let active = webhooks.iter().filter(|w| w.active != 0).count();
        let waiting = store::webhooks::count_in_state(&mut conn, "pending").await?;
        let failed = store::webhooks::count_in_state(&mut conn, "failed").await?;
        println!("webhooks: {active} active, {waiting} deliveries waiting, {failed} failed (see /portal/admin/webhooks)");
    }
    let states = store::imap::states(&mut conn).await?;
    for mailbox in config.mailboxes.iter().filter(|m| m.is_imap()) {
        let state = states.iter().find(|s| s.mailbox == mailbox.name);
        let success = state
            .and_then(|s| s.last_success_at)
            .map(datetime::utc_minutes)
            .unwrap_or_else(|| "never".into());
        match state.and_then(|s| s.last_error.as_ref().map(|e| (e, s.last_error_at))) {
            Some((error, at)) => {
                code = 1;
                println!(
                    "mailbox {}: ERROR at {}: {error} (last success: {success})",
                    mailbox.name,
                    at.map(datetime::utc_minutes).unwrap_or_default()
                );
            }
            None => println!("mailbox {}: ok (last success: {success})", mailbox.name),
        }
    }
    Ok(code)
}

async fn fetch_once(config: &Config, only: Option<&str>) -> Result<u8, CliError> {
    let mailboxes: Vec<_> = config
        .mailboxes
        .iter()
        .filter(|m| m.is_imap() && only.is_none_or(|name| m.name == name))
        .collect();
    if mailboxes.is_empty() {
        return Err(CliError::Usage(match only {
            Some(name) => format!("--mailbox {name:?}: no IMAP [[mailbox]] with that name"),
            None => "no IMAP mailbox is configured ([[mailbox]] with a host)".into(),
        }));
    }
    let store = open_store(config).await?;
    let ingestor = Ingestor::open(config, store).await?;
    let token = tokio_util::sync::CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            say("stopping after the current batch");
            on_signal.cancel();
        }
    });
    let mut code = 0;
    for mailbox in mailboxes {
        let worker =
            crate::inbound::imap_worker::MailboxWorker::new(mailbox.clone(), ingestor.clone());
        let progress =
            crate::cli::progress::progress_bar(0, "messages", std::io::stderr().is_terminal());
        match worker.run_once(&token, &progress).await {
            Ok(counts) => println!("{}: {counts}", worker.name()),
            Err(crate::inbound::imap_worker::FetchError::Busy) => println!(
                "{}: skipped, another maildesk instance is watching it",
                worker.name()
            ),
            Err(e) => {
                say(&format!("mailbox {}: {e}", worker.name()));
                code = EXIT_TEMPFAIL;
            }
        }
        progress.finish_and_clear();
    }
    Ok(code)
}

async fn send_once(config: &Config) -> Result<u8, CliError> {
    let smtp = config
        .smtp
        .as_ref()
        .ok_or_else(|| CliError::Usage("no [smtp] section: outgoing mail is off".into()))?;
    let store = open_store(config).await?;
    let worker = crate::outbound::OutboxWorker::new(store, smtp, &config.outbound)
        .map_err(|e| CliError::Other(e.to_string()))?;
    let report = worker
        .run_once()
        .await
        .map_err(|e| CliError::Other(e.to_string()))?;
    println!(
        "sent: {}, retrying later: {}, failed: {}",
        report.sent, report.retried, report.failed
    );
    Ok(if report.retried > 0 { EXIT_TEMPFAIL } else { 0 })
}

async fn ingest(config: &Config, args: IngestArgs) -> Result<u8, CliError> {
    if let Some(name) = &args.mailbox {
        if config.mailbox(name).is_none() {
            return Err(CliError::Usage(format!(
                "--mailbox {name:?}: no [[mailbox]] with that name in the configuration"
            )));
        }
    }
    if let Some(refusal) = refuse_input(&args) {
        say(&refusal.1);
        return Ok(refusal.0);
    }
    let store = open_store(config).await?;
    let ingestor = Ingestor::open(config, store).await?;
    let counts = match &args.mbox {
        Some(path) => match crate::inbound::ingest::mbox::ingest_mbox(
            &ingestor,
            path,
            args.mailbox.as_deref(),
            std::io::stderr().is_terminal(),
        )
        .await
        {
            Ok(counts) => counts,
            Err(e) => {
                say(&e.to_string());
                return Ok(EXIT_TEMPFAIL);
            }
        },
        None => ingest_files(&ingestor, &args).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&counts).unwrap_or_default());
    } else {
        println!("{counts}");
    }
    Ok(if counts.failed > 0 {
        EXIT_TEMPFAIL
    } else if counts.refused > 0 {
        EXIT_DATAERR
    } else {
        0
    })
}

/// Input that can never be stored, caught before anything is opened: a missing file is
/// a usage error (64; retrying would not help), an mbox that is not one (or is gzipped)
/// is refused (65) rather than "imported" as nothing.
fn refuse_input(args: &IngestArgs) -> Option<(u8, String)> {
    if let Some(path) = &args.mbox {
        let mut head = [0u8; 5];
        let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head));
        return match read {
            Err(e) => Some((EXIT_USAGE, format!("--mbox {}: {e}", path.display()))),
            Ok(_) if head.starts_with(&[0x1f, 0x8b]) => Some((
                EXIT_DATAERR,
                format!("--mbox {}: the file is gzipped; gunzip it first", path.display()),
            )),
            Ok(0) => None,
            Ok(_) if &head != b"From " => Some((
                EXIT_DATAERR,
                format!(
                    "--mbox {}: not an mbox (it must begin with a \"From \" line); for single messages use `maildesk ingest FILE`",
                    path.display()
                ),
            )),
            Ok(_) => None,
        };
    }
    let missing = args
        .files
        .iter()
        .filter(|f| *f != "-")
        .find(|f| !std::path::Path::new(f).is_file())?;
    Some((
        EXIT_USAGE,
        format!("{missing}: no such file (nothing was stored)"),
    ))
}

async fn ingest_files(ingestor: &Ingestor, args: &IngestArgs) -> Result<Counts, CliError> {
    let files: Vec<String> = if args.files.is_empty() {
        vec!["-".into()]
    } else {
        args.files.clone()
    };
    let progress = crate::cli::progress::progress_bar(
        files.len() as u64,
        "messages",
        files.len() > 1 && std::io::stderr().is_terminal(),
    );
    let mut counts = Counts::default();
    for file in &files {
        if file == "-" && std::io::stdin().is_terminal() {
            eprintln!("maildesk: reading one message from standard input (end it with Ctrl-D)…");
        }
        let (raw, source) = if file == "-" {
            // Read no more than the limit allows: a huge message on standard input must
            // not exhaust memory. The MTA gets a clear refusal and bounces it.
            let limit = ingestor.options().max_message_bytes;
            let mut raw = Vec::new();
            std::io::stdin()
                .lock()
                .take(limit.saturating_add(1))
                .read_to_end(&mut raw)?;
            if raw.len() as u64 > limit {
                say(&format!("the message on standard input is over the limit of {limit} bytes (ingest.max_message_bytes): refused, nothing stored"));
                counts.refused += 1;
                continue;
            }
            (raw, "stdin".to_string())
        } else {
            match std::fs::read(file) {
                Ok(raw) => (raw, format!("file:{file}")),
                Err(e) => {
                    say(&format!("{file}: {e}"));
                    counts.failed += 1;
                    continue;
                }
            }
        };
        let origin = Origin::new(source, args.mailbox.clone());
        let outcome = ingestor.ingest(&raw, &origin).await;
        // A quarantine is logged where it happens, once, with its ids.
        if let Err(e) = &outcome {
            say(&format!("{file}: {e}"));
        }
        counts.record(&outcome);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(counts)
}

async fn ticket(config: &Config, command: TicketCommand) -> Result<u8, CliError> {
    let store = open_store(config).await?;
    match command {
        TicketCommand::List { json } => {
            let list = ticket_views::list(&store).await?;
            if json {
                println!("{}", to_json(&list));
            } else {
                println!(
                    "{:>6}  {:<11}  {:<8}  {:<16}  {:<30}  SUBJECT",
                    "REF", "STATUS", "PRIORITY", "UPDATED", "REQUESTER"
                );
                for t in &list {
                    let t = &t.ticket;
                    println!(
                        "{:>6}  {:<11}  {:<8}  {:<16}  {:<30}  {}",
                        format!("#{}", t.id),
                        t.status,
                        t.priority,
                        datetime::utc_minutes(t.updated_at),
                        safe(&column(&t.requester_email, 30)),
                        safe(&t.subject)
                    );
                }
            }
        }
        TicketCommand::Show { reference, json } => {
            let id = ticket_views::parse_ref(&reference).ok_or_else(|| {
                CliError::Usage(format!("{reference:?} is not a ticket reference"))
            })?;
            let detail = ticket_views::load(&store, id).await?;
            if json {
                println!("{}", to_json(&detail));
            } else {
                print_ticket(&detail);
            }
        }
    }
    Ok(0)
}

fn print_ticket(detail: &ticket_views::TicketDetail) {
    let (reference, t, messages) = (&detail.reference, &detail.ticket, &detail.messages);
    println!("#{reference} {}", safe(&t.subject));
    println!(
        "status: {}  priority: {}  category: {}  requester: {}",
        t.status,
        t.priority,
        t.category,
        safe(&t.requester_email)
    );
    if let Some(linked) = t.linked_ticket_id {
        println!("follows up on: #{linked}");
    }
    for m in messages {
        let unverified = if m.unverified {
            ", UNVERIFIED staff address"
        } else {
            ""
        };
        println!(
            "\n--- message {} ({} {}{unverified}) from {} at {}",
            m.id,
            m.direction,
            m.kind,
            safe(&m.from),
            datetime::utc_minutes(m.date.unwrap_or(m.created_at))
        );
        println!("subject: {}", safe(&m.subject));
        if let Some(at) = m.raw_purged_at {
            println!("original: purged {} (retention)", datetime::utc_minutes(at));
        }
        for a in &m.attachments {
            println!(
                "attachment: {} ({}, {} bytes)",
                safe(&a.filename),
                safe(&a.content_type),
                a.size
            );
        }
        println!("\n{}", safe(m.text.trim_end()));
    }
    if !detail.outbox.is_empty() {
        println!("\n--- outgoing mail");
        for o in &detail.outbox {
            let when = o.sent_at.map(datetime::utc_minutes).unwrap_or_default();
            let state = match (o.status.as_str(), o.attempts) {
                ("queued", n) if n > 0 => format!("retrying (attempt {n})"),
                (status, _) => status.to_string(),
            };
            let error = o
                .last_error
                .as_deref()
                .map(|e| format!(": {}", safe(e)))
                .unwrap_or_default();
            println!(
                "{:<12}  {:<32}  {:<18}  {when}{error}",
                o.kind,
                safe(&o.recipient),
                state
            );
        }
    }
}

/// A value cut to a table column's width (with `…`), so a long one cannot shift the rest.
fn column(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width - 1).collect();
    format!("{kept}…")
}

/// What mail put into a field, made harmless for a terminal (no escape sequences).
fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    crate::domain::text::terminal_safe(text)
}

async fn quarantine(config: &Config, command: QuarantineCommand) -> Result<u8, CliError> {
    let store = open_store(config).await?;
    match command {
        QuarantineCommand::List { json, all } => {
            let mut conn = store.acquire().await?;
            let entries = store::quarantine::list(&mut conn, all).await?;
            if json {
                println!("{}", to_json(&entries));
            } else {
                println!(
                    "{:>5}  {:<16}  {:>9}  {:<24}  {:<10}  REASON",
                    "ID", "RECEIVED", "BYTES", "SOURCE", "STATE"
                );
                for e in &entries {
                    let state = if e.resolved_at.is_some() {
                        "resolved"
                    } else {
                        "open"
                    };
                    let reason = match &e.resolution {
                        Some(resolution) => format!("{} [{}]", e.reason, resolution),
                        None => e.reason.clone(),
                    };
                    println!(
                        "{:>5}  {:<16}  {:>9}  {:<24}  {:<10}  {}",
                        e.id,
                        datetime::utc_minutes(e.created_at),
                        e.size,
                        safe(&column(&e.source, 24)),
                        state,
                        safe(&reason)
                    );
                }
            }
            Ok(0)
        }
        QuarantineCommand::Retry { id } => {
            let ingestor = Ingestor::open(config, store).await?;
            match ingestor
                .retry_quarantined(id)
                .await
                .map_err(|e| CliError::Store(e.0))?
            {
                Outcome::Quarantined { reason, .. } => {
                    println!("entry {id} is still quarantined: {reason}");
                    Ok(1)
                }
                Outcome::Created { ticket_id, .. } => {
                    println!("entry {id} stored: new ticket #{ticket_id}");
                    Ok(0)
                }
                Outcome::Threaded { ticket_id, .. } | Outcome::Duplicate { ticket_id, .. } => {
                    println!("entry {id} stored on ticket #{ticket_id}");
                    Ok(0)
                }
            }
        }
    }
}

async fn user(config: &Config, command: UserCommand) -> Result<u8, CliError> {
    use crate::helpdesk::users::By;
    let store = open_store(config).await?;
    let mut conn = store.acquire().await?;
    match command {
        UserCommand::Add {
            email,
            name,
            role,
            password_file,
        } => {
            let email = crate::helpdesk::users::clean_email(&email)?;
            let name = crate::helpdesk::users::clean_name(&name)?;
            let password = read_password(password_file.as_deref())?;
            let password_hash = crate::helpdesk::users::hash_password(&password, None).await?;
            let account = crate::helpdesk::users::NewAccount {
                name: &name,
                email: &email,
                role,
                password_hash: &password_hash,
            };
            let mut tx = store.begin().await?;
            let id =
                crate::helpdesk::users::create(&mut tx, By::Operator, &account, store::unix_now())
                    .await?;
            tx.commit().await.map_err(store::StoreError::from)?;
            println!("user {id} added: {email} ({role})");
        }
        UserCommand::List { json } => {
            let users = store::users::list(&mut conn).await?;
            if json {
                println!("{}", to_json(&users));
            } else {
                for u in &users {
                    println!(
                        "{:>4}  {:<32}  {:<6}  {:<8}  {}",
                        u.id,
                        u.email,
                        u.role,
                        if u.active != 0 { "active" } else { "disabled" },
                        safe(&u.name)
                    );
                }
            }
        }
        UserCommand::Disable { email } => {
            let user = find_user(&mut conn, &email).await?;
            let mut tx = store.begin().await?;
            let (_, ended) = crate::helpdesk::users::set_active(
                &mut tx,
                By::Operator,
                user.id,
                false,
                store::unix_now(),
            )
            .await?;
            tx.commit().await.map_err(store::StoreError::from)?;
            println!(
                "user {} disabled: {}; {}; OAuth clients acting as them stop",
                user.id,
                user.email,
                ended.counts()
            );
        }
        UserCommand::Enable { email } => {
            let user = find_user(&mut conn, &email).await?;
            let mut tx = store.begin().await?;
            crate::helpdesk::users::set_active(
                &mut tx,
                By::Operator,
                user.id,
                true,
                store::unix_now(),
            )
            .await?;
            tx.commit().await.map_err(store::StoreError::from)?;
            println!("user {} enabled: {}", user.id, user.email);
        }
        UserCommand::Passwd {
            email,
            password_file,
        } => {
            let user = find_user(&mut conn, &email).await?;
            let password = read_password(password_file.as_deref())?;
            let password_hash = crate::helpdesk::users::hash_password(&password, None).await?;
            let mut tx = store.begin().await?;
            let ended = crate::helpdesk::users::set_password(
                &mut tx,
                By::Operator,
                user.id,
                &password_hash,
                None,
                store::unix_now(),
            )
            .await?;
            tx.commit().await.map_err(store::StoreError::from)?;
            println!(
                "password of {} changed; {}; OAuth clients acting as them must get a new access token",
                user.email,
                ended.counts()
            );
        }
    }
    Ok(0)
}

async fn backup(config: &Config, path: &std::path::Path) -> Result<u8, CliError> {
    let store = open_store(config).await?;
    let report = store::backup::sqlite_copy(&store, path)
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(message) => CliError::Usage(message),
            other => other.into(),
        })?;
    println!(
        "backup written to {}: {} tickets, {} messages, {} bytes; integrity check ok",
        path.display(),
        report.tickets,
        report.messages,
        report.bytes
    );
    Ok(0)
}

async fn migrate_from_sqlite(config: &Config, source: &str, json: bool) -> Result<u8, CliError> {
    use store::transfer::{self, TransferError};
    if config.backend() != store::Backend::Postgres {
        return Err(CliError::Usage("`migrate from-sqlite` copies into the configured database, which must be PostgreSQL: run it with the PostgreSQL configuration (or --database-url postgres://…)".into()));
    }
    let path = crate::config::sqlite_file(source).unwrap_or_else(|| PathBuf::from(source));
    if !path.is_file() {
        return Err(CliError::Usage(format!(
            "no SQLite database at {}",
            path.display()
        )));
    }
    // Nothing may be fetched or sent from the old database while it is copied, nor after.
    let _serve_lock = store::serve_lock::acquire(&path).map_err(|e| match e {
        store::serve_lock::ServeLockError::Held { .. } => CliError::Busy(format!(
            "`maildesk serve` is running on {}: stop it (and mail delivery into it) before moving its database",
            path.display()
        )),
        other => CliError::Other(other.to_string()),
    })?;
    let source_store = Store::connect(&format!("sqlite://{}?mode=rw", path.display()), 2).await?;
    source_store.migrate().await?;
    let target = open_store(config).await?;
    let report = transfer::sqlite_to_postgres(&source_store, &target)
        .await
        .map_err(|e| match e {
            TransferError::Store(e) => CliError::Store(e),
            TransferError::TargetNotPostgres => CliError::Usage(e.to_string()),
            other => CliError::Other(other.to_string()),
        })?;
    if json {
        println!("{}", to_json(&report));
        return Ok(0);
    }
    println!("copied from {} (row counts checked):", path.display());
    for (table, rows) in &report.tables {
        println!("  {table:<20} {rows:>9}");
    }
    for (table, why) in &report.skipped {
        println!("  not copied: {table}: {why}");
    }
    println!("point database.url at PostgreSQL for good, then start `maildesk serve`");
    Ok(0)
}

async fn purge(config: &Config, dry_run: bool, verbose: bool, json: bool) -> Result<u8, CliError> {
    let days = config.retention.raw_days.ok_or_else(|| {
        CliError::Usage(
            "retention.raw_days is not set: originals are kept forever (set it in the configuration, or pass --set retention.raw_days=N)".into(),
        )
    })?;
    let store = open_store(config).await?;
    let cutoff = crate::runtime::retention::cutoff(days, store::unix_now());
    // The plan is a read over every closed ticket: only when it is asked for.
    let (tickets, planned) = if dry_run || verbose {
        crate::runtime::retention::plan(&store, cutoff).await?
    } else {
        Default::default()
    };
    let report = if dry_run {
        planned
    } else {
        let token = tokio_util::sync::CancellationToken::new();
        let on_signal = token.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("maildesk: stopping after the current batch");
                on_signal.cancel();
            }
        });
        crate::runtime::retention::purge(&store, cutoff, &token).await?
    };
    if json {
        let value = serde_json::json!({
            "dry_run": dry_run,
            "raw_days": days,
            "report": report,
            "tickets": if verbose { serde_json::to_value(&tickets).unwrap_or_default() } else { serde_json::Value::Null },
        });
        println!("{}", to_json(&value));
        return Ok(0);
    }
    if verbose {
        println!(
            "{:>8}  {:<16}  {:>8}  {:>12}",
            "TICKET", "CLOSED", "MESSAGES", "BYTES"
        );
        for t in &tickets {
            println!(
                "{:>8}  {:<16}  {:>8}  {:>12}",
                format!("#{}", t.ticket_id),
                t.closed_at.map(datetime::utc_minutes).unwrap_or_default(),
                t.messages,
                t.bytes
            );
        }
    }
    let verb = if dry_run { "would purge" } else { "purged" };
    println!("{verb} (tickets closed more than {days} days ago): {report}");
    Ok(0)
}

async fn find_user(conn: &mut store::Conn, email: &str) -> Result<store::users::User, CliError> {
    let email = crate::domain::address::normalize(email);
    store::users::find_by_email(conn, &email)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no user {email}")))
}

fn read_password(file: Option<&std::path::Path>) -> Result<String, CliError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("--password-file {}: {e}", path.display())))?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no terminal to ask for a password: use --password-file".into(),
        ));
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        return Err(CliError::Usage("the passwords do not match".into()));
    }
    Ok(first)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, option and argument says what it is in `--help`.
    #[test]
    fn every_option_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<Cli as clap::CommandFactory>::command(),
            "maildesk",
            &mut missing,
        );
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }
}
