//! The `polyport` binary: parse settings, start telemetry, then serve or run an operator task.
//! Failures print one sentence on stderr (`polyport: …`) and exit with status 1.

use std::io::{BufRead, IsTerminal, Write};

use clap::Parser;
use polyport::config::{AdminCommand, Cli, Command, Settings, UsersCommand};
use polyport::domain::error::{DomainError, ErrorCode};
use polyport::domain::service::{Core, RoleChange};
use polyport::domain::user::{RegisterUser, Role};
use polyport::startup::{Application, build_core};
use polyport::telemetry;

/// mimalloc: glibc's allocator contends on its arena locks under many small request allocations.
/// Built without transparent huge pages (`no_thp`): with them, thousands of idle streams were
/// charged whole 2 MiB pages (21.5 KiB per idle connection at 10,000 subscribers, 16.8 without).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = cli.settings;
    let telemetry = match cli.command {
        None | Some(Command::Serve) => {
            telemetry::init(settings.log_format(), &settings.log, settings.otlp_endpoint.as_deref())
        }
        Some(_) => telemetry::init_stderr(settings.log_format(), &settings.log),
    };
    match run(cli.command, settings, telemetry).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins the causes into one line; never the Debug form with its backtrace.
            eprintln!("polyport: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Option<Command>, settings: Settings, telemetry: telemetry::Telemetry) -> anyhow::Result<()> {
    match command {
        None | Some(Command::Serve) => {
            let app = Application::build(settings).await?;
            bootstrap_admin(app.core()).await?;
            let served = app.run_until_stopped().await;
            // Spans still buffered are exported before the process ends.
            telemetry.shutdown().await;
            served
        }
        Some(Command::Admin(AdminCommand::Create { email, password, name })) => {
            operator(&settings, |core| async move {
                let user =
                    core.users.create(RegisterUser { email, name, password }, Role::Admin, &cli_client()).await?;
                Ok(format!("admin created: {} <{}>", user.id, user.email))
            })
            .await
        }
        Some(Command::Users(command)) => {
            existing_store(&settings)?;
            users(command, &settings).await
        }
    }
}

/// `users …` changes what a running server's store holds: pointed at a SQLite file that is not
/// there (a typo, the wrong directory), it fails instead of creating an empty database.
fn existing_store(settings: &Settings) -> anyhow::Result<()> {
    match polyport::storage::sqlite_file(&settings.database_url) {
        Some(file) if !file.exists() => anyhow::bail!(
            "no database at {}: name the server's store with --database-url or DATABASE_URL",
            file.display()
        ),
        _ => Ok(()),
    }
}

async fn users(command: UsersCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        UsersCommand::Promote { user, role } => change_role(settings, user, role.into(), RoleChange::Promote).await,
        UsersCommand::Demote { user, role } => change_role(settings, user, role.into(), RoleChange::Demote).await,
        UsersCommand::ResetPassword { user } => {
            let password = read_new_password()?;
            operator(settings, |core| async move {
                let done = core.users.reset_password(&user, &password, &cli_client()).await?;
                Ok(format!("password reset for {} <{}>; every session of theirs is signed out", done.id, done.email))
            })
            .await
        }
    }
}

async fn change_role(settings: &Settings, user: String, role: Role, change: RoleChange) -> anyhow::Result<()> {
    operator(settings, |core| async move {
        let (before, user) = core.users.change_role(&user, role, change, &cli_client()).await?;
        Ok(format!("{} <{}>: {} -> {}", user.id, user.email, before.as_str(), user.role.as_str()))
    })
    .await
}

/// Opens the store, runs one operator task against the core, prints its line, closes the store.
/// A domain error becomes one human sentence.
async fn operator<F, Fut>(settings: &Settings, task: F) -> anyhow::Result<()>
where
    F: FnOnce(Core) -> Fut,
    Fut: std::future::Future<Output = Result<String, DomainError>>,
{
    let (store, core, ..) = build_core(settings, None).await?;
    let outcome = task(core).await;
    store.close().await;
    let line = outcome.map_err(|e| anyhow::anyhow!(sentence(&e)))?;
    println!("{line}");
    Ok(())
}

/// A domain error as an operator reads it: the message, and what was wrong with which field.
fn sentence(e: &DomainError) -> String {
    if e.code == ErrorCode::Internal || e.code == ErrorCode::Unavailable {
        return match &e.source {
            Some(source) => format!("{}: {source:#}", e.message),
            None => e.message.clone(),
        };
    }
    let issues: Vec<String> = e
        .details
        .iter()
        .filter(|d| !(d.field == "user" && d.issue == "not_found") && d.field != "role")
        .map(|d| format!("{} is {}", d.field, d.issue.replace('_', " ")))
        .collect();
    match issues.is_empty() {
        true => e.message.clone(),
        false => format!("{} ({})", e.message, issues.join(", ")),
    }
}

/// The new password: typed at a prompt without echo on a terminal, else the first line of
/// standard input (`printf '%s\n' "$PW" | polyport users reset-password ada@example.com`).
fn read_new_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        let first = prompt_hidden("New password: ")?;
        let again = prompt_hidden("Repeat it: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line
    };
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "no password was given on standard input");
    Ok(password)
}

/// Reads one line from the terminal with echo turned off (restored afterwards).
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::os::fd::AsRawFd;
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    let fd = std::io::stdin().as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd (checked by is_terminal).
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if got {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: sets attributes of the same fd from a copy of its own settings.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if got {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read?;
    Ok(line)
}

/// `POLYPORT_BOOTSTRAP_ADMIN_EMAIL` / `_PASSWORD` create the first admin when that email is free.
async fn bootstrap_admin(core: &Core) -> anyhow::Result<()> {
    let (Ok(email), Ok(password)) =
        (std::env::var("POLYPORT_BOOTSTRAP_ADMIN_EMAIL"), std::env::var("POLYPORT_BOOTSTRAP_ADMIN_PASSWORD"))
    else {
        return Ok(());
    };
    let input = RegisterUser { email: email.clone(), name: "Administrator".into(), password };
    match core.users.create(input, Role::Admin, &cli_client()).await {
        Ok(user) => tracing::info!(user_id = %user.id, "bootstrap admin created"),
        Err(e) if e.code == ErrorCode::Conflict => tracing::info!("bootstrap admin already exists"),
        Err(e) => anyhow::bail!("creating the bootstrap admin: {}", sentence(&e)),
    }
    Ok(())
}

/// The origin the audit log records for what the command line and the bootstrap do.
fn cli_client() -> polyport::domain::service::ClientInfo {
    polyport::domain::service::ClientInfo { protocol: "cli".into(), ..Default::default() }
}
