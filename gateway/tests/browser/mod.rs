//! Headless Chromium for the browser tests: the page as rendered after its scripts ran.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn chromium(args: &[&str]) -> String {
    // One profile per run: Chromium locks its profile, and the tests of a file start it at once.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}-{run}", std::process::id()));
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=8000",
            "--window-size=1280,860",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (make setup)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page as headless Chromium renders it after its scripts ran (`--dump-dom`).
pub async fn rendered_dom(url: String) -> String {
    tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url])).await.unwrap()
}

/// The text of the element `id="{id}"` (up to its first child tag or closing tag).
pub fn element_text(dom: &str, id: &str) -> String {
    let open = format!("id=\"{id}\"");
    let rest = &dom[dom.find(&open).unwrap_or_else(|| panic!("no #{id} in the page"))..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap_or(rest.len())].to_string()
}
