//! Model-based randomized test: a seeded generator makes random operations on SOURCE, with
//! random short pauses, while foldersync runs; once quiet, REPLICA must equal SOURCE exactly
//! (kinds, bytes, modes, mtimes, link targets), and `rsync -aHAXc --delete --dry-run
//! --itemize-changes SOURCE/ REPLICA/` must list nothing (contents compared, hard links,
//! extended attributes and ACLs). A failure prints its seed. More seeds:
//! `FOLDERSYNC_MODEL_SEEDS=100-199 cargo test model -- --nocapture`.
//!
//! Besides writes, appends, truncations, removals, renames, moves in and out, symlinks and type
//! changes, the operations include what issue 17 found the mirror getting wrong: same-size
//! rewrites that keep the mtime, deploys (`rsync -a` of a staged directory of same-size files
//! with a fixed or future mtime), fixed and future mtimes, extended attributes set (then,
//! sometimes, a rename), hard links across directories, and on even seeds the mirror stopped
//! (SIGSTOP) while more files are made than the kernel's event queue holds.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use walkdir::WalkDir;

use crate::util::*;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

const NAMES: &[&str] = &["a", "b", "c", "d", "e f", "ü", "g.txt"];

/// The directory at SOURCE's top where the overflow's files go; the operations leave it alone.
const CHURN: &str = "churn";

/// Fixed mtimes: 1980-01-01 (reproducible builds), 2100-01-01 (the future), and a recent one.
const MTIMES: &[u64] = &[315_532_800, 4_102_444_800, 1_700_000_000];

/// The current entries of a tree, as (relative path, is a real directory), without [`CHURN`].
fn entries(root: &Path) -> Vec<(PathBuf, bool)> {
    WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || e.file_name() != CHURN)
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                e.file_type().is_dir(),
            )
        })
        .collect()
}

struct World<'a> {
    src: &'a Path,
    outside: &'a Path,
    rng: Rng,
    log: Vec<String>,
    /// Deploys made so far: each stages a new version of the same names.
    deploys: u32,
    /// The last deploy's target, size and mtime: the next one often makes the next release
    /// there, files of the same size and mtime under new names (as a reproducible build does).
    release: Option<(PathBuf, usize, u64)>,
}

