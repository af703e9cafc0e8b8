//! Assembles what commands need from the options and the config file: playbooks, journal,
//! cloud, runner.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use cordon_connectors::{AwsCloud, AwsSettings, LogChat};
use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::Cloud;
use cordon_engine::config::Settings;
use cordon_engine::journal::SledJournal;
use cordon_engine::playbook::{LoadError, PlaybookSet};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits, Sandbox};
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
}

/// Everything a command may need, built lazily.
pub struct App {
    pub global: Global,
    pub config: Config,
    pub sandbox: Arc<Sandbox>,
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
        })
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.global
            .journal
            .clone()
            .or_else(|| self.config.journal.clone())
            .unwrap_or_else(|| PathBuf::from(".cordon/journal"))
    }

    /// The playbook directory, or `None` for the built-in library.
    pub fn playbook_dir(&self) -> Option<PathBuf> {
        self.global
            .playbooks
            .clone()
            .or_else(|| self.config.playbooks.clone())
            .or_else(|| Some(PathBuf::from("playbooks")).filter(|p| p.is_dir()))
    }

    pub fn playbooks(&self) -> Result<PlaybookSet> {
        let loaded = match self.playbook_dir() {
            Some(dir) => PlaybookSet::load_dir(&dir, &self.sandbox),
            None => PlaybookSet::from_sources(&embedded::PLAYBOOKS, &self.sandbox),
        };
        loaded.map_err(|errors| anyhow!("{}", load_errors(&errors)))
    }

    /// The cloud to act on. Never chosen silently: acting without `--cloud` is an error, and a
    /// journal used with one cloud refuses another.
    /// `recorded_ok`: commands acting on runs already journaled (approve, release, resume) may
    /// take the cloud recorded beside the journal, where those runs acted.
    pub async fn cloud(&self, recorded_ok: bool) -> Result<(Cloud, Option<Arc<SimCloud>>)> {
        let dir = self.journal_dir();
        let base = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let marker = base.join("cloud");
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
        std::fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
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
                let world = base.join("sim-world.json");
                let sim =
                    Arc::new(SimCloud::open(&world)?.with_delay(Duration::from_millis(delay)));
                tracing::info!(cloud = "sim", world = %world.display(), "Acting on the simulated organization");
                Ok((Cloud::from_one(sim.clone()), Some(sim)))
            }
            CloudKind::Aws => {
                let aws = Arc::new(AwsCloud::from_env(self.config.aws.clone()).await);
                tracing::info!(cloud = "aws", role = %self.config.aws.role_arn, "Acting on AWS");
                // Until a chat connector is configured, messages are logged, not lost.
                Ok((Cloud::with_chat(aws, Arc::new(LogChat)), None))
            }
        }
    }

    /// The journal, opened (and created) at the configured place.
    pub fn journal(&self) -> Result<SledJournal> {
        let dir = self.journal_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating journal directory {}", dir.display()))?;
        Ok(SledJournal::open(&dir)?)
    }

    pub fn runner(&self, cloud: Cloud, playbooks: PlaybookSet) -> Result<Runner> {
        Ok(Runner::new(
            Arc::new(self.journal()?),
            cloud,
            self.config.settings.clone(),
            self.sandbox.clone(),
            Arc::new(playbooks),
            Arc::new(SystemClock),
        ))
    }
}

/// Load errors, one per line.
pub fn load_errors(errors: &[LoadError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(
        "{} playbook error(s):\n  {}",
        errors.len(),
        lines.join("\n  ")
    )
}
