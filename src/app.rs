//! Assembles what commands need from the options and the config file: playbooks, journal,
//! cloud, runner.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use cordon_connectors::{AwsCloud, AwsSettings, LogChat, SlackChat};
use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::{Chat, Cloud};
use cordon_engine::config::Settings;
use cordon_engine::dispatch::{self, Dispatcher};
use cordon_engine::journal::SledJournal;
use cordon_engine::playbook::{LoadError, PlaybookSet};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits, Sandbox};
use cordon_engine::secret::Secret;
use cordon_simulator::SimCloud;
use serde::Deserialize;

use crate::args::{CloudKind, Global};
use crate::embedded;

/// `cordon.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Journal directory.
    pub journal: Option<PathBuf>,
    /// Playbook directory.
    pub playbooks: Option<PathBuf>,
    /// Action settings.
    pub settings: Settings,
    /// How to reach AWS accounts (`--cloud aws`).
    pub aws: AwsSettings,
    /// `cordon serve`.
    pub server: ServerConfig,
    /// Chat (Slack).
    pub chat: ChatConfig,
}

/// The `chat:` section of `cordon.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Slack: `notify.chat` posts there; `cordon serve` takes slash commands and buttons.
    pub slack: Option<SlackConfig>,
    /// Mattermost, or another chat tool speaking its slash-command protocol: `cordon serve`
    /// answers `/cordon` commands at `POST /v1/chat/mattermost/commands`.
    pub mattermost: Option<MattermostConfig>,
}

/// `chat.mattermost`. The token may instead come from `CORDON_MATTERMOST_TOKEN` (which wins).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostConfig {
    /// The slash command's token (Mattermost shows it when the command is created).
    pub token: Option<Secret>,
    /// Who may approve and deny: `TEAM_ID/USER_ID` (Mattermost's 26-character ids).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Who may release.
    #[serde(default)]
    pub releasers: Vec<String>,
    /// Who may start manual playbooks (`/cordon run`).
    #[serde(default)]
    pub runners: Vec<String>,
}

impl MattermostConfig {
    /// The command token, from the environment or the config.
    pub fn token(&self) -> Result<Secret> {
        secret_from(
            "CORDON_MATTERMOST_TOKEN",
            &self.token,
            "chat.mattermost.token",
        )
    }
}

/// `chat.slack`. The secrets may instead come from the environment:
/// `CORDON_SLACK_SIGNING_SECRET` and `CORDON_SLACK_BOT_TOKEN` (which win).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The app's signing secret ("Basic Information" of the Slack app).
    pub signing_secret: Option<Secret>,
    /// The bot token (`xoxb-...`, scopes `chat:write` and `commands`).
    pub bot_token: Option<Secret>,
    /// The Web API's base URL; default `https://slack.com/api`.
    #[serde(default = "slack_api")]
    pub api_base_url: String,
    /// Where messages and approval requests go (channel id, e.g. `C0123456789`).
    pub channel: String,
    /// Who may approve and deny: `TEAM_ID/USER_ID`, e.g. `T0123/U0456`.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Who may release.
    #[serde(default)]
    pub releasers: Vec<String>,
    /// Who may start manual playbooks (`/cordon run`).
    #[serde(default)]
    pub runners: Vec<String>,
}

fn slack_api() -> String {
    cordon_connectors::slack::SLACK_API.to_string()
}

impl SlackConfig {
    /// The signing secret, from the environment or the config.
    pub fn signing_secret(&self) -> Result<Secret> {
        secret_from(
            "CORDON_SLACK_SIGNING_SECRET",
            &self.signing_secret,
            "chat.slack.signing_secret",
        )
    }

    /// The bot token, from the environment or the config.
    pub fn bot_token(&self) -> Result<Secret> {
        secret_from(
            "CORDON_SLACK_BOT_TOKEN",
            &self.bot_token,
            "chat.slack.bot_token",
        )
    }
}

fn secret_from(env: &str, conf: &Option<Secret>, field: &str) -> Result<Secret> {
    match std::env::var(env).ok().filter(|v| !v.is_empty()) {
        Some(v) => Ok(Secret::new(v)),
        None => match conf {
            Some(s) if !s.expose().is_empty() => Ok(Secret::new(s.expose())),
            _ => bail!(
                "{} is configured without {field}: set {env} or {field} in cordon.yaml",
                field.rsplit_once('.').map_or(field, |(section, _)| section)
            ),
        },
    }
}