impl World<'_> {
    fn dirs(&self) -> Vec<PathBuf> {
        let mut d = vec![PathBuf::new()];
        d.extend(
            entries(self.src)
                .into_iter()
                .filter(|(_, dir)| *dir)
                .map(|(p, _)| p),
        );
        d
    }

    fn files(&self) -> Vec<PathBuf> {
        entries(self.src)
            .into_iter()
            .filter(|(p, dir)| {
                !dir && self
                    .src
                    .join(p)
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_file())
            })
            .map(|(p, _)| p)
            .collect()
    }

    fn any(&self) -> Vec<PathBuf> {
        entries(self.src).into_iter().map(|(p, _)| p).collect()
    }

    /// A fresh path in a random existing directory (it may exist already).
    fn new_path(&mut self) -> PathBuf {
        let dirs = self.dirs();
        let dir = self.rng.pick(&dirs).cloned().unwrap_or_default();
        let name = self.rng.pick(NAMES).copied().unwrap_or("a");
        dir.join(name)
    }

    fn content(&mut self) -> Vec<u8> {
        let len = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(100),
            2 => self.rng.below(10_000),
            _ => self.rng.below(200_000),
        };
        bytes(len, self.rng.next())
    }

    /// `rsync -a --delete` of a staged release into a directory of SOURCE (an existing one, or
    /// a new path): three files of one size, the version in their names, all with one fixed or
    /// future mtime, so the new ones look like the old ones by size and mtime.
    fn deploy(&mut self) -> String {
        self.deploys += 1;
        let staged = self.outside.join(format!("release{}", self.rng.next()));
        let series = self.release.clone().filter(|_| self.rng.below(2) == 0);
        let (mtime, size) = match &series {
            Some((_, size, mtime)) => (*mtime, *size),
            None => (MTIMES[self.rng.below(2)], [4096, 8192][self.rng.below(2)]),
        };
        let made = fs::create_dir(&staged).and_then(|_| {
            for name in ["app", "lib", "data"] {
                let f = staged.join(format!("{name}-{}.bin", self.deploys));
                fs::write(&f, bytes(size, self.rng.next()))?;
                let t = std::time::UNIX_EPOCH + Duration::from_secs(mtime);
                fs::File::options()
                    .write(true)
                    .open(&f)?
                    .set_times(fs::FileTimes::new().set_modified(t))?;
            }
            Ok(())
        });
        let dirs = self.dirs();
        let to = match (series, self.rng.pick(&dirs[1..]).cloned()) {
            (Some((to, ..)), _) => to,
            (None, Some(dir)) if self.rng.below(3) != 0 => dir,
            _ => self.new_path(),
        };
        self.release = Some((to.clone(), size, mtime));
        let status = made.and_then(|_| {
            Command::new("rsync")
                .args(["-a", "--delete"])
                .arg(format!("{}/", staged.display()))
                .arg(format!("{}/", self.src.join(&to).display()))
                .stderr(std::process::Stdio::null())
                .status()
        });
        let _ = fs::remove_dir_all(&staged);
        format!("deploy {size} B @{mtime} into {}: {status:?}", to.display())
    }

    /// One random operation; errors (a path that a previous step made impossible) are fine.
    fn step(&mut self) {
        let src = self.src.to_path_buf();
        let op = self.rng.below(23);
        let note = match op {
            0 | 1 => {
                let p = self.new_path();
                let data = self.content();
                let r = fs::write(src.join(&p), data);
                format!("write {} {r:?}", p.display())
            }
            2 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    use std::io::Write;
                    let data = self.content();
                    let r = fs::OpenOptions::new()
                        .append(true)
                        .open(src.join(&p))
                        .and_then(|mut f| f.write_all(&data));
                    format!("append {} {r:?}", p.display())
                }
                None => "append: no file".into(),
            },
            3 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let len = self.rng.below(5000) as u64;
                    let r = fs::OpenOptions::new()
                        .write(true)
                        .open(src.join(&p))
                        .and_then(|f| f.set_len(len));
                    format!("truncate {} {len} {r:?}", p.display())
                }
                None => "truncate: no file".into(),
            },
            4 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    // Same size, new bytes.
                    let len = fs::metadata(src.join(&p)).map(|m| m.len()).unwrap_or(0);
                    let r = fs::write(src.join(&p), bytes(len as usize, self.rng.next()));
                    format!("overwrite {} {r:?}", p.display())
                }
                None => "overwrite: no file".into(),
            },
            5 => match self.rng.pick(&self.any()).cloned() {
                Some(p) => {
                    let r = fs::remove_file(src.join(&p));
                    format!("rm {} {r:?}", p.display())
                }
                None => "rm: nothing".into(),
            },
            6 | 7 => {
                let p = self.new_path();
                let r = fs::create_dir(src.join(&p));
                format!("mkdir {} {r:?}", p.display())
            }
            8 => match self.rng.pick(&self.dirs()[1..]).cloned() {
                Some(p) => {
                    let r = fs::remove_dir_all(src.join(&p));
                    format!("rm -r {} {r:?}", p.display())
                }
                None => "rm -r: no dir".into(),
            },
            9 | 10 => match self.rng.pick(&self.any()).cloned() {
                Some(from) => {
                    let to = self.new_path();
                    let r = fs::rename(src.join(&from), src.join(&to));
                    format!("mv {} {} {r:?}", from.display(), to.display())
                }
                None => "mv: nothing".into(),
            },
            11 => {
                // Moved in from outside: a file or a small directory.
                let staged = self.outside.join(format!("in{}", self.rng.next()));
                let r1 = if self.rng.below(2) == 0 {
                    let data = self.content();
                    fs::write(&staged, data)
                } else {
                    fs::create_dir_all(staged.join("x/y"))
                        .and_then(|_| fs::write(staged.join("x/y/z"), b"moved in"))
                        .and_then(|_| fs::write(staged.join("top"), b"top"))
                };
                let to = self.new_path();
                let r = r1.and_then(|_| fs::rename(&staged, src.join(&to)));
                format!("move in {} {r:?}", to.display())
            }
            12 => match self.rng.pick(&self.any()).cloned() {
                Some(p) => {
                    let away = self.outside.join(format!("out{}", self.rng.next()));
                    let r = fs::rename(src.join(&p), away);
                    format!("move out {} {r:?}", p.display())
                }
                None => "move out: nothing".into(),
            },
            13 => {
                // Create or replace a symlink (atomically, as `ln -sfn` would).
                let p = self.new_path();
                let target = self.rng.pick(NAMES).copied().unwrap_or("a");
                let tmp = src.join(format!(".lnk{}", self.rng.next()));
                let r = std::os::unix::fs::symlink(target, &tmp)
                    .and_then(|_| fs::rename(&tmp, src.join(&p)));
                let _ = fs::remove_file(&tmp);
                format!("ln -sfn {target} {} {r:?}", p.display())
            }
            14 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let r = fs::remove_file(src.join(&p))
                        .and_then(|_| fs::create_dir(src.join(&p)))
                        .and_then(|_| fs::write(src.join(&p).join("inner"), b"inner"));
                    format!("file -> dir {} {r:?}", p.display())
                }
                None => "file -> dir: no file".into(),
            },
            15 => match self.rng.pick(&self.dirs()[1..]).cloned() {
                Some(p) => {
                    let data = self.content();
                    let r = fs::remove_dir_all(src.join(&p))
                        .and_then(|_| fs::write(src.join(&p), data));
                    format!("dir -> file {} {r:?}", p.display())
                }
                None => "dir -> file: no dir".into(),
            },
            17 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    // Same size, new bytes, and the old mtime put back; sometimes a rename
                    // right after.
                    let path = src.join(&p);
                    let r = fs::metadata(&path).and_then(|m| {
                        let mtime = m.modified()?;
                        let f = fs::OpenOptions::new().write(true).open(&path)?;
                        f.write_all_at(&bytes(m.len() as usize, self.rng.next()), 0)?;
                        f.set_times(fs::FileTimes::new().set_modified(mtime))
                    });
                    let mut note = format!("rewrite keeping size and mtime {} {r:?}", p.display());
                    if self.rng.below(2) == 0 {
                        let to = self.new_path();
                        let r = fs::rename(&path, src.join(&to));
                        note += &format!("; mv {} {} {r:?}", p.display(), to.display());
                    }
                    note
                }
                None => "rewrite: no file".into(),
            },
            18 => self.deploy(),
            19 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let mtime = MTIMES[self.rng.below(MTIMES.len())];
                    let t = std::time::UNIX_EPOCH + Duration::from_secs(mtime);
                    let r = fs::File::options()
                        .write(true)
                        .open(src.join(&p))
                        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(t)));
                    format!("touch -d @{mtime} {} {r:?}", p.display())
                }
                None => "touch: no file".into(),
            },
            20 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let value = format!("{}", self.rng.below(1000));
                    let name = ["user.a", "user.b"][self.rng.below(2)];
                    let r = xattr::set(src.join(&p), name, value.as_bytes());
                    let mut note = format!("setfattr -n {name} -v {value} {} {r:?}", p.display());
                    if self.rng.below(2) == 0 {
                        let to = self.new_path();
                        let r = fs::rename(src.join(&p), src.join(&to));
                        note += &format!("; mv {} {} {r:?}", p.display(), to.display());
                    }
                    note
                }
                None => "setfattr: no file".into(),
            },
            21 => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let to = self.new_path();
                    let r = fs::hard_link(src.join(&p), src.join(&to));
                    format!("ln {} {} {r:?}", p.display(), to.display())
                }
                None => "ln: no file".into(),
            },
            22 => {
                // A swap of two files (often a deploy's: the same size and mtime).
                let files = self.files();
                match (
                    self.rng.pick(&files).cloned(),
                    self.rng.pick(&files).cloned(),
                ) {
                    (Some(a), Some(b)) if a != b => {
                        let tmp = src.join(format!(".swap{}", self.rng.next()));
                        let r = fs::rename(src.join(&a), &tmp)
                            .and_then(|_| fs::rename(src.join(&b), src.join(&a)))
                            .and_then(|_| fs::rename(&tmp, src.join(&b)));
                        format!("swap {} {} {r:?}", a.display(), b.display())
                    }
                    _ => "swap: no two files".into(),
                }
            }
            _ => match self.rng.pick(&self.files()).cloned() {
                Some(p) => {
                    let mode = [0o600, 0o644, 0o755, 0o640][self.rng.below(4)];
                    chmod(src.join(&p), mode);
                    format!("chmod {mode:o} {}", p.display())
                }
                None => "chmod: no file".into(),
            },
        };
        self.log.push(note);
    }
}

