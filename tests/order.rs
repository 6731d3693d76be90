//! Issue 20, item 5: a pass's change lines come out in the same order on every run of the same
//! trees, although walkers and copy workers run side by side; in path order within each of the
//! pass's steps (parents before children), on the console and in the log file, dry run or not.

use std::fs;
use std::path::Path;

use crate::util::*;

/// A tree of many directories, with small files (copied by the walkers) and a few over 1 MiB
/// (handed to the copy workers).
fn many_dirs(src: &Path) {
    for d in 0..30 {
        for s in 0..3 {
            let dir = src.join(format!("d{d:02}/s{s}"));
            for f in 0..6 {
                write(
                    dir.join(format!("f{f}")),
                    bytes(100 * f + 1, (d * 100 + s * 10 + f) as u64),
                );
            }
        }
        write(src.join(format!("d{d:02}.txt")), "x");
        if d % 6 == 0 {
            write(src.join(format!("d{d:02}/big")), bytes(1_200_000, d as u64));
        }
    }
}

/// The change lines of a log or console text: no timestamps, REPLICA's path as `REPLICA`, and
/// neither the start nor the summary.
fn changes(text: &str, replica: &Path) -> Vec<String> {
    let replica = replica.display().to_string();
    text.lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter(|l| !l.starts_with("foldersync ") && !l.starts_with("pass finished"))
        .map(|l| l.replace(&replica, "REPLICA"))
        .collect()
}

/// One `--once` run from `env`'s SOURCE into `replica`, its log in `log`: the change lines of
/// the log and of the console.
fn run(env: &Env, replica: &Path, log: &Path, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let out = std::process::Command::new(BIN)
        .arg(&env.src)
        .arg(replica)
        .arg("-l")
        .arg(log)
        .arg("--state-dir")
        .arg(env.state())
        .arg("--once")
        .args(extra)
        .output()
        .expect("run foldersync");
    assert!(out.status.success(), "{out:?}");
    let console = String::from_utf8_lossy(&out.stderr);
    let logged = fs::read_to_string(log).unwrap();
    (changes(&logged, replica), changes(&console, replica))
}

#[test]
fn a_pass_says_its_changes_in_the_same_order_every_time() {
    let env = Env::new();
    many_dirs(&env.src);
    let mut seen = Vec::new();
    for (i, extra) in [[].as_slice(), &[], &["--dry-run"], &["--dry-run"]]
        .iter()
        .enumerate()
    {
        let replica = env.root.join(format!("rep{i}"));
        let log = env.root.join(format!("logs/{i}.log"));
        let (logged, console) = run(&env, &replica, &log, extra);
        assert_eq!(logged, console, "the log file and the console agree");
        // Parents before children: a file's directory was said before the file.
        for (n, line) in logged.iter().enumerate() {
            if let Some(file) = line
                .strip_prefix("copied ")
                .or(line.strip_prefix("[dry run] copied "))
            {
                let path = file.split(" (").next().unwrap();
                if let Some((dir, _)) = path.rsplit_once('/') {
                    let made = format!("created directory {dir}");
                    let before = logged[..n].iter().any(|l| l.ends_with(&made));
                    assert!(
                        before,
                        "{line:?} came before {made:?}:\n{}",
                        logged.join("\n")
                    );
                }
            }
        }
        seen.push(logged);
    }
    assert!(seen[0].len() > 300, "{:?}", seen[0]);
    assert_eq!(seen[0], seen[1], "two passes over the same trees");
    assert_eq!(seen[2], seen[3], "two dry runs over the same trees");
    // Within a step, in path order: a dry run has one (nothing is kept for renames).
    let path = |line: &str| {
        let rest = line.trim_start_matches("[dry run] ");
        let rest = (rest.strip_prefix("created directory "))
            .or(rest.strip_prefix("copied "))
            .unwrap_or(rest);
        rest.split(" (").next().unwrap_or_default().to_string()
    };
    let mut sorted = seen[2][1..].to_vec();
    sorted.sort_by(|a, b| Path::new(&path(a)).cmp(Path::new(&path(b))));
    assert_eq!(seen[2][1..], sorted[..]);
}
