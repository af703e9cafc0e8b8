//! Shared set-up for the end-to-end tests: a scratch directory per test, the real `cordon`
//! binary, and readers for the simulated world it keeps in the journal directory.
#![allow(dead_code)]

pub mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture event file.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/events").join(name)
}

/// A scratch working directory with its own journal and simulated world.
pub struct Cordon {
    pub dir: tempfile::TempDir,
}

impl Cordon {
    pub fn new() -> Cordon {
        Cordon {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `cordon` command run in the scratch directory, with the shipped playbooks.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cordon"));
        c.current_dir(self.path())
            .env_remove("RUST_LOG")
            .env("CORDON_PLAYBOOKS", root().join("playbooks"))
            .args(args);
        c
    }

    /// Runs `cordon args...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cordon")
    }

    /// Runs and asserts the exit code; returns stdout.
    pub fn ok(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "cordon {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    /// Runs with `--json` appended and parses stdout.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a, code);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("cordon {a:?}: not JSON ({e}):\n{out}"))
    }

    /// The one run in the journal whose playbook is `playbook`.
    pub fn run_of(&self, playbook: &str) -> Value {
        let runs = self.json(&["runs", "list"], 0);
        let ids: Vec<String> = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["playbook"] == playbook)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 1, "runs of {playbook}: {runs}");
        self.json(&["runs", "show", &ids[0]], 0)
    }

    pub fn world_path(&self) -> PathBuf {
        self.path().join(".cordon/journal/sim-world.json")
    }

    /// The simulated world as the last call left it (its snapshot and the calls logged since;
    /// a process may still be using it).
    pub fn world(&self) -> Value {
        world_at(&self.world_path())
    }

    /// Replaces the simulated world (set-up before a run). The calls logged beside the old one
    /// no longer follow it, so they are ignored.
    pub fn set_world(&self, w: &Value) {
        std::fs::create_dir_all(self.path().join(".cordon/journal")).unwrap();
        std::fs::write(self.world_path(), serde_json::to_vec_pretty(w).unwrap()).unwrap();
    }

    /// Writes one playbook, `<name>.yaml`, into its own directory; returns the directory for
    /// `--playbooks`.
    pub fn playbook_dir(&self, name: &str, yaml: &str) -> String {
        let dir = self.path().join(format!("pb-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
        dir.display().to_string()
    }

    /// Writes an event file into the scratch dir.
    pub fn event(&self, name: &str, event: &Value) -> String {
        let p = self.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(event).unwrap()).unwrap();
        p.display().to_string()
    }
}

/// Reads a fixture as JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

/// The count of mutating calls of `api` in the world's call log.
pub fn calls(world: &Value, api: &str) -> usize {
    world["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.as_str().unwrap().starts_with(&format!("{api} ")))
        .count()
}

/// The simulated world stored at `path` (snapshot and log), as JSON.
pub fn world_at(path: &Path) -> Value {
    let world = cordon_simulator::SimCloud::load(path).expect("sim world readable");
    serde_json::to_value(world).expect("sim world is JSON")
}
