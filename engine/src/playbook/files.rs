//! Playbook files on disk: which files of a directory are playbooks, and reading one safely.
//!
//! A directory's *candidates* are the entries directly inside it whose name ends in `.yaml` or
//! `.yml`, compared without case (`b.YAML` is one), and does not start with `.` (editor lock
//! and backup files such as Emacs' `.#x.yaml`, a symbolic link to nowhere, are not playbooks).
//! Subdirectories with other names (`deploy/`, drills) are not looked into. Every candidate is
//! either loaded or reported by name with the reason: a directory named `x.yaml`, a dangling
//! link, a link loop, a FIFO or device, an oversized file and a file that is not UTF-8 are all
//! load errors, never silently skipped. A UTF-8 byte-order mark is accepted and stripped (YAML
//! allows one at the start of a stream; see [`super::compile`]).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{LoadError, PlaybookSet};
use crate::script::Sandbox;

/// Largest playbook file read, in bytes. The shipped playbooks are about 2 KiB each.
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// Whether a directory entry named `name` is a playbook candidate (see the module docs).
pub fn is_candidate(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    let lower = bytes.to_ascii_lowercase();
    !bytes.starts_with(b".") && (lower.ends_with(b".yaml") || lower.ends_with(b".yml"))
}

fn file_error(path: &Path, line: Option<usize>, message: impl Into<String>) -> LoadError {
    LoadError {
        file: path.display().to_string(),
        line,
        field: String::new(),
        message: message.into(),
    }
}

/// Why `path` cannot be opened as a file: a dangling link, a loop, a directory, a FIFO...
fn not_a_file(path: &Path) -> Option<LoadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let why = match (std::fs::read_link(path), e.kind()) {
                (Ok(target), std::io::ErrorKind::NotFound) => format!(
                    "is a symbolic link to {}, which does not exist",
                    target.display()
                ),
                _ => format!("cannot be read: {e}"),
            };
            return Some(file_error(path, None, why));
        }
    };
    let kind = if meta.is_file() {
        return None;
    } else if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, socket or device)"
    };
    Some(file_error(
        path,
        None,
        format!("is {kind}, not a playbook file"),
    ))
}

/// Reads one playbook file: a regular file (after following links) of at most
/// [`MAX_PLAYBOOK_BYTES`], in UTF-8. Errors name the file and, for bad UTF-8, the line.
pub fn read_file(path: &Path) -> Result<String, LoadError> {
    // Checked before opening: opening a FIFO for reading blocks until someone writes to it.
    if let Some(e) = not_a_file(path) {
        return Err(e);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PLAYBOOK_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| file_error(path, None, format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(file_error(
            path,
            None,
            format!("is larger than {MAX_PLAYBOOK_BYTES} bytes; a playbook is a few KiB"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        file_error(
            path,
            Some(line),
            format!(
                "is not UTF-8 text (byte 0x{:02x} at offset {at}); save the playbook as UTF-8",
                bytes[at]
            ),
        )
    })
}

/// The candidates of `dir`, sorted by name.
fn candidates(dir: &Path) -> Result<Vec<PathBuf>, Vec<LoadError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![file_error(
            dir,
            None,
            format!("cannot be read as a playbook directory: {e}"),
        )]
    })?;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) if is_candidate(&e.file_name()) => files.push(e.path()),
            Ok(_) => {}
            Err(e) => errors.push(file_error(dir, None, format!("listing failed: {e}"))),
        }
    }
    files.sort();
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

impl PlaybookSet {
    /// Loads every candidate file directly in `dir` (see the module docs). Errors: the
    /// directory cannot be read or holds no candidate, or any candidate fails to read or
    /// compile; every error of every file is returned, each naming its file.
    pub fn load_dir(dir: &Path, sandbox: &Sandbox) -> Result<PlaybookSet, Vec<LoadError>> {
        PlaybookSet::load_paths(&[dir.to_path_buf()], sandbox)
    }

