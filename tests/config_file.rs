//! `foldersync --config`: several mirrors and replicas in one process, from real configuration
//! files; their mistakes refused at their file and line; the status file of all of them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

const QUICK: Duration = Duration::from_secs(15);

/// A test's directory with a configuration file in it; `{root}` in the text is the directory.
struct Setup {
    env: Env,
    conf: PathBuf,
}

impl Setup {
    fn new(text: &str) -> Setup {
        let env = Env::new();
        let conf = env.root.join("etc/foldersync.toml");
        write(&conf, text.replace("{root}", env.root.to_str().unwrap()));
        Setup { env, conf }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.root.join(rel)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.conf);
        cmd.current_dir(&self.env.root);
        cmd
    }

    fn spawn(&self) -> Running {
        let console = self.env.root.join("logs/console.txt");
        let mut cmd = self.cmd();
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&console).unwrap())
            .stderr(fs::File::create(&console).unwrap());
        Running::from(cmd.spawn().expect("spawn foldersync"), console)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("logs/fs.log")).unwrap_or_default()
    }
}

const HEAD: &str = "\
# shared by every mirror
interval = \"1h\"
log-path = \"{root}/logs/fs.log\"
status-file = \"{root}/status.json\"
state-dir = \"{root}/state\"
";

fn same(a: &Path, b: &Path) -> bool {
    tree(a) == tree(b)
}

fn converge(a: &Path, b: &Path) {
    wait_for(
        QUICK,
        &format!("{} to match {}", b.display(), a.display()),
        || same(a, b),
    );
}

