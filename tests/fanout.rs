//! One SOURCE to several replicas under `--config`: one watcher shared by the pairs of a SOURCE,
//! a replica that is gone delaying no other, and SIGHUP's reload of the configuration (pairs
//! added, changed, removed, untouched; a broken configuration refused).

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::conf::{converge, Setup, QUICK};
use crate::util::sshd::{self, Sshd};
use crate::util::*;

const SIGHUP: i32 = 1;

/// The names of the process's threads.
fn threads(pid: i32) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_pairs_of_one_source_share_one_watcher() {
    let s = Setup::new(
        "[mirror.docs]\nsource = \"{root}/src\"\n\
         replicas = [\"{root}/r1\", \"{root}/r2\", \"{root}/r3\"]\n\n\
         [mirror.www]\nsource = \"{root}/www\"\nreplicas = \"{root}/rw\"\n",
    );
    write(s.path("src/a"), "a");
    write(s.path("www/i"), "i");
    let mut run = s.spawn();
    for r in ["r1", "r2", "r3"] {
        converge(&s.path("src"), &s.path(r));
    }
    // Watched changes reach every replica.
    write(s.path("src/d/new"), "new");
    fs::remove_file(s.path("src/a")).unwrap();
    for r in ["r1", "r2", "r3"] {
        converge(&s.path("src"), &s.path(r));
    }
    let names = threads(run.pid());
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    // docs: one shared watcher for three pairs; www: a watcher of its own.
    assert_eq!(count("watch-shared"), 1, "{names:?}");
    assert_eq!(count("watch"), 2, "{names:?}");
    run.stop();
}

