//! Build script shared by the binary crates (hubpack-scheduler, hubpack-placeholder-ctl,
//! hubpack-sim): sets `HUBPACK_BUILD_COMMIT` for `--version`.
//!
//! The commit is `git rev-parse --short HEAD` in a checkout, else the `HUBPACK_GIT_COMMIT`
//! environment variable (an image build has no `.git`; the release workflow passes it), else
//! "unknown". Cargo reruns this only when HEAD or the branch it points at moves, so an edit
//! that is not a commit does not rebuild the crate.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// `git rev-parse --git-path NAME` as an existing file (worktrees keep HEAD apart from refs).
fn git_file(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(git(&["rev-parse", "--git-path", name])?);
    path.is_file().then_some(path)
}

fn main() {
    println!("cargo:rerun-if-env-changed=HUBPACK_GIT_COMMIT");
    let mut watched = vec![git_file("HEAD")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git_file(&branch));
        // A branch whose loose ref was packed moves in packed-refs.
        watched.push(git_file("packed-refs"));
    }
    for path in watched.into_iter().flatten() {
        // Relative paths from git are relative to this crate's directory, as cargo reads them.
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = git(&["rev-parse", "--short", "HEAD"])
        .or_else(|| {
            std::env::var("HUBPACK_GIT_COMMIT")
                .ok()
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HUBPACK_BUILD_COMMIT={commit}");
}
