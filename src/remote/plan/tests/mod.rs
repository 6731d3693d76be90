//! Unit tests of a remote batch's plan: no disk, only values. Each case is a small situation
//! (what SOURCE holds, the hints, what was sent and is held) and the plan expected of it, in
//! the manner of mutagen's `reconcile_test.go`.

mod cases;

use super::*;
use crate::dir::Id;
use crate::remote::proof::Proof;
use cases::CASES;

/// What SOURCE holds at a name, as a case writes it.
#[derive(Clone, Copy)]
enum Node {
    File(u64),
    /// A file with another name (two links).
    Linked(u64),
    Dir,
    /// A directory made a moment ago (its ctime is now).
    NewDir,
}

const NOW: i64 = 1_000_000;

fn meta(node: Node, ino: u64) -> Meta {
    let t = |sec| Stamp { sec, nsec: 0 };
    let (kind, size, nlink) = match node {
        Node::File(size) => (Kind::File, size, 1),
        Node::Linked(size) => (Kind::File, size, 2),
        Node::Dir | Node::NewDir => (Kind::Dir, 0, 2),
    };
    let ctime = t(if matches!(node, Node::NewDir) {
        NOW
    } else {
        1000
    });
    Meta {
        kind,
        perm: 0o644,
        uid: 1,
        gid: 1,
        size,
        blocks: size / 512,
        nlink,
        atime: t(1000),
        mtime: t(1000),
        ctime,
        id: Id { dev: 1, ino },
        mount_root: false,
        acl: false,
    }
}

/// SOURCE as a case writes it: the root, and the named entries.
fn source(nodes: &[(&str, Node)]) -> Source {
    let root = std::iter::once(("", Node::Dir));
    let metas = (root.chain(nodes.iter().copied()).enumerate())
        .map(|(i, (p, node))| (PathBuf::from(p), meta(node, i as u64 + 1)))
        .collect();
    Source { metas }
}

/// The reads, answered from SOURCE's values.
struct Fake<'a>(&'a Source);

const ROOT_LOOK: RootLook = RootLook {
    perm: 0o755,
    owner: None,
    xattrs: None,
};

impl Reads for Fake<'_> {
    fn proof(&mut self, rel: &Path) -> Option<String> {
        Some(format!("f:{}:{}", self.0.meta(rel)?.size, rel.display()))
    }

    fn inside(&mut self, tree: &Path) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<(PathBuf, bool)> = (self.0.metas.iter())
            .filter(|(p, _)| p.starts_with(tree) && *p != tree)
            .filter(|(p, _)| p.components().count() <= tree.components().count() + NEWCOMER_DEPTH)
            .map(|(p, m)| (p.clone(), m.kind == Kind::Dir))
            .collect();
        out.sort();
        out
    }

    fn fingerprint(&mut self, rel: &Path) -> Option<String> {
        let m = self.0.meta(rel)?;
        match m.kind {
            Kind::File if m.size >= crate::rules::RENAME_MIN => self.proof(rel),
            Kind::Dir => {
                let n = (self.0.metas.keys())
                    .filter(|p| p.parent() == Some(rel))
                    .count();
                (n > 0).then(|| format!("d:{n}"))
            }
            _ => None,
        }
    }

    fn root(&mut self) -> (Option<RootLook>, Option<Stamp>) {
        (Some(ROOT_LOOK), Some(Stamp { sec: 2000, nsec: 0 }))
    }
}

const MOVED: Look = Look {
    moved: true,
    ..Look::ENTRY
};
const REMOVED: Look = Look {
    removed: true,
    ..Look::ENTRY
};
const MOVED_IN: Look = Look {
    verify: true,
    ..Look::TREE
};

/// One situation.
struct Case {
    what: &'static str,
    source: &'static [(&'static str, Node)],
    hints: &'static [(&'static str, Look)],
    /// Renames the watcher saw.
    renames: &'static [(&'static str, &'static str)],
    /// Sent by an earlier batch as SOURCE has them now, and as SOURCE had them before a change.
    sent: &'static [&'static str],
    sent_before: &'static [&'static str],
    held: &'static [&'static str],
    retries: &'static [&'static str],
    hold: bool,
    dry_run: bool,
    expect: Expect,
}

const CASE: Case = Case {
    what: "",
    source: &[],
    hints: &[],
    renames: &[],
    sent: &[],
    sent_before: &[],
    held: &[],
    retries: &[],
    hold: true,
    dry_run: false,
    expect: NOTHING,
};

/// The plan expected, as lists of paths (in the plan's order).
#[derive(Debug, PartialEq)]
struct Expect {
    whole_pass: bool,
    repeat: bool,
    /// Sent alone (removed among them), and sent whole with `--delete`.
    alone: &'static [&'static str],
    removed: &'static [&'static str],
    whole: &'static [&'static str],
    renamed: &'static [(&'static str, &'static str)],
    held: &'static [&'static str],
    skipped: &'static [&'static str],
    settle: &'static [&'static str],
    doubt: &'static [&'static str],
    /// The guard sets the root's mtime after the last run.
    touch: bool,
    wait_for_root: bool,
    other_names: bool,
}

const NOTHING: Expect = Expect {
    whole_pass: false,
    repeat: false,
    alone: &[],
    removed: &[],
    whole: &[],
    renamed: &[],
    held: &[],
    skipped: &[],
    settle: &[],
    doubt: &[],
    touch: false,
    wait_for_root: false,
    other_names: false,
};

/// A plan as lists of paths, to compare with an [`Expect`].
#[derive(Debug, PartialEq)]
struct Got {
    flags: [bool; 5],
    lists: Vec<Vec<String>>,
    renamed: Vec<(String, String)>,
}

