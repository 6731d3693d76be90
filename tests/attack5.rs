//! Attacks on `--config`'s reload (SIGHUP), its labels and its shared watcher, with the real
//! binary on real temporary directories: a reload that renames a mirror or spells a REPLICA
//! another way, a changed pair that cannot start, an edited exclude file, two replicas whose
//! names escape alike, a pair removed in the middle of a large copy.

use std::fs;

use crate::util::conf::{converge, Setup, QUICK};
use crate::util::*;

const SIGHUP: i32 = 1;

const TWO: &str = "\
[mirror.one]\nsource = \"{root}/s1\"\nreplicas = \"{root}/r1\"\n\n\
[mirror.two]\nsource = \"{root}/s2\"\nreplicas = \"{root}/r2\"\n";

/// Renaming a mirror in the file, or writing its REPLICA another way (a trailing slash), is the
/// same pair under a new label. The reload opened the new pair while the old one still held the
/// pair's lock, and refused the whole configuration with "another foldersync is mirroring the
/// same pair": the other foldersync was this very process.
#[test]
fn a_reload_that_renames_a_mirror_or_respells_its_replica_is_taken() {
    let s = Setup::new(TWO);
    write(s.path("s1/a"), "a");
    write(s.path("s2/b"), "b");
    let mut run = s.spawn();
    converge(&s.path("s1"), &s.path("r1"));
    converge(&s.path("s2"), &s.path("r2"));
    s.write_conf(
        &TWO.replace("mirror.one", "mirror.first")
            .replace("{root}/r2\"", "{root}/r2/\""),
    );
    run.signal(SIGHUP);
    s.wait_log_count("configuration reloaded", 1);
    let log = s.log();
    assert!(!log.contains("refused"), "{log}");
    assert!(!log.contains("another foldersync"), "{log}");
    // Both go on, under their new labels.
    write(s.path("s1/later"), "later");
    write(s.path("s2/later"), "later");
    converge(&s.path("s1"), &s.path("r1"));
    converge(&s.path("s2"), &s.path("r2"));
    assert!(s.log().contains("[first -> "), "{}", s.log());
    run.stop();
}

/// A changed pair is opened only once its old self has stopped. When the new one then cannot
/// start (here its new SOURCE is empty while REPLICA is not: the empty-SOURCE guard), the pair
/// was gone for good, and the reload even counted it as restarted: a reload with one mistake
/// stopped a mirror. The old configuration goes on instead.
#[test]
fn a_changed_pair_that_cannot_start_goes_on_as_it_was() {
    let s = Setup::new(TWO);
    write(s.path("s1/a"), "a");
    write(s.path("s2/b"), "b");
    mkdir(s.path("empty"));
    let mut run = s.spawn();
    converge(&s.path("s1"), &s.path("r1"));
    converge(&s.path("s2"), &s.path("r2"));
    s.write_conf(&TWO.replace("{root}/s1", "{root}/empty"));
    run.signal(SIGHUP);
    s.wait_log_count("configuration reloaded", 1);
    let log = s.log();
    assert!(log.contains("[ERROR]") && log.contains("is empty"), "{log}");
    assert!(!log.contains("1 restarted"), "not restarted: {log}");
    // The pair still mirrors its old SOURCE, and the status file still lists it.
    write(s.path("s1/later"), "later");
    converge(&s.path("s1"), &s.path("r1"));
    // Checked again as it was: REPLICA, made at start-up, is not said to be made anew.
    let log = s.log();
    assert_eq!(log.matches("created REPLICA").count(), 2, "{log}");
    wait_for(QUICK, "r1 in the status file", || {
        s.status_replicas().iter().any(|r| r.ends_with("/r1"))
    });
    run.stop();
}

/// `exclude-from` names a file: editing that file and reloading left the pair untouched (its
/// keys, compared as text, had not changed), so the new pattern was silently not applied.
#[test]
fn an_edited_exclude_from_file_is_taken_on_reload() {
    let s = Setup::new(
        "[mirror.one]\nsource = \"{root}/s1\"\nreplicas = \"{root}/r1\"\n\
         exclude-from = \"{root}/etc/excludes\"\n",
    );
    write(s.path("etc/excludes"), "*.old\n");
    write(s.path("s1/a"), "a");
    let mut run = s.spawn();
    wait_for(QUICK, "a copied", || s.path("r1/a").exists());
    write(s.path("etc/excludes"), "*.old\n*.skip\n");
    run.signal(SIGHUP);
    s.wait_log_count("configuration reloaded", 1);
    write(s.path("s1/x.skip"), "x");
    write(s.path("s1/b"), "b");
    wait_for(QUICK, "b copied", || s.path("r1/b").exists());
    assert!(
        !s.path("r1/x.skip").exists(),
        "the edited exclude file holds after the reload\n{}",
        s.log()
    );
    run.stop();
}

