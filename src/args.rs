//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cordon: incident-response automation for AWS Organizations.
#[derive(Debug, Parser)]
#[command(name = "cordon", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Config file (default: ./cordon.yaml when present).
    #[arg(long, global = true, env = "CORDON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Journal directory (default: ./.cordon/journal).
    #[arg(long, global = true, env = "CORDON_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Playbook directory (default: ./playbooks when present, else the built-in library).
    #[arg(long, global = true, env = "CORDON_PLAYBOOKS")]
    pub playbooks: Option<PathBuf>,
    /// Where actions act. `sim` is an in-process simulated organization kept beside the journal.
    #[arg(long, global = true, env = "CORDON_CLOUD")]
    pub cloud: Option<CloudKind>,
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: LogFormat,
    /// More logs (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Clouds cordon can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudKind {
    /// The simulated organization (no AWS account needed).
    Sim,
    /// Real AWS through the connectors.
    Aws,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks; errors name file, line and field.
    Validate {
        /// Playbook files or directories (default: the playbook directory).
        paths: Vec<PathBuf>,
    },
    /// Show the normalized finding(s) of an event and which playbooks match, and why.
    Explain {
        /// Event file (`-` for stdin).
        #[arg(long)]
        event: PathBuf,
        /// Print JSON: an array with one object per finding.
        #[arg(long)]
        json: bool,
    },
    /// Start runs for an event's findings (or one named playbook) and drive them.
    Run {
        /// Event file (`-` for stdin). Default: a built-in GuardDuty EC2 finding (demo).
        #[arg(long)]
        event: Option<PathBuf>,
        /// Run this playbook for the finding, whatever its trigger says (manual start).
        #[arg(long)]
        playbook: Option<String>,
        /// Print the plan (playbooks, steps, parameters) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who starts it (recorded for manual starts).
        #[arg(long, default_value = "cli")]
        by: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List or show runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Approve (or deny) a step that waits for a human, and resume the run.
    Approve {
        /// Run id.
        run: String,
        /// Step id.
        step: String,
        /// Deny instead of approve.
        #[arg(long)]
        deny: bool,
        /// Who decides.
        #[arg(long)]
        by: String,
    },
    /// Undo what a run's containment steps changed, newest first.
    Release {
        /// Run id.
        run: String,
        /// Who releases.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Resume unfinished runs (after a crash) and apply approval timeouts.
    Resume,
    /// List actions: id, description, IAM actions, example.
    Actions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every run, oldest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One run: steps, outputs, proofs, timeline.
    Show {
        /// Run id.
        run: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
