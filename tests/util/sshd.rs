//! An sshd on 127.0.0.1 of the test's own, for the remote-replica tests: generated host and
//! client keys, a known_hosts file that names the host key, a free port. Killed with the test.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether the tests can start an sshd here.
pub fn available() -> bool {
    Path::new(SSHD).exists()
        && Command::new("ssh-keygen")
            .arg("-?")
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// A command that starts sshd (given as its arguments), or none.
    wrap: Vec<String>,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_wrapped(&[])
    }

    /// A server started by `wrap` (`unshare ...`, to run it in other mounts), sshd's own command
    /// line appended.
    pub fn start_wrapped(wrap: &[&str]) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join(key))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen");
        }
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd's privilege separation directory (Debian's sshd refuses to start without it).
        let _ = fs::create_dir_all("/run/sshd");
        let mut sshd = Sshd {
            dir,
            port: 0,
            child: None,
            wrap: wrap.iter().map(|w| w.to_string()).collect(),
        };
        sshd.port = free_port();
        sshd.write_known_hosts(&sshd.host_key_line());
        sshd.run();
        sshd
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let config = format!(
            "Port {}\nListenAddress 127.0.0.1\nListenAddress [::1]\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\nUsePAM no\n\
             PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             MaxSessions 50\nMaxStartups 50\nLogLevel ERROR\n",
            self.port
        );
        fs::write(self.dir.path().join("sshd_config"), config).unwrap();
    }

    fn run(&mut self) {
        self.write_config();
        let log = fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        let mut command = match self.wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(SSHD);
                c
            }
            None => Command::new(SSHD),
        };
        let child = command
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The host key under every name this machine answers to: 127.0.0.1, localhost, ::1 and
    /// its host name (the remote tests reach this machine under each).
    fn host_key_line(&self) -> String {
        let public = fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let mut words = public.split_whitespace();
        let names: Vec<String> = ["127.0.0.1", "localhost", "::1", &host_name()]
            .iter()
            .map(|n| format!("[{n}]:{}", self.port))
            .collect();
        format!(
            "{} {} {}\n",
            names.join(","),
            words.next().unwrap(),
            words.next().unwrap()
        )
    }

    pub fn write_known_hosts(&self, text: &str) {
        fs::write(self.dir.path().join("known_hosts"), text).unwrap();
    }

    /// A known_hosts file that names another key for this host (a wrong host key).
    pub fn forget_host_key(&self) {
        let other = self.dir.path().join("other_key");
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&other)
            .status()
            .unwrap();
        let public = fs::read_to_string(other.with_extension("pub")).unwrap();
        let mut words = public.split_whitespace();
        self.write_known_hosts(&format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            words.next().unwrap(),
            words.next().unwrap()
        ));
    }

    /// The ssh command for `--rsh`: this server's port, the client key, the known_hosts file,
    /// and nothing from the user's own ssh configuration.
    pub fn rsh(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "ssh -F /dev/null -p {} -i {d}/client_key -o IdentitiesOnly=yes \
             -o UserKnownHostsFile={d}/known_hosts -o GlobalKnownHostsFile=/dev/null",
            self.port
        )
    }

    /// `path` on this server, as a REPLICA argument.
    pub fn remote(&self, path: &Path) -> String {
        format!("127.0.0.1:{}", path.display())
    }

    /// Stops the server and cuts every connection it has.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            for conn in children_of(pid) {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(conn.to_string())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port with the same keys.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Whether the server also answers on ::1 (it listens there where the machine has IPv6).
pub fn has_ipv6(port: u16) -> bool {
    TcpStream::connect(("::1", port)).is_ok()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// The processes whose parent is `pid` (sshd's per-connection processes).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path().join("stat");
        let Ok(stat) = fs::read_to_string(&path) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            if let Some(p) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.push(p);
            }
        }
    }
    out
}
