//! Running as a service: the systemd units in docs/systemd (the template, and the configuration's
//! foldersync.service) verify, and their hardening scores
//! "OK" or better in `systemd-analyze security`.

use std::fs;
use std::process::Command;

use crate::util::*;

fn have_systemd_analyze() -> bool {
    let there = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !there {
        eprintln!("skipped: systemd-analyze is not installed");
    }
    there
}

/// The shipped units: the template (one mirror per instance) and the configuration's.
const UNITS: [(&str, &str); 2] = [
    ("foldersync@.service", "foldersync@test.service"),
    ("foldersync.service", "foldersync.service"),
];

/// A unit of docs/systemd (as `name`) in the test's directory, with the binary where this build
/// put it (the unit names it bare, as systemd finds it in /usr/local/bin or /usr/bin).
fn instance(env: &Env, shipped: &str, name: &str) -> std::path::PathBuf {
    let unit = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/systemd")
            .join(shipped),
    )
    .unwrap();
    assert!(unit.contains("\nExecStart=foldersync "), "{unit}");
    let unit = unit.replace("\nExecStart=foldersync ", &format!("\nExecStart={BIN} "));
    let path = env.root.join(name);
    fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies() {
    if !have_systemd_analyze() {
        return;
    }
    let env = Env::new();
    for (shipped, name) in UNITS {
        let path = instance(&env, shipped, name);
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "systemd-analyze verify {shipped}: {err}"
        );
    }
}

/// `systemd-analyze security` rates the unit's exposure from 0 (SAFE) to 10 (UNSAFE); "OK" is
/// below 5.0. The unit (Type=exec, root, no ProtectSystem=) scored 9.2 UNSAFE.
#[test]
fn the_systemd_unit_is_hardened() {
    if !have_systemd_analyze() {
        return;
    }
    let env = Env::new();
    for (shipped, name) in UNITS {
        let path = instance(&env, shipped, name);
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        let overall = text
            .lines()
            .find_map(|l| l.split_once(&format!("Overall exposure level for {name}: ")))
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| panic!("no overall exposure level:\n{text}\n{err}"));
        let mut words = overall.split_whitespace();
        let score: f64 = words.next().and_then(|w| w.parse().ok()).unwrap();
        let level = words.next().unwrap_or_default();
        assert!(
            ["SAFE", "OK"].contains(&level) && score < 5.0,
            "{shipped}: exposure {overall}:\n{text}"
        );
    }
}
