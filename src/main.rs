//! The `cordon` command: a thin layer over the engine, the simulator and (later) the connectors.

mod app;
mod args;
mod commands;
mod deploy;
mod embedded;
mod render;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, EventbridgeCommand, LogFormat, RunsCommand};

fn init_logs(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let app = app::App::new(cli.global)?;
    match cli.command {
        Command::Validate { paths } => commands::validate(&app, &paths),
        Command::Explain { event, json } => commands::explain(&app, &event, json),
        Command::Run {
            event,
            playbook,
            dry_run,
            by,
            json,
        } => {
            commands::run(
                &app,
                event.as_deref(),
                playbook.as_deref(),
                dry_run,
                &by,
                json,
            )
            .await
        }
        Command::Runs {
            command: RunsCommand::List { json },
        } => commands::runs_list(&app, json).await,
        Command::Runs {
            command: RunsCommand::Show { run, json },
        } => commands::runs_show(&app, &run, json).await,
        Command::Approve {
            run,
            step,
            deny,
            by,
        } => commands::approve(&app, &run, &step, deny, &by).await,
        Command::Release { run, by } => commands::release(&app, &run, &by).await,
        Command::Resume => commands::resume(&app).await,
        Command::Actions { json } => commands::actions_list(json),
        Command::Policy { format, whose } => deploy::policy(&app, format, whose),
        Command::Eventbridge {
            command: EventbridgeCommand::Install(args),
        } => deploy::eventbridge_install(&app, &args).await,
    }
}

fn main() {
    let cli = Cli::parse();
    init_logs(cli.global.log_format, cli.global.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
