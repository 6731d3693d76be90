//! The connection to the remote machine: one multiplexed ssh connection (a ControlMaster socket
//! in a private directory) that every rsync and remote command rides on, so that each pays a
//! session, not a handshake. ssh runs in batch mode (a password or host-key prompt fails
//! instead of hanging a daemon); host-key checking is left as the user's ssh has it. The user's
//! `--rsh` is split the way rsync splits `-e`, and our options come first, since ssh takes the
//! first value it is given for each.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::stop::Stop;

/// How long a connection may take to come up (ssh's own ConnectTimeout is less).
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// The ssh connection to a remote REPLICA's machine.
pub struct Ssh {
    /// The user's ssh command, split: the program, then its arguments.
    words: Vec<String>,
    destination: String,
    /// Private (0700) directory holding the control socket and the master's error output.
    dir: tempfile::TempDir,
    master: Option<Child>,
    stop: Stop,
}

/// Splits an ssh command line as rsync splits `-e`: on spaces, with single or double quotes
/// keeping spaces inside a word; no backslash escapes.
pub fn split_rsh(rsh: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in rsh.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, ' ') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!(
            "--rsh '{}' has an unclosed quote",
            crate::escape::text(rsh)
        ));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() || words[0].is_empty() {
        return Err("--rsh is empty".into());
    }
    Ok(words)
}

/// One word for rsync's `-e`, quoted so that rsync splits it back into the same word.
fn rsync_word(word: &str) -> Result<String, String> {
    if !word.is_empty() && !word.contains([' ', '\'', '"']) {
        Ok(word.to_string())
    } else if !word.contains('\'') {
        Ok(format!("'{word}'"))
    } else if !word.contains('"') {
        Ok(format!("\"{word}\""))
    } else {
        Err(format!(
            "--rsh word '{}' holds both kinds of quote, which rsync cannot pass on",
            crate::escape::text(word)
        ))
    }
}

/// `arg` quoted for a POSIX shell: inside single quotes, which keep every byte but the single
/// quote itself, written `'\''`.
pub fn quote(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len() + 2);
    out.push(b'\'');
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