fn names<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Vec<String> {
    paths.into_iter().map(|p| p.display().to_string()).collect()
}

fn got(plan: &Plan) -> Got {
    let w = &plan.work;
    Got {
        flags: [
            plan.whole,
            plan.repeat,
            w.touch.is_some(),
            plan.wait_for_root,
            plan.other_names,
        ],
        lists: vec![
            names(&w.entries),
            names(plan.removed()),
            names(&w.trees),
            names(&plan.hold),
            names(&plan.skipped),
            names(&plan.settle),
            names(&plan.doubt),
        ],
        renamed: (plan.renames.iter())
            .map(|m| (m.from.display().to_string(), m.to.display().to_string()))
            .collect(),
    }
}

fn expected(e: &Expect) -> Got {
    let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    Got {
        flags: [
            e.whole_pass,
            e.repeat,
            e.touch,
            e.wait_for_root,
            e.other_names,
        ],
        lists: [
            e.alone, e.removed, e.whole, e.held, e.skipped, e.settle, e.doubt,
        ]
        .into_iter()
        .map(own)
        .collect(),
        renamed: (e.renamed.iter())
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect(),
    }
}

fn run(case: &Case) -> Plan {
    let src = source(case.source);
    let paths = |l: &[&str]| l.iter().map(PathBuf::from).collect::<Vec<_>>();
    let batch = Batch {
        renames: (case.renames.iter())
            .map(|(f, t)| (PathBuf::from(f), PathBuf::from(t)))
            .collect(),
        paths: (case.hints.iter())
            .map(|(p, look)| (PathBuf::from(p), *look))
            .collect(),
        retries: paths(case.retries).into_iter().collect(),
    };
    let mut sent = HashMap::new();
    for p in paths(case.sent) {
        sent.insert(p.clone(), sent_key(&src.meta(&p).expect("sent as it is")));
    }
    for p in paths(case.sent_before) {
        let mut before = src.meta(&p).expect("sent before");
        before.size += 1;
        sent.insert(p, sent_key(&before));
    }
    let known = Known {
        sent: &sent,
        held: paths(case.held),
        root_sent: Some(ROOT_LOOK),
        root_mtime: Some(Stamp { sec: 1000, nsec: 0 }),
        root_waited: false,
    };
    let wanted = |p: &Path, _: bool| !p.to_string_lossy().ends_with(".tmp");
    let rules = Rules {
        hold: case.hold,
        dry_run: case.dry_run,
        comparing: !case.dry_run,
        hard_links: true,
        files_from: true,
        touch: true,
        settle: Duration::from_secs(1),
        now: UNIX_EPOCH + Duration::from_secs(NOW as u64),
        wanted: &wanted,
    };
    decide(&batch, &src, &known, &rules, &mut Fake(&src))
}

#[test]
fn plans() {
    for case in CASES {
        let plan = run(case);
        assert_eq!(got(&plan), expected(&case.expect), "{}", case.what);
    }
}

#[test]
fn claims_pair_each_held_path_with_each_newcomer_but_its_own_contents() {
    let held = [PathBuf::from("d"), PathBuf::from("f")];
    let newcomers = [
        (PathBuf::from("d/x"), "f:1:x".to_string()),
        (PathBuf::from("e"), "d:1".to_string()),
    ];
    let pairs: Vec<(String, String)> = claims(&held, &newcomers)
        .into_iter()
        .map(|m| (m.from.display().to_string(), m.to.display().to_string()))
        .collect();
    let want = [("d", "e"), ("f", "d/x"), ("f", "e")];
    assert_eq!(pairs, want.map(|(f, t)| (f.to_string(), t.to_string())));
    let many: Vec<(PathBuf, String)> = (0..200)
        .map(|i| (PathBuf::from(format!("n{i}")), "d:1".to_string()))
        .collect();
    assert_eq!(claims(&held, &many).len(), MAX_CLAIMS);
}

#[test]
fn named_entries_are_files_that_may_differ() {
    let src = source(&[("f", Node::File(1)), ("g", Node::File(1)), ("d", Node::Dir)]);
    let mut work = Work {
        entries: ["f", "g", "d"].map(PathBuf::from).to_vec(),
        ..Work::default()
    };
    let mut sent = HashMap::new();
    let mut proof = Proof::default();
    proof.mark = Some(Stamp { sec: 500, nsec: 0 });
    // Changed since the last pass's mark, and never sent: both may differ.
    assert_eq!(names(&named(&work, &src, &sent, &proof)), ["f", "g"]);
    // Sent as they are: neither, unless it came in from elsewhere.
    for p in ["f", "g"] {
        sent.insert(PathBuf::from(p), sent_key(&src.meta(Path::new(p)).unwrap()));
    }
    work.verify.insert(PathBuf::from("g"));
    assert_eq!(names(&named(&work, &src, &sent, &proof)), ["g"]);
    proof.doubt([&PathBuf::new()]);
    assert_eq!(names(&named(&work, &src, &sent, &proof)), ["f", "g"]);
}

#[test]
fn a_file_may_differ_when_its_ctime_moved() {
    let at = |sec| Some(Stamp { sec, nsec: 0 });
    let mut m = meta(Node::File(1), 1);
    m.ctime = Stamp { sec: 100, nsec: 0 };
    let mut before = m;
    before.ctime = Stamp { sec: 99, nsec: 0 };
    // Sent as it is: the same; sent before its last change: perhaps not.
    assert!(!changed(&m, Some(&sent_key(&m)), at(200)));
    assert!(changed(&m, Some(&sent_key(&before)), at(200)));
    // Not sent since the last pass: by the pass's mark.
    assert!(!changed(&m, None, at(101)));
    assert!(changed(&m, None, at(100)));
    assert!(changed(&m, None, None), "no pass to go by");
}