/// A pair's label (`[NAME -> REPLICA]` in every log line, and the identity a reload compares)
/// escaped control characters but not backslashes: a REPLICA named `r<newline>q` and one named
/// `r\nq` (a backslash and an n) had one label, so their log lines could not be told apart.
#[test]
fn replicas_whose_names_escape_alike_have_labels_of_their_own() {
    let s = Setup::new(
        "[mirror.m]\nsource = \"{root}/s\"\nreplicas = [\"{root}/r\\nq\", '{root}/r\\nq']\n",
    );
    write(s.path("s/a"), "a");
    let mut run = s.spawn();
    s.wait_log_count("pass finished", 2);
    let log = s.log();
    let labels: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| l.contains("pass finished"))
        .filter_map(|l| l.split_once("] ").and_then(|(_, r)| r.split_once(']')))
        .map(|(label, _)| label)
        .collect();
    let shown = format!("{labels:?}");
    assert_eq!(labels.len(), 2, "{shown}");
    run.stop();
}

/// A pair removed by a reload in the middle of a large copy: it stops at once, its temporary
/// file is gone, it leaves the status file, and its lock is let go (added back, it starts).
#[test]
fn a_pair_removed_during_a_large_copy_cleans_up_and_lets_go() {
    let s = Setup::new(TWO);
    write(s.path("s1/a"), "a");
    big_file(s.path("s1/huge.bin"), 4 << 30);
    write(s.path("s2/b"), "b");
    let mut run = s.spawn();
    wait_for(QUICK, "the large copy under way", || {
        s.path("r1").is_dir() && !temp_files(&s.path("r1")).is_empty()
    });
    s.write_conf("[mirror.two]\nsource = \"{root}/s2\"\nreplicas = \"{root}/r2\"\n");
    run.signal(SIGHUP);
    s.wait_log_count("configuration reloaded", 1);
    assert!(
        temp_files(&s.path("r1")).is_empty(),
        "a temporary file left"
    );
    assert!(!s.path("r1/huge.bin").exists());
    wait_for(QUICK, "r1 off the status file", || {
        let r = s.status_replicas();
        !r.is_empty() && !r.iter().any(|r| r.ends_with("/r1"))
    });
    fs::remove_file(s.path("s1/huge.bin")).unwrap();
    s.write_conf(TWO);
    run.signal(SIGHUP);
    s.wait_log_count("configuration reloaded", 2);
    converge(&s.path("s1"), &s.path("r1"));
    assert!(!s.log().contains("another foldersync"), "{}", s.log());
    run.stop();
}

/// SIGTERM right behind a SIGHUP that adds a mirror: the run loop could take the reload first
/// (both were ready) or be in it when the stop came, and the new pair was still made and started
/// after the stop (its REPLICA made, left empty as the process ended). Once asked to stop,
/// nothing new is made.
#[test]
fn a_reload_behind_a_stop_makes_nothing() {
    let s = Setup::new(TWO);
    write(s.path("s1/a"), "a");
    write(s.path("s2/b"), "b");
    for round in 0..6 {
        s.write_conf(TWO);
        let mut run = s.spawn();
        // Read by this run before it is written again.
        s.wait_log_count("running 2 mirrors", round + 1);
        converge(&s.path("s1"), &s.path("r1"));
        converge(&s.path("s2"), &s.path("r2"));
        let added = format!("new{round}");
        s.write_conf(&format!(
            "{TWO}\n[mirror.{added}]\nsource = \"{{root}}/s2\"\nreplicas = \"{{root}}/{added}\"\n"
        ));
        run.signal(SIGHUP);
        run.signal(libc::SIGTERM);
        let status = run.wait(QUICK).expect("exit after SIGTERM");
        assert!(status.success(), "{status:?}\n{}", run.console_text());
        assert!(
            !s.path(&added).exists(),
            "round {round}: REPLICA {added} made after the stop\n{}",
            s.log()
        );
    }
}
