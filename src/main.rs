//! The `cordon` command: a thin layer over the engine, the simulator and (later) the connectors.

mod app;
mod args;
mod commands;
mod deploy;
mod drill;
mod embedded;
mod out;
mod remote;
mod render;
mod room;
mod server;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::EnvFilter;

use crate::app::PlaybookErrors;
use crate::args::{Cli, Command, EventbridgeCommand, LogFormat, RunsCommand};
use crate::out::errln;

/// mimalloc rather than glibc's malloc: see the dependency's note in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logs on stderr. Text logs escape every field value with [`out::printable`] (a finding id
/// holding a newline cannot forge a log line) and are coloured only on a terminal; JSON logs
/// are escaped by serde.
fn init_logs(format: LogFormat, verbose: u8, serving: bool) {
    let default = match verbose {
        // A server's log is its operator's only view: say what it does.
        0 if serving => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        // Its own complaint about a failed write would go to the same broken stderr.
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder
            .fmt_fields(
                debug_fn(|w: &mut Writer<'_>, field, value| {
                    // `%` fields print Display output unquoted; escape whatever they hold.
                    let text = format!("{value:?}");
                    match field.name() {
                        "message" => write!(w, "{}", out::printable(&text)),
                        name => write!(w, "{name}={}", out::printable(&text)),
                    }
                })
                .delimited(" "),
            )
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let app = app::App::new(cli.global)?;
    match cli.command {
        Command::Validate { paths } => commands::validate(&app, &paths),
        Command::Explain { event, json } => commands::explain(&app, event.as_deref(), json),
        Command::Run {
            event,
            playbook,
            dry_run,
            rerun,
            by,
            json,
        } => {
            let how = commands::RunHow {
                dry_run,
                rerun,
                by,
                json,
            };
            commands::run(&app, event.as_deref(), playbook.as_deref(), &how).await
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
        Command::Serve {
            listen,
            sqs_queue_url,
        } => {
            let options = server::ServeOptions {
                listen,
                sqs_queue_url,
            };
            server::serve(app, options).await
        }
        Command::Drill(args) => drill::drill(&app, &args),
        Command::Eventbridge {
            command: EventbridgeCommand::Install(args),
        } => deploy::eventbridge_install(&app, &args).await,
    }
}

fn main() {
    // Before any HTTP client exists (the admin API's, Slack's): reqwest needs it.
    cordon_connectors::tls::install_crypto_provider();
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    init_logs(cli.global.log_format, cli.global.verbose, serving);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<out::StdoutClosed>().is_some() => 0,
        Err(e) => {
            report(&e);
            1
        }
    };
    std::process::exit(code);
}

/// Prints a command's error on stderr, escaped: one line, or one line per playbook error.
fn report(e: &anyhow::Error) {
    match e.downcast_ref::<PlaybookErrors>() {
        Some(errors) => {
            errln!("error: {} playbook error(s):", errors.0.len());
            for one in &errors.0 {
                errln!("  {one}");
            }
        }
        None => errln!("error: {e:#}"),
    }
}