/// lsyncd #58/#174: one SOURCE to two local replicas and one remote: the remote's server down
/// for a while delays neither local replica, and the remote catches up once it is back.
#[test]
fn a_replica_gone_delays_no_other_and_catches_up() {
    if !sshd::available() {
        eprintln!("skipped: no sshd here (tests/run.sh installs openssh-server)");
        return;
    }
    let mut server = Sshd::start();
    let s = Setup::new("");
    // The remote REPLICA is a directory of this test's, written by the server.
    let remote = s.path("remote");
    s.write_conf(&format!(
        "[mirror.site]\nsource = \"{{root}}/src\"\nrsh = \"{}\"\n\
         replicas = [\"{{root}}/local\", \"{{root}}/local2\", \"{}\"]\n",
        server.rsh(),
        server.remote(&remote)
    ));
    write(s.path("src/first"), "1");
    let mut run = s.spawn();
    wait_for(QUICK, "the local replicas to converge", || {
        let done = tree(&s.path("src")) == tree(&s.path("local"))
            && tree(&s.path("src")) == tree(&s.path("local2"));
        if !done && run.wait(Duration::ZERO).is_some() {
            panic!("foldersync ended: {}\n{}", run.console_text(), s.log());
        }
        done
    });
    converge(&s.path("src"), &remote);

    server.kill();
    let down = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut i = 0;
    // Writes while the server is down, over about 15 s: each reaches the local replica with its
    // usual latency (well under a second; 3 s leaves room for a loaded machine).
    while down.elapsed() < Duration::from_secs(15) {
        let name = format!("during{i}");
        let wrote = Instant::now();
        write(
            s.path("src").join(&name),
            "written while the server was down",
        );
        wait_for(
            Duration::from_secs(3),
            &format!("{name} in both local replicas"),
            || s.path("local").join(&name).exists() && s.path("local2").join(&name).exists(),
        );
        slowest = slowest.max(wrote.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("{i} writes while the server was down; slowest to the local replica: {slowest:?}");
    let log = s.log();
    assert!(
        log.contains("[ERROR]"),
        "the remote's trouble is said: {log}"
    );
    server.restart();
    converge(&s.path("src"), &s.path("local"));
    converge(&s.path("src"), &s.path("local2"));
    wait_for(Duration::from_secs(90), "the remote to catch up", || {
        tree(&s.path("src")) == tree(&remote)
    });
    s.wait_log("is usable again");
    run.stop();
}

const THREE: &str = "\
[mirror.keep]\nsource = \"{root}/keep\"\nreplicas = \"{root}/keep-r\"\n\n\
[mirror.change]\nsource = \"{root}/change\"\nreplicas = [\"{root}/change-r\", \"{root}/change-r2\"]\n\n\
[mirror.gone]\nsource = \"{root}/gone\"\nreplicas = \"{root}/gone-r\"\n";

const RELOADED: &str = "\
[mirror.keep]\nsource = \"{root}/keep\"\nreplicas = \"{root}/keep-r\"\n\n\
[mirror.change]\nsource = \"{root}/change\"\nreplicas = [\"{root}/change-r\", \"{root}/change-r2\"]\nexclude = [\"*.tmp\"]\n\n\
[mirror.added]\nsource = \"{root}/added\"\nreplicas = \"{root}/added-r\"\n";

#[test]
fn a_reload_adds_changes_and_removes_mirrors() {
    let s = Setup::new(THREE);
    for m in ["keep", "change", "gone", "added"] {
        write(s.path(m).join("f"), m);
    }
    let mut run = s.spawn();
    for r in ["keep", "change", "gone"] {
        converge(&s.path(r), &s.path(&format!("{r}-r")));
    }
    wait_for(QUICK, "keep's first pass in the status", || {
        s.pair_status("keep-r")
            .is_some_and(|p| !p["last_pass"].is_null())
    });
    let keep_before = s.pair_status("keep-r").unwrap();

    s.write_conf(RELOADED);
    run.signal(SIGHUP);
    s.wait_log(
        "configuration reloaded: 3 mirrors, 4 pairs running (1 added, 2 restarted, 1 removed)",
    );
    // Added: it converges and follows.
    converge(&s.path("added"), &s.path("added-r"));
    write(s.path("added/g"), "g");
    converge(&s.path("added"), &s.path("added-r"));
    // Changed: restarted with its new exclude, on both replicas.
    write(s.path("change/x.tmp"), "x");
    write(s.path("change/y"), "y");
    for r in ["change-r", "change-r2"] {
        wait_for(QUICK, "the changed mirror to follow", || {
            s.path(r).join("y").exists()
        });
        assert!(!s.path(r).join("x.tmp").exists(), "the new exclude holds");
    }
    // Removed: stopped, and no longer followed.
    s.wait_log("stopping gone -> ");
    write(s.path("gone/later"), "later");
    // Untouched: it goes on, without a pass, and follows.
    write(s.path("keep/g"), "g");
    converge(&s.path("keep"), &s.path("keep-r"));
    let keep_after = s.pair_status("keep-r").unwrap();
    assert_eq!(keep_before["started_at"], keep_after["started_at"]);
    assert_eq!(keep_before["last_pass"], keep_after["last_pass"], "no pass");
    assert!(!s.path("gone-r/later").exists(), "a removed mirror stopped");
    let log = s.log();
    assert!(log.contains("[gone -> "), "{log}");
    // Its last line says why it stopped: not the user's Ctrl+C.
    assert!(
        log.lines().any(|l| l.contains("[gone -> ")
            && l.contains("stopped: a reload of the configuration removed or changed this pair")),
        "{log}"
    );
    assert!(!log.contains("stopped by user"), "{log}");
    assert!(
        !log.contains("[keep -> ") || !log.contains("stopping keep"),
        "{log}"
    );
    // The status document lists the pairs running now.
    wait_for(QUICK, "the status to list the running pairs", || {
        s.pair_status("gone-r").is_none() && s.pair_status("added-r").is_some()
    });
    run.stop();
}

#[test]
fn a_broken_configuration_on_reload_is_refused_and_nothing_stops() {
    let s = Setup::new(THREE);
    for m in ["keep", "change", "gone"] {
        write(s.path(m).join("f"), m);
    }
    let mut run = s.spawn();
    for r in ["keep", "change", "gone"] {
        converge(&s.path(r), &s.path(&format!("{r}-r")));
    }
    // A key that does not exist: refused, with its reason.
    s.write_conf(&format!("{THREE}no-such-key = 1\n"));
    run.signal(SIGHUP);
    s.wait_log("the configuration is refused, the running mirrors go on as they were");
    let log = s.log();
    assert!(
        log.contains("[ERROR]") && log.contains("no-such-key"),
        "{log}"
    );
    // Two mirrors writing into one REPLICA: refused by the checks across mirrors.
    s.write_conf(&THREE.replace("{root}/gone-r", "{root}/keep-r"));
    run.signal(SIGHUP);
    wait_for(QUICK, "the second refusal", || {
        s.log().matches("the configuration is refused").count() == 2
    });
    // Every mirror goes on.
    for m in ["keep", "change", "gone"] {
        write(s.path(m).join("after"), "after");
    }
    for r in ["keep", "change", "gone"] {
        converge(&s.path(r), &s.path(&format!("{r}-r")));
    }
    assert!(!s.log().contains("stopping "), "{}", s.log());
    run.stop();
}

/// One `metrics` address for the whole process: every pair's series, labelled with its mirror
/// and replica.
#[test]
fn one_metrics_endpoint_labels_every_pair() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Setup::new(&format!(
        "metrics = \"127.0.0.1:{port}\"\n\
         [mirror.docs]\nsource = \"{{root}}/src\"\nreplicas = [\"{{root}}/r1\", \"{{root}}/r2\"]\n"
    ));
    write(s.path("src/a"), "a");
    let mut run = s.spawn();
    converge(&s.path("src"), &s.path("r1"));
    converge(&s.path("src"), &s.path("r2"));
    let root = s.env.root.display().to_string();
    let scrape = || {
        let out = Command::new("curl")
            .args(["-s", "-m", "5"])
            .arg(format!("http://127.0.0.1:{port}/metrics"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for r in ["r1", "r2"] {
        let line = format!(
            "foldersync_operations_total{{mirror=\"docs\",replica=\"{root}/{r}\",kind=\"copied\"}} 1"
        );
        wait_for(QUICK, &format!("{line} scraped"), || {
            scrape().lines().any(|l| l == line)
        });
    }
    assert_eq!(scrape().matches("# TYPE foldersync_state ").count(), 1);
    run.stop();
}