    /// Loads playbooks from files and directories (a directory stands for its candidates), as
    /// one set: ids must be unique across all of them. A directory with no candidate is an
    /// error, so a wrong path never yields an empty set that silently matches nothing.
    pub fn load_paths(paths: &[PathBuf], sandbox: &Sandbox) -> Result<PlaybookSet, Vec<LoadError>> {
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for path in paths {
            let files = if path.is_dir() {
                match candidates(path) {
                    Ok(f) if f.is_empty() => {
                        errors.push(file_error(
                            path,
                            None,
                            "holds no playbook (*.yaml or *.yml files)",
                        ));
                        continue;
                    }
                    Ok(f) => f,
                    Err(mut e) => {
                        errors.append(&mut e);
                        continue;
                    }
                }
            } else {
                vec![path.clone()]
            };
            for f in files {
                match read_file(&f) {
                    Ok(text) => sources.push((f.display().to_string(), text)),
                    Err(e) => errors.push(e),
                }
            }
        }
        match PlaybookSet::from_sources(&sources, sandbox) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYBOOK: &str = "id: ID\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: tell\n    action: notify.chat\n    with: {text: hi}\n";

    fn playbook(id: &str) -> String {
        PLAYBOOK.replace("ID", id)
    }

    fn messages(dir: &Path) -> Vec<String> {
        match PlaybookSet::load_dir(dir, &Sandbox::default()) {
            Ok(s) => panic!("loaded {} playbook(s)", s.len()),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn candidates_are_yaml_names_in_any_case_but_not_hidden() {
        for yes in ["a.yaml", "b.YAML", "c.Yml", "d.yml"] {
            assert!(is_candidate(OsStr::new(yes)), "{yes}");
        }
        for no in [
            ".#a.yaml",
            ".hidden.yml",
            "a.yaml.swp",
            "a.json",
            "yaml",
            "deploy",
        ] {
            assert!(!is_candidate(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn upper_case_extension_and_bom_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.YAML"), playbook("upper")).unwrap();
        std::fs::write(
            dir.path().join("bom.yaml"),
            format!("\u{feff}{}", playbook("with-bom")),
        )
        .unwrap();
        let set = PlaybookSet::load_dir(dir.path(), &Sandbox::default()).unwrap();
        let mut ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["upper", "with-bom"]);
    }

    #[cfg(unix)]
    #[test]
    fn every_bad_candidate_is_reported_by_name() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("good.yaml"), playbook("good")).unwrap();
        std::fs::create_dir(d.join("x.yaml")).unwrap();
        symlink(d.join("nowhere"), d.join("dangling.yaml")).unwrap();
        symlink(d.join("loop-b.yaml"), d.join("loop-a.yaml")).unwrap();
        symlink(d.join("loop-a.yaml"), d.join("loop-b.yaml")).unwrap();
        std::fs::write(d.join("latin1.yml"), b"id: x\ntitle: caf\xe9\n").unwrap();
        // Not candidates: left alone, without a word.
        symlink("user@host.123", d.join(".#good.yaml")).unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        let errs = messages(d).join("\n");
        let p = |n: &str| d.join(n).display().to_string();
        for expected in [
            format!("{}: is a directory, not a playbook file", p("x.yaml")),
            format!(
                "{}: is a symbolic link to {}, which does not exist",
                p("dangling.yaml"),
                p("nowhere")
            ),
            format!("{}: cannot be read:", p("loop-a.yaml")),
            format!("{}: cannot be read:", p("loop-b.yaml")),
            format!(
                "{}:2: is not UTF-8 text (byte 0xe9 at offset 16)",
                p("latin1.yml")
            ),
        ] {
            assert!(errs.contains(&expected), "missing {expected:?} in:\n{errs}");
        }
        assert_eq!(errs.lines().count(), 5, "{errs}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_reported_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        let errs = messages(dir.path()).join("\n");
        assert!(errs.contains("is not a regular file"), "{errs}");
    }

    #[test]
    fn an_empty_directory_and_an_oversized_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let errs = messages(dir.path()).join("\n");
        assert!(errs.contains("holds no playbook"), "{errs}");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; MAX_PLAYBOOK_BYTES as usize + 1]).unwrap();
        let errs = messages(dir.path()).join("\n");
        assert!(
            errs.contains("big.yaml: is larger than 1048576 bytes"),
            "{errs}"
        );
    }
}
