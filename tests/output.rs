//! Issue 20, item 5: what foldersync writes, and where: no log file with `--log-level off`, a
//! log file that cannot be opened names the option to change, the log levels offered by the
//! completions, and no summary for a periodic pass that changed nothing.

use std::fs;
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(20);

#[test]
fn no_log_file_with_log_level_off() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let log = env.root.join("logs/deeper/x.log");
    let out = env
        .cmd_with_log(&log)
        .args(["--once", "--log-level", "OFF"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("copied a"));
    assert!(!log.exists() && !env.root.join("logs/deeper").exists());
    // Nor the default one in the working directory.
    let out = std::process::Command::new(BIN)
        .arg(&env.src)
        .arg(&env.rep)
        .args(["--once", "--log-level", "off", "--state-dir"])
        .arg(env.state())
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!env.root.join("sync_log.txt").exists());
}

#[test]
fn a_log_file_that_cannot_be_opened_names_the_option() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    write(env.root.join("plain"), "not a directory");
    let out = env
        .cmd_with_log(&env.root.join("plain/x.log"))
        .arg("--once")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("(choose another with -l/--log-path)"), "{err}");
    assert!(!env.rep.exists());
    if !is_root() {
        return;
    }
    // The default log file, in a working directory nobody may write to.
    let cwd = env.root.join("locked");
    mkdir(&cwd);
    let mut cmd = as_nobody(&env);
    chmod(&cwd, 0o555);
    let out = cmd
        .arg(&env.src)
        .arg(env.root.join("rep"))
        .arg("--once")
        .arg("--state-dir")
        .arg(env.root.join("state"))
        .current_dir(&cwd)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot open log file")
            && err.contains("Permission denied")
            && err.ends_with("(choose another with -l/--log-path)\n"),
        "{err}"
    );
    assert!(!env.rep.exists());
}

#[test]
fn completions_offer_the_log_levels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bash = fs::read_to_string(root.join("docs/completions/foldersync.bash")).unwrap();
    assert!(
        bash.contains("compgen -W \"off error warn info debug trace\""),
        "{bash}"
    );
    let fish = fs::read_to_string(root.join("docs/completions/foldersync.fish")).unwrap();
    let line = fish.lines().find(|l| l.contains("-l log-level")).unwrap();
    assert!(line.contains("off") && !line.contains("-F"), "{line}");
}

#[test]
fn a_periodic_pass_that_changed_nothing_says_no_summary() {
    let env = Env::new();
    write(env.src.join("a"), "a");
    let mut run = env.spawn(&["--no-watch", "-i", "200ms", "--log-level", "debug"]);
    env.wait_log("pass finished", 4, QUICK);
    write(env.src.join("b"), "b");
    env.converges(QUICK);
    run.stop();
    let log = env.log_text();
    let said = |level: &str| {
        log.lines()
            .filter(|l| l.contains(level) && l.contains("pass finished"))
            .count()
    };
    // The first pass, and the one that copied b.
    assert_eq!(said("[INFO ]"), 2, "{log}");
    assert!(said("[DEBUG]") >= 3, "{log}");
    let console = run.console_text();
    assert_eq!(console.matches("pass finished").count(), 2, "{console}");
}

#[test]
fn log_format_json_writes_one_object_a_line_with_each_changes_fields() {
    let env = Env::new();
    write(env.src.join("d/a"), "hello");
    write(env.src.join(non_utf8("bad")), "xy");
    let out = env.once_ok_with(&["--log-format", "json"]);
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let file = parse(&env.log_text());
    let console = parse(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(file.len(), console.len());
    let copied = file
        .iter()
        .find(|o| o["op"] == "copied" && o["path"] == "d/a")
        .expect("the copy of d/a");
    assert_eq!(copied["size"], 5);
    assert_eq!(copied["bytes_written"], 5);
    assert_eq!(copied["level"], "info");
    assert!(copied["time"].as_str().unwrap().ends_with('Z'));
    assert!(file.iter().any(|o| o["op"] == "mkdir" && o["path"] == "d"));
    // A name that is not UTF-8 is escaped as in text lines.
    assert!(
        file.iter()
            .any(|o| o["op"] == "copied" && o["path"] == "bad\\xff\\xfe"),
        "{file:#?}"
    );
    assert!(file
        .iter()
        .any(|o| o["msg"].as_str().unwrap().starts_with("pass finished")));
}
