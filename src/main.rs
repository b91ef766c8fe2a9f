use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use makima::config::{ApiKeyCommand, Cli, Command, ServeArgs};
use makima::domain::keys;
use makima::error::AppError;
use makima::server::{AppState, Limits};
use makima::store::{Store, StoreOptions, owners};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(cli: &Cli) {
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `makima::open` with the write-transaction limits of `args`.
async fn open(args: &ServeArgs) -> Result<makima::domain::App, AppError> {
    let mut app =
        makima::open(&args.db.database_url, args.db.db_pool, &args.workspace_root).await?;
    app.store = app.store.with_timeouts(args.db.timeouts());
    app.daemon_timeout = Duration::from_secs(args.daemon_timeout);
    app.code_operation_wait = Duration::from_secs(args.code_operation_wait);
    app.code_operation_timeout = Duration::from_secs(args.code_operation_timeout);
    Ok(app)
}

async fn serve(args: ServeArgs) -> Result<(), AppError> {
    let app = open(&args).await?;
    // Before serving: code operations a previous process left half done are undone.
    makima::domain::code::reconcile(&app).await?;
    if args.demo {
        let key = makima::demo::load(&app).await?;
        println!("demo data loaded; API key (shown once):\n{key}");
    } else if owners::key_count(app.store.db()).await? == 0 {
        let key = keys::create(&app.store, "admin").await?.key;
        println!("no API key existed; created one for owner \"admin\" (shown once):\n{key}");
    }
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|e| AppError::internal(format!("cannot listen on {}: {e}", args.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AppError::internal(e.to_string()))?;
    tracing::info!("makima listening; GraphiQL at http://{addr}/graphql");
    app.store.chains().set_budget(args.memory.chain_cache_bytes);
    let limits = Limits {
        header_timeout: Duration::from_secs(args.limits.header_timeout.max(1)),
        body_timeout: Duration::from_secs(args.limits.body_timeout.max(1)),
        max_connections: args.limits.max_connections.max(1),
        max_websockets: args.limits.max_websockets,
    };
    // Interrupts the running tasks of daemons that stopped heartbeating.
    tokio::spawn(makima::domain::daemons::sweep_forever(app.clone()));
    let state = AppState::new(app).with_limits(limits);
    state.ws.set_limits(
        args.memory.ws_queue_bytes,
        Duration::from_secs(args.memory.ws_stall_secs),
    );
    makima::server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| AppError::internal(format!("server: {e}")))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

async fn run(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Serve(args) => Box::pin(serve(args)).await,
        Command::Migrate(db) => {
            let store = Store::connect(&StoreOptions::new(db.database_url)).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Create { owner, daemon, db }) => {
            let store = Store::connect(&StoreOptions::new(&db.database_url))
                .await?
                .with_timeouts(db.timeouts());
            store.migrate().await?;
            match daemon {
                Some(daemon) => {
                    let key = keys::create_for_daemon(&store, &owner, &daemon).await?.key;
                    println!(
                        "daemon key for daemon \"{daemon}\" of owner \"{owner}\" (shown once):\n{key}"
                    );
                }
                None => {
                    let key = keys::create(&store, &owner).await?.key;
                    println!("API key for owner \"{owner}\" (shown once):\n{key}");
                }
            }
            Ok(())
        }
        Command::ExportSchema => {
            print!("{}", makima::graphql::sdl());
            Ok(())
        }
        Command::Daemon(args) => makima::daemon::run(args.options(), shutdown_signal())
            .await
            .map_err(AppError::internal),
        Command::Demo(args) => {
            let app = open(&args).await?;
            let key = makima::demo::load(&app).await?;
            println!("demo data loaded; API key (shown once):\n{key}");
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match Box::pin(run(cli)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "error: {}",
                match &err {
                    AppError::Internal(detail) => detail.clone(),
                    other => other.public_message(),
                }
            );
            ExitCode::FAILURE
        }
    }
}
