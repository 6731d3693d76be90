//! A test's directory with a `--config` file in it, for the tests of many pairs in one process
//! (fan-out, reload): `{root}` in the text is the directory, and every file starts with the
//! same process-wide keys (a log, a status file, a state directory, passes an hour apart).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{mkdir, tree, wait_for, write, Env, Running, BIN};

/// How long a configuration's pairs have to do what a test waits for.
pub const QUICK: Duration = Duration::from_secs(20);

pub struct Setup {
    pub env: Env,
    pub conf: PathBuf,
}

impl Setup {
    pub fn new(text: &str) -> Setup {
        let env = Env::new();
        let conf = env.root.join("etc/foldersync.toml");
        let s = Setup { env, conf };
        s.write_conf(text);
        s
    }

    /// Writes the configuration anew (the process-wide keys, then `text`).
    pub fn write_conf(&self, text: &str) {
        let text = format!(
            "interval = \"1h\"\nlog-path = \"{{root}}/logs/fs.log\"\n\
             status-file = \"{{root}}/status.json\"\nstate-dir = \"{{root}}/state\"\n{text}"
        );
        write(
            &self.conf,
            text.replace("{root}", self.env.root.to_str().unwrap()),
        );
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.env.root.join(rel)
    }

    pub fn spawn(&self) -> Running {
        let console = self.env.root.join("logs/console.txt");
        mkdir(self.env.root.join("logs"));
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.conf)
            .current_dir(&self.env.root)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&console).unwrap())
            .stderr(fs::File::create(&console).unwrap())
            .spawn()
            .expect("spawn foldersync");
        Running::from(child, console)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("logs/fs.log")).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str) {
        self.wait_log_count(needle, 1);
    }

    pub fn wait_log_count(&self, needle: &str, n: usize) {
        wait_for(QUICK, &format!("{n} × {needle:?} in the log"), || {
            self.log().matches(needle).count() >= n
        });
    }

    /// The pairs of the status document.
    fn status_pairs(&self) -> Vec<serde_json::Value> {
        let doc = fs::read(self.path("status.json"))
            .ok()
            .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok());
        doc.and_then(|d| d["pairs"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The status document's entry of the pair whose REPLICA ends with `replica`.
    pub fn pair_status(&self, replica: &str) -> Option<serde_json::Value> {
        self.status_pairs()
            .into_iter()
            .find(|p| p["replica"].as_str().is_some_and(|r| r.ends_with(replica)))
    }

    /// The replicas listed in the status document.
    pub fn status_replicas(&self) -> Vec<String> {
        (self.status_pairs().iter())
            .filter_map(|p| p["replica"].as_str().map(str::to_string))
            .collect()
    }
}

/// Waits until `b` holds what `a` holds.
pub fn converge(a: &Path, b: &Path) {
    wait_for(
        QUICK,
        &format!("{} to match {}", b.display(), a.display()),
        || tree(a) == tree(b),
    );
}