/// The `server:` section of `cordon.yaml`. Intake credentials may instead come from the
/// environment: `CORDON_API_KEY`, and `CORDON_BASIC_AUTH` as `user:password`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`--listen` wins). Default `127.0.0.1:8080`: put a TLS-terminating
    /// proxy in front for EventBridge, which calls only HTTPS endpoints.
    pub listen: Option<String>,
    /// The header an EventBridge connection's API-key auth sends (`ApiKeyName`).
    pub api_key_header: String,
    /// The API key (`ApiKeyValue`).
    pub api_key: Option<Secret>,
    /// HTTP Basic credentials as `user:password`.
    pub basic: Option<Secret>,
    /// Runs driven at once, per account, and queued.
    pub limits: dispatch::Limits,
    /// How long SIGTERM waits for steps under way, e.g. `30s`.
    pub grace: String,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: None,
            api_key_header: "x-cordon-api-key".into(),
            api_key: None,
            basic: None,
            limits: dispatch::Limits::default(),
            grace: "30s".into(),
        }
    }
}

/// The cloud a command acts on, beside the engine's view of it ([`Cloud`]).
pub enum Acting {
    /// The simulated organization (its world file inside the journal directory).
    Sim(Arc<SimCloud>),
    /// AWS.
    Aws(Arc<AwsCloud>),
}

impl Acting {
    /// The simulated organization, when acting on it.
    pub fn sim(&self) -> Option<&SimCloud> {
        match self {
            Acting::Sim(s) => Some(s),
            Acting::Aws(_) => None,
        }
    }

    /// `sim` or `aws`.
    pub fn name(&self) -> &'static str {
        match self {
            Acting::Sim(_) => "sim",
            Acting::Aws(_) => "aws",
        }
    }

    /// Whether the cloud answers: always for the simulator; STS GetCallerIdentity for AWS.
    pub async fn reachable(&self) -> Result<(), String> {
        match self {
            Acting::Sim(_) => Ok(()),
            Acting::Aws(aws) => aws.caller_identity().await.map(|_| ()),
        }
    }
}

/// Everything a command may need, built lazily.
pub struct App {
    pub global: Global,
    pub config: Config,
    pub sandbox: Arc<Sandbox>,
    /// The journal once opened: sled lets one process open it once, and a second open could
    /// lose the lock to a server started in between.
    journal: Mutex<Option<Arc<SledJournal>>>,
}

impl App {
    pub fn new(global: Global) -> Result<App> {
        let path = global
            .config
            .clone()
            .or_else(|| Some(PathBuf::from("cordon.yaml")).filter(|p| p.exists()));
        let config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                serde_yaml::from_str(&text).map_err(|e| anyhow!("config {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        Ok(App {
            global,
            config,
            sandbox: Arc::new(Sandbox::new(Limits::default())),
            journal: Mutex::new(None),
        })
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.global
            .journal
            .clone()
            .or_else(|| self.config.journal.clone())
            .unwrap_or_else(|| PathBuf::from(".cordon/journal"))
    }

