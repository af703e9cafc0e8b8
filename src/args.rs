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
        /// Event file (`-` for stdin). Default: the built-in GuardDuty EC2 finding `run` uses.
        #[arg(long)]
        event: Option<PathBuf>,
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
        /// Run again on purpose: start a new run even though the finding already had one,
        /// once that run has finished (failed, denied, succeeded, released). Without it a
        /// repeat starts nothing (exit 5) and says which run the finding already has.
        #[arg(long)]
        rerun: bool,
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
    /// Print the least-privilege IAM policies the loaded playbooks need.
    Policy {
        /// `cloudformation`: the member role as a StackSet-ready CloudFormation template
        /// (cordon's own identity is always a policy document).
        #[arg(long, default_value = "json")]
        format: PolicyFormat,
        /// Whose policy: the response role in member accounts, cordon's own identity, or both.
        #[arg(long = "for", default_value = "both")]
        whose: PolicyFor,
    },
    /// The always-on runner: take findings from EventBridge (HTTP API destination) and contain
    /// them; approve and release through the admin API the other commands use meanwhile.
    /// Intake credentials: CORDON_API_KEY (header x-cordon-api-key) or
    /// CORDON_BASIC_AUTH=user:password. Stop with SIGTERM; SIGHUP reloads the playbooks.
    Serve {
        /// Address to listen on (default: the config's server.listen, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Also take findings from this SQS queue (an EventBridge rule's target), long-polled
        /// with the standard AWS credentials; for accounts that expose no inbound endpoint.
        #[arg(long)]
        sqs_queue_url: Option<String>,
    },
    /// Rehearse an incident: run a drill scenario against the shipped playbooks on a simulated
    /// organization and a virtual clock, and report. Exit 1 when an expectation is missed.
    Drill(DrillArgs),
    /// Set up EventBridge delivery of findings to `cordon serve`.
    Eventbridge {
        #[command(subcommand)]
        command: EventbridgeCommand,
    },
}

/// `cordon policy --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    /// IAM policy documents.
    Json,
    /// A CloudFormation template creating the member response role.
    Cloudformation,
}

/// `cordon policy --for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFor {
    /// The response role in each member account.
    Member,
    /// cordon's own identity.
    Home,
    /// `{"member_role": ..., "cordon_identity": ...}`.
    Both,
}

#[derive(Debug, Subcommand)]
pub enum EventbridgeCommand {
    /// Create or update (idempotently) the connection, API destination, rule and target that
    /// deliver findings to cordon. The API key is read from CORDON_API_KEY.
    Install(InstallArgs),
}

/// `cordon eventbridge install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// cordon's HTTPS endpoint EventBridge POSTs events to.
    #[arg(long)]
    pub endpoint: String,
    /// The role EventBridge assumes to invoke the API destination (events:InvokeApiDestination).
    #[arg(long)]
    pub role_arn: String,
    /// The event bus for the rule.
    #[arg(long, default_value = "default")]
    pub bus: String,
    /// Name of the connection, API destination, rule and target.
    #[arg(long, default_value = "cordon")]
    pub name: String,
    /// SQS queue for events EventBridge gives up delivering.
    #[arg(long)]
    pub dlq_arn: Option<String>,
    /// Delivery retries (EventBridge allows 0 to 185).
    #[arg(long, default_value_t = 185, value_parser = clap::value_parser!(i32).range(0..=185))]
    pub max_retries: i32,
    /// How long EventBridge retries an event, in seconds (60 to 86400).
    #[arg(long, default_value_t = 86400, value_parser = clap::value_parser!(i32).range(60..=86400))]
    pub max_age_seconds: i32,
    /// Invocations per second allowed to the endpoint (1 to 300); EventBridge queues the rest.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=300))]
    pub rate: i32,
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

/// `cordon drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The scenario (YAML), e.g. playbooks/drills/c2-instance.yaml. Its playbooks: --playbooks
    /// (or CORDON_PLAYBOOKS) when given, else the scenario's `playbooks:` (relative to its
    /// file), else the `playbooks/` folder above the scenario's folder (the shipped layout).
    pub scenario: PathBuf,
    /// Write the report here: `.md` Markdown, `.html` a self-contained page with an SVG
    /// timeline, `.json` JSON, `.xml` JUnit XML. Default: Markdown on stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Seed of the run ids (same scenario and seed, same report bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Facilitator mode, on a terminal: the drill stops at each injected finding and each
    /// step waiting for approval, shows what cordon is about to do and why, and the room
    /// decides (the scenario's scripted approvals are skipped). The report names who decided.
    #[arg(long)]
    pub interactive: bool,
}