/// The files the overflow makes: more than the kernel's queue holds events (each file makes
/// three: its creation, open and close).
fn overflow_files() -> usize {
    (max_queued_events() + 600).max(17_000)
}

/// Waits until the log has `n` lines with `needle`; whether it came to that within `within`.
fn wait_log_lines(env: &Env, needle: &str, n: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while env.log_text().matches(needle).count() < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// What `rsync -aHAXc --delete --dry-run --itemize-changes SOURCE/ REPLICA/` lists.
fn rsync_differences(env: &Env) -> String {
    let out = Command::new("rsync")
        .args(["-aHAXc", "--delete", "--dry-run", "--itemize-changes"])
        .arg(format!("{}/", env.src.display()))
        .arg(format!("{}/", env.rep.display()))
        .output()
        .expect("run rsync (tests/run.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn run_seed(seed: u64, ops: usize) {
    let env = Env::new();
    let outside = env.root.join("outside");
    mkdir(&outside);
    let mut world = World {
        src: &env.src,
        outside: &outside,
        rng: Rng::new(seed),
        log: Vec::new(),
        deploys: 0,
        release: None,
    };
    // Even seeds stop the mirror once, long enough for the kernel's queue to overflow: the
    // files go to directories watched from the start.
    let overflow = seed.is_multiple_of(2);
    if overflow {
        for d in 0..4 {
            mkdir(env.src.join(CHURN).join(format!("c{d}")));
        }
    }
    // A starting tree, mirrored by the first pass.
    for _ in 0..30 {
        world.step();
    }
    // SOURCE may become empty for a moment; the empty-source guard is tested elsewhere.
    let mut run = env.spawn(&["-i", "1h", "--allow-empty-source", "--log-level", "debug"]);
    env.wait_log("pass finished", 1, Duration::from_secs(20));
    for i in 0..ops {
        if overflow && i == ops / 2 {
            run.freeze();
            let files = overflow_files();
            for f in 0..files {
                let path = env.src.join(CHURN).join(format!("c{}/f{f}", f % 4));
                fs::File::create(path).unwrap();
            }
            world
                .log
                .push(format!("SIGSTOP; {files} files made in {CHURN}/"));
            // What happens next while stopped is among the lost events.
            for _ in 0..10 {
                world.step();
            }
            world.log.push("SIGCONT".into());
            run.signal(libc::SIGCONT);
            // The rest of the operations come after the rescan pass, so that changes in
            // directories made while events were lost are left to the watcher.
            let _ = wait_log_lines(&env, "pass finished", 2, Duration::from_secs(30));
        }
        world.step();
        match world.rng.below(4) {
            0 => {}
            1 => std::thread::sleep(Duration::from_millis(world.rng.below(3) as u64)),
            2 => std::thread::sleep(Duration::from_millis(world.rng.below(20) as u64)),
            _ => std::thread::sleep(Duration::from_millis(world.rng.below(120) as u64)),
        }
    }
    // Quiet now: the watcher alone (the next pass is an hour away, rescans aside) must
    // converge, to what `tree` and rsync (contents, hard links, attributes) compare.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut said = String::new();
    loop {
        let looked = Instant::now();
        if env.mirrored() {
            said = rsync_differences(&env);
            if said.trim().is_empty() {
                break;
            }
        }
        if Instant::now() > deadline {
            let tail = world.log.len().saturating_sub(120);
            eprintln!("model test failed with seed {seed}; last operations:");
            for line in &world.log[tail..] {
                eprintln!("  {line}");
            }
            let log = env.log_text();
            let log: String = if overflow {
                log.lines()
                    .filter(|l| !l.contains(CHURN))
                    .map(|l| format!("{l}\n"))
                    .collect()
            } else {
                log
            };
            eprintln!("log (without the overflow's files):\n{log}");
            env.assert_mirrored();
            let said: Vec<&str> = said.lines().take(100).collect();
            panic!(
                "seed {seed}: rsync -aHAXc lists differences (first 100 lines):\n{}",
                said.join("\n")
            );
        }
        // A comparison of a large tree costs CPU the mirror needs: poll at most half the time.
        std::thread::sleep(looked.elapsed().max(Duration::from_millis(50)));
    }
    run.stop();
    assert!(
        temp_files(&env.rep).is_empty(),
        "seed {seed}: temporary files left"
    );
    if !overflow {
        let log = env.log_text();
        assert_eq!(
            log.matches("pass finished").count(),
            1,
            "seed {seed}: converged only through an extra pass:\n{log}"
        );
    }
}

fn seeds_from_env() -> Option<Vec<u64>> {
    let spec = std::env::var("FOLDERSYNC_MODEL_SEEDS").ok()?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                out.extend(a.trim().parse::<u64>().ok()?..=b.trim().parse::<u64>().ok()?)
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

#[test]
fn model_seed_1() {
    run_seed(1, 300);
}

#[test]
fn model_seed_2() {
    run_seed(2, 300);
}

#[test]
fn model_seed_3() {
    run_seed(3, 300);
}

#[test]
fn model_seed_4() {
    run_seed(4, 300);
}

/// Seeds named in FOLDERSYNC_MODEL_SEEDS (e.g. `5-40`), for a longer hunt outside CI.
#[test]
fn model_seeds_from_env() {
    if let Some(seeds) = seeds_from_env() {
        for seed in seeds {
            eprintln!("seed {seed}");
            run_seed(seed, 300);
        }
    }
}