    /// The playbook directory: `--playbooks`, else the config's `playbooks`, else `./playbooks`
    /// if anything by that name exists; `None` (the built-in library) only when none of these
    /// is given or present. A path given or found that is not a directory (a file, a dangling
    /// link) is an error naming it, never a silent fall-back to the built-in library.
    pub fn playbook_dir(&self) -> Result<Option<PathBuf>> {
        let (dir, why) = match (&self.global.playbooks, &self.config.playbooks) {
            (Some(d), _) => (d.clone(), "--playbooks"),
            (None, Some(d)) => (d.clone(), "the config's `playbooks`"),
            (None, None) => {
                let d = PathBuf::from("playbooks");
                // symlink_metadata: a dangling `./playbooks` link counts as present.
                match std::fs::symlink_metadata(&d) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    _ => (d, "./playbooks, which is used when present"),
                }
            }
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(Some(dir)),
            Ok(_) => bail!(
                "playbook directory {} ({why}) is not a directory",
                dir.display()
            ),
            Err(e) => match std::fs::read_link(&dir) {
                Ok(target) => bail!(
                    "playbook directory {} ({why}) is a symbolic link to {}, which cannot be read: {e}",
                    dir.display(),
                    target.display()
                ),
                Err(_) => bail!(
                    "playbook directory {} ({why}) cannot be read: {e}",
                    dir.display()
                ),
            },
        }
    }

    pub fn playbooks(&self) -> Result<PlaybookSet> {
        let loaded = match self.playbook_dir()? {
            Some(dir) => PlaybookSet::load_dir(&dir, &self.sandbox),
            None => PlaybookSet::from_sources(&embedded::PLAYBOOKS, &self.sandbox),
        };
        loaded.map_err(|errors| PlaybookErrors(errors).into())
    }

    /// The cloud to act on. Never chosen silently: acting without `--cloud` is an error, and a
    /// journal used with one cloud refuses another.
    /// `recorded_ok`: commands acting on runs already journaled (approve, release, resume) may
    /// take the cloud recorded with the journal, where those runs acted.
    ///
    /// Each journal owns its cloud marker (`<journal>/cloud`) and, on `--cloud sim`, its
    /// simulated world (`<journal>/sim-world.json`), so two journals in one folder never share
    /// a world. Both live inside the journal directory beside sled's own files (sled only
    /// touches `conf`, `db`, `blobs/` and `snap.*`).
    pub async fn cloud(&self, recorded_ok: bool) -> Result<(Cloud, Acting)> {
        let dir = self.journal_dir();
        adopt_legacy_files(&dir)?;
        let marker = dir.join("cloud");
        let recorded = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|s| match s.trim() {
                "sim" => Some(CloudKind::Sim),
                "aws" => Some(CloudKind::Aws),
                _ => None,
            });
        let Some(kind) = self.global.cloud.or(recorded.filter(|_| recorded_ok)) else {
            bail!("say where to act: --cloud sim (a simulated organization, no AWS account needed) or --cloud aws");
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating journal directory {}", dir.display()))?;
        let name = match kind {
            CloudKind::Sim => "sim",
            CloudKind::Aws => "aws",
        };
        match std::fs::read_to_string(&marker) {
            Ok(used) if used.trim() != name => bail!(
                "the journal at {} holds runs acting on --cloud {}; use that, or another --journal",
                dir.display(),
                used.trim()
            ),
            Ok(_) => {}
            Err(_) => std::fs::write(&marker, name)
                .with_context(|| format!("writing {}", marker.display()))?,
        }
        match kind {
            CloudKind::Sim => {
                let delay = std::env::var("CORDON_SIM_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let world = dir.join("sim-world.json");
                let sim =
                    Arc::new(SimCloud::open(&world)?.with_delay(Duration::from_millis(delay)));
                tracing::info!(cloud = "sim", world = %world.display(), "Acting on the simulated organization");
                let mut cloud = Cloud::from_one(sim.clone());
                if let Some(slack) = self.slack_chat()? {
                    cloud.chat = slack;
                }
                Ok((cloud, Acting::Sim(sim)))
            }
            CloudKind::Aws => {
                let aws = Arc::new(AwsCloud::from_env(self.config.aws.clone()).await);
                tracing::info!(cloud = "aws", role = %self.config.aws.role_arn, "Acting on AWS");
                // Without a chat configured, messages are logged, not lost.
                let chat: Arc<dyn Chat> = match self.slack_chat()? {
                    Some(slack) => slack,
                    None => Arc::new(LogChat),
                };
                Ok((Cloud::with_chat(aws.clone(), chat), Acting::Aws(aws)))
            }
        }
    }

    /// The Slack client, when `chat.slack` is configured.
    pub fn slack_chat(&self) -> Result<Option<Arc<SlackChat>>> {
        let Some(conf) = &self.config.chat.slack else {
            return Ok(None);
        };
        SlackChat::new(&conf.api_base_url, conf.bot_token()?, &conf.channel)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| anyhow!(e))
    }

    /// The journal, opened (and created) at the configured place; opened once per process.
    pub fn journal(&self) -> Result<Arc<SledJournal>> {
        let mut opened = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = &*opened {
            return Ok(j.clone());
        }
        let dir = self.journal_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating journal directory {}", dir.display()))?;
        let j = Arc::new(SledJournal::open(&dir)?);
        *opened = Some(j.clone());
        Ok(j)
    }

    /// A runner over the journal, on the system clock.
    pub fn runner(&self, cloud: Cloud, playbooks: PlaybookSet) -> Result<Runner> {
        Ok(Runner::new(
            self.journal()?,
            cloud,
            self.config.settings.clone(),
            self.sandbox.clone(),
            Arc::new(playbooks),
            Arc::new(SystemClock),
        ))
    }

    /// A dispatcher driving runs in this process over the journal, with the configured limits.
    pub fn dispatcher(&self, cloud: Cloud, playbooks: PlaybookSet) -> Result<Dispatcher> {
        Ok(Dispatcher::new(
            self.runner(cloud, playbooks)?,
            self.config.server.limits,
        ))
    }
}

/// Before each journal owned its marker and world, they lived in the journal's parent
/// directory (`.cordon/cloud`, `.cordon/sim-world.json` for the default `.cordon/journal`).
/// A journal that already holds runs and has no marker of its own takes those over (moves
/// them), so runs started before the change can still be approved and released. The first
/// journal of a folder to be opened takes them; a second one there starts its own.
fn adopt_legacy_files(dir: &Path) -> Result<()> {
    let base = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (marker, legacy_marker) = (dir.join("cloud"), base.join("cloud"));
    if marker.exists() || !legacy_marker.is_file() || !dir.join("db").exists() {
        return Ok(());
    }
    for name in ["sim-world.json", "cloud"] {
        let (from, to) = (base.join(name), dir.join(name));
        if from.is_file() && !to.exists() {
            std::fs::rename(&from, &to)
                .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
            tracing::info!(from = %from.display(), to = %to.display(), "Moved into the journal it belongs to");
        }
    }
    Ok(())
}

/// Playbooks that failed to load: `main` prints one line per error.
#[derive(Debug)]
pub struct PlaybookErrors(pub Vec<LoadError>);

impl std::fmt::Display for PlaybookErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} playbook error(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlaybookErrors {}