impl Ssh {
    pub fn new(rsh: &str, destination: String, stop: Stop) -> Result<Ssh, String> {
        let words = split_rsh(rsh)?;
        for word in &words {
            rsync_word(word)?;
        }
        // A short path: a control socket's path must fit in 108 bytes.
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() < 60 {
            base
        } else {
            PathBuf::from("/tmp")
        };
        let dir = tempfile::Builder::new()
            .prefix("foldersync-")
            .tempdir_in(&base)
            .map_err(|e| format!("cannot make a private directory for ssh: {e}"))?;
        Ok(Ssh {
            words,
            destination,
            dir,
            master: None,
            stop,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("cm")
    }

    /// Our options, which come before the user's: batch mode, and the shared connection.
    fn ours(&self, master: bool) -> Vec<String> {
        let mut opts = vec![
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            format!("ControlPath={}", self.socket().display()),
        ];
        if master {
            opts.extend(
                [
                    "ControlMaster=yes",
                    "ControlPersist=no",
                    "ServerAliveInterval=10",
                    "ServerAliveCountMax=3",
                    "ConnectTimeout=10",
                ]
                .iter()
                .flat_map(|o| ["-o".to_string(), o.to_string()]),
            );
        } else {
            // Every other session rides on the master, or fails at once: with the master gone
            // (a link that died without a reset), ssh would otherwise open a connection of its
            // own and hang in it until rsync's --timeout. A failure here is a lost connection,
            // and the master is made again, with the user's options.
            opts.extend(
                ["ControlMaster=no", "ProxyCommand=false"]
                    .iter()
                    .flat_map(|o| ["-o".to_string(), o.to_string()]),
            );
        }
        opts
    }

    /// The ssh command line for rsync's `-e`: the user's, with our options after the program.
    pub fn rsync_rsh(&self) -> String {
        let mut words = vec![self.words[0].clone()];
        words.extend(self.ours(false));
        words.extend(self.words[1..].iter().cloned());
        words
            .iter()
            .filter_map(|w| rsync_word(w).ok())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self, master: bool) -> Command {
        let mut cmd = Command::new(&self.words[0]);
        cmd.args(self.ours(master)).args(&self.words[1..]);
        // Its own process group: a Ctrl+C on the terminal is foldersync's to handle; and it
        // ends when foldersync does, however that ends.
        cmd.process_group(0);
        crate::stop::die_with_us(&mut cmd);
        cmd
    }

    /// Opens the shared connection (again, if it was lost). The error is ssh's own message.
    pub fn connect(&mut self) -> Result<(), String> {
        self.disconnect();
        let errors = self.dir.path().join("master.err");
        let err_file = fs::File::create(&errors).map_err(|e| format!("cannot start ssh: {e}"))?;
        let mut cmd = self.command(true);
        cmd.arg("-N")
            .arg(&self.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run '{}': {e}", crate::escape::text(&self.words[0])))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let said = fs::read_to_string(&errors).unwrap_or_default();
                let said = said
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                let said = if said.is_empty() {
                    format!("ssh exited with {status}")
                } else {
                    said
                };
                return Err(format!(
                    "cannot connect to {}: {}",
                    self.destination,
                    crate::escape::text(&said)
                ));
            }
            if self.socket().exists() && self.check_master() {
                self.master = Some(child);
                return Ok(());
            }
            if self.stop.is_set() || started.elapsed() > CONNECT_WAIT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "cannot connect to {}: no connection after {} s",
                    self.destination,
                    CONNECT_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn check_master(&self) -> bool {
        let mut cmd = self.command(false);
        cmd.arg("-O")
            .arg("check")
            .arg(&self.destination)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// Whether the shared connection is up (its process runs and its socket is there).
    pub fn alive(&mut self) -> bool {
        match &mut self.master {
            Some(child) => matches!(child.try_wait(), Ok(None)) && self.socket().exists(),
            None => false,
        }
    }

    /// Closes the shared connection: the master is asked to stop taking sessions and ends when
    /// the last one has (a remote rsync may still be setting directory times after the local
    /// one is done), or is killed after a few seconds.
    pub fn disconnect(&mut self) {
        if let Some(mut child) = self.master.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let mut cmd = self.command(false);
                let _ = cmd
                    .arg("-O")
                    .arg("stop")
                    .arg(&self.destination)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.socket());
    }

    /// Runs `script` with `sh` on the remote machine, with `args` as `$1`, `$2`...: each passed
    /// inside single quotes, so that no name can break out of it.
    pub fn script(&self, script: &str, args: &[&OsStr]) -> io::Result<Output> {
        let mut remote = b"sh -c ".to_vec();
        remote.extend(quote(script.as_bytes()));
        remote.extend_from_slice(b" foldersync");
        for arg in args {
            remote.push(b' ');
            remote.extend(quote(arg.as_bytes()));
        }
        let mut cmd = self.command(false);
        cmd.arg("-T")
            .arg(&self.destination)
            .arg(OsStr::from_bytes(&remote))
            .stdin(Stdio::null());
        cmd.output()
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        self.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsh_splits_as_rsync_does() {
        assert_eq!(split_rsh("ssh").unwrap(), ["ssh"]);
        assert_eq!(
            split_rsh("ssh -p 2222  -i '/k e y' -o \"A=b c\"").unwrap(),
            ["ssh", "-p", "2222", "-i", "/k e y", "-o", "A=b c"]
        );
        assert!(split_rsh("ssh 'open").is_err());
        assert!(split_rsh("  ").is_err());
    }

    #[test]
    fn quoting_keeps_every_byte() {
        assert_eq!(quote(b"a b"), b"'a b'");
        assert_eq!(quote(b"it's"), b"'it'\\''s'");
        assert_eq!(quote(b"$(x)\n`y`"), b"'$(x)\n`y`'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(OsStr::from_bytes(
                &[b"printf %s ".as_slice(), &quote(b"a'b\"c $HOME\n\\")].concat(),
            ))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a'b\"c $HOME\n\\");
    }
}