fn status(path: &Path) -> (i32, String) {
    let out = Command::new(BIN).arg("status").arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn several_mirrors_converge_and_follow_changes() {
    let s = Setup::new(&format!(
        "{HEAD}\n[mirror.docs]\nsource = \"{{root}}/src\"\n\
         replicas = [\"{{root}}/r1\", \"../r2\"]\n\n\
         [mirror.www]\nsource = \"{{root}}/www\"\nreplicas = \"{{root}}/rw\"\nexclude = [\"*.tmp\"]\n"
    ));
    write(s.path("src/a/one"), "one");
    write(s.path("www/index.html"), "<html>");
    write(s.path("www/skip.tmp"), "x");
    let mut run = s.spawn();
    let src = s.path("src");
    converge(&src, &s.path("r1"));
    // A relative path is relative to the configuration file's directory.
    converge(&src, &s.path("r2"));
    wait_for(QUICK, "www mirrored", || s.path("rw/index.html").exists());
    assert!(
        !s.path("rw/skip.tmp").exists(),
        "the mirror's exclude holds"
    );

    // Changes are followed by every pair.
    write(s.path("src/a/two"), "two");
    fs::remove_file(s.path("src/a/one")).unwrap();
    write(s.path("www/new.html"), "new");
    converge(&src, &s.path("r1"));
    converge(&src, &s.path("r2"));
    wait_for(QUICK, "www follows", || s.path("rw/new.html").exists());

    // One log, each line marked with its pair.
    for label in [
        "[docs -> {root}/r1]",
        "[docs -> ../r2]",
        "[www -> {root}/rw]",
    ] {
        let label = label.replace("{root}", s.env.root.to_str().unwrap());
        wait_for(QUICK, &format!("{label} in the log"), || {
            s.log().contains(&format!("{label} copied"))
        });
    }
    assert!(
        s.log().contains("running 2 mirrors, 3 pairs"),
        "{}",
        s.log()
    );

    // The status file lists every pair; `foldersync status` shows them all.
    let file = s.path("status.json");
    wait_for(QUICK, "a healthy status of all pairs", || {
        status(&file).0 == 0
    });
    let (_, text) = status(&file);
    assert!(
        text.matches("mirror docs:").count() == 2 && text.contains("mirror www:"),
        "{text}"
    );
    assert!(text.contains("all 3 pairs healthy"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["pairs"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["pairs"][2]["mirror"], "www");

    run.stop();
    let (code, text) = status(&file);
    assert_eq!(code, 1, "stopped mirrors are not healthy: {text}");
    assert!(text.contains("UNHEALTHY: 3 of 3 pairs"), "{text}");
}

#[test]
fn one_replica_failing_while_the_other_converges() {
    let s = Setup::new(&format!(
        "{HEAD}\n[mirror.m]\nsource = \"{{root}}/src\"\n\
         replicas = [\"{{root}}/r1\", \"{{root}}/r2\"]\n"
    ));
    write(s.path("src/a"), "a");
    let mut run = s.spawn();
    let src = s.path("src");
    converge(&src, &s.path("r1"));
    converge(&src, &s.path("r2"));

    // r1 is removed and a file takes its place: that pair can write nothing.
    fs::remove_dir_all(s.path("r1")).unwrap();
    write(s.path("r1"), "not a directory");
    for i in 0..5 {
        write(s.path(&format!("src/new{i}")), format!("{i}"));
    }
    converge(&src, &s.path("r2"));
    let r1 = s.path("r1");
    wait_for(QUICK, "the failing pair said so", || {
        s.log()
            .lines()
            .any(|l| l.contains(&format!("[m -> {}]", r1.display())) && l.contains("REPLICA"))
    });
    assert_eq!(fs::read_to_string(&r1).unwrap(), "not a directory");
    let file = s.path("status.json");
    wait_for(QUICK, "one pair of two unhealthy", || {
        status(&file).1.contains("UNHEALTHY: 1 of 2 pairs")
    });
    let (code, text) = status(&file);
    assert_eq!(code, 1, "{text}");

    // It catches up once its directory is back.
    fs::remove_file(&r1).unwrap();
    fs::create_dir(&r1).unwrap();
    write(s.path("src/later"), "later");
    converge(&src, &r1);
    converge(&src, &s.path("r2"));
    run.stop();
}

/// What a refused configuration leaves: nothing but the test's own directories.
fn refused(s: &Setup, out: &Output, expect: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{expect}: {err}");
    let expect = expect.replace("{conf}", s.conf.to_str().unwrap());
    assert!(
        err.starts_with(&format!("foldersync: error: {expect}")),
        "expected {expect:?}\ngot {err}"
    );
    let mut left: Vec<String> = fs::read_dir(&s.env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["etc", "logs", "src", "www"], "nothing made: {err}");
    assert_eq!(fs::read_dir(s.path("logs")).unwrap().count(), 0, "no log");
}

#[test]
fn each_mistake_refused_at_its_line() {
    let www = "\n[mirror.www]\nsource = \"{root}/www\"\nreplicas = \"{root}/rw\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\nintervall = \"1m\"\n",
            "{conf}:5: mirror a: unknown key `intervall`",
        ),
        (
            "interval = \"soon\"\n[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\n",
            "{conf}:2: mirror a: `interval`: invalid value 'soon'",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\ndry-run = \"yes\"\n",
            "{conf}:5: mirror a: `dry-run` is true or false, not a string",
        ),
        (
            "[mirror.a]\nreplicas = \"{root}/r\"\n",
            "{conf}:2: mirror a: no source",
        ),
        ("[mirror.a]\nsource = \"{root}/src\"\n", "{conf}:2: mirror a: no replica"),
        (
            "interval = 5\n[mirror.a\nsource = \"{root}/src\"\n",
            "{conf}:3: not valid TOML",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\nlog-path = \"/tmp/x\"\n",
            "{conf}:5: mirror a: `log-path` is one for the whole process",
        ),
        (
            "[mirror.a]\nsource = \"{root}/nothing\"\nreplicas = \"{root}/r\"\n",
            "{conf}:3: mirror a: SOURCE",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/src/r\"\n",
            "{conf}:4: mirror a: REPLICA",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = [\"{root}/r\", \"{root}/rw/x\"]\n",
            "{conf}:8: mirror www: REPLICA",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/www/in\"\n",
            "{conf}:4: mirror a: REPLICA",
        ),
        (
            "[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\n\
             backup-dir = \"{root}/rw/old\"\n",
            "{conf}:5: mirror a: backup directory",
        ),
        (
            "log-path = \"{root}/r/fs.log\"\n[mirror.a]\nsource = \"{root}/src\"\nreplicas = \"{root}/r\"\n",
            "{conf}:2: mirror a: log file",
        ),
    ];
    for (text, expect) in cases {
        // Every case beside a good mirror, which must not be started either.
        let s = Setup::new(&format!("state-dir = \"{{root}}/state\"\n{text}{www}"));
        mkdir(s.path("www"));
        write(s.path("www/f"), "f");
        write(s.path("src/f"), "f");
        let out = s.cmd().output().unwrap();
        refused(&s, &out, expect);
    }
}

#[test]
fn a_directory_of_files_and_its_mistakes() {
    let s = Setup::new("");
    let dir = s.path("etc/conf.d");
    write(
        dir.join("00-defaults.toml"),
        format!(
            "once = true\nlog-path = \"{0}/logs/fs.log\"\nstate-dir = \"{0}/state\"\n",
            s.env.root.display()
        ),
    );
    let mirror = |name: &str, rep: &str| {
        format!(
            "[mirror.{name}]\nsource = \"{0}/src\"\nreplicas = \"{0}/{rep}\"\n",
            s.env.root.display()
        )
    };
    write(dir.join("10-a.toml"), mirror("a", "ra"));
    write(dir.join("20-b.toml"), mirror("b", "rb"));
    write(dir.join("README"), "not read");
    write(s.path("src/f"), "f");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&dir)
        .args(["-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A mirror named twice: both files named; nothing made.
    write(dir.join("30-again.toml"), mirror("a", "rc"));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let first = dir.join("10-a.toml");
    let again = dir.join("30-again.toml");
    assert!(
        err.contains(&format!(
            "{}:1: mirror a: defined twice, first at {}:1",
            again.display(),
            first.display()
        )),
        "{err}"
    );
    assert!(!s.path("rc").exists());

    // --config with SOURCE and REPLICA, or with another option: refused.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&dir)
        .arg(s.path("src"))
        .arg(s.path("rx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&dir)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run given with --config"));
    assert!(!s.path("rx").exists());
}
