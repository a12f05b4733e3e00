//! The `polyport` binary: parse settings, start telemetry, then serve or run an admin task.

use clap::Parser;
use polyport::config::{AdminCommand, Cli, Command};
use polyport::domain::user::{RegisterUser, Role};
use polyport::startup::{Application, build_core};
use polyport::telemetry;

/// mimalloc: glibc's allocator contends on its arena locks under many small request allocations.
/// Built without transparent huge pages (`no_thp`): with them, thousands of idle streams were
/// charged whole 2 MiB pages (21.5 KiB per idle connection at 10,000 subscribers, 16.8 without).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = cli.settings;
    let telemetry = telemetry::init(settings.log_format(), &settings.log, settings.otlp_endpoint.as_deref());
    match cli.command {
        None | Some(Command::Serve) => {
            let app = Application::build(settings).await?;
            bootstrap_admin(app.core()).await?;
            let served = app.run_until_stopped().await;
            // Spans still buffered are exported before the process ends.
            telemetry.shutdown().await;
            served
        }
        Some(Command::Admin(AdminCommand::Create { email, password, name })) => {
            let (store, core, ..) = build_core(&settings, None).await?;
            let user = core
                .users
                .create(RegisterUser { email, name, password }, Role::Admin, &cli_client())
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {:?}", e.details))?;
            println!("admin created: {} <{}>", user.id, user.email);
            store.close().await;
            Ok(())
        }
    }
}

/// `POLYPORT_BOOTSTRAP_ADMIN_EMAIL` / `_PASSWORD` create the first admin when that email is free.
async fn bootstrap_admin(core: &polyport::domain::service::Core) -> anyhow::Result<()> {
    let (Ok(email), Ok(password)) =
        (std::env::var("POLYPORT_BOOTSTRAP_ADMIN_EMAIL"), std::env::var("POLYPORT_BOOTSTRAP_ADMIN_PASSWORD"))
    else {
        return Ok(());
    };
    let input = RegisterUser { email: email.clone(), name: "Administrator".into(), password };
    match core.users.create(input, Role::Admin, &cli_client()).await {
        Ok(user) => tracing::info!(user_id = %user.id, "bootstrap admin created"),
        Err(e) if e.code == polyport::domain::ErrorCode::Conflict => tracing::info!("bootstrap admin already exists"),
        Err(e) => anyhow::bail!("creating the bootstrap admin: {e}"),
    }
    Ok(())
}

/// The origin the audit log records for what the command line and the bootstrap do.
fn cli_client() -> polyport::domain::service::ClientInfo {
    polyport::domain::service::ClientInfo { protocol: "cli".into(), ..Default::default() }
}
