//! Running as a service: the systemd unit in docs/systemd verifies.

use std::fs;
use std::process::Command;

use crate::util::*;

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let env = Env::new();
    let unit = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/systemd/foldersync@.service"
    ))
    .unwrap()
    .replace("/usr/local/bin/foldersync", BIN);
    // An instance of the template, with the binary where this build put it.
    let path = env.root.join("foldersync@test.service");
    fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}
