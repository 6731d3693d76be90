//! The situations a batch's plan is tested with, and the plans expected of them.

use super::{Case, Expect, Node, CASE, MOVED, MOVED_IN, NOTHING, REMOVED};
use crate::replica::Look;

const BIG: u64 = crate::rules::RENAME_MIN;

pub(super) const CASES: &[Case] = &[
    Case {
        what: "a new file is sent alone",
        source: &[("a", Node::Dir), ("a/f", Node::File(3))],
        hints: &[("a/f", Look::ENTRY)],
        expect: Expect {
            alone: &["a/f"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a file changed since it was sent is sent again",
        source: &[("a", Node::Dir), ("a/f", Node::File(3))],
        hints: &[("a/f", Look::ENTRY)],
        sent_before: &["a/f"],
        expect: Expect {
            alone: &["a/f"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a file sent as SOURCE still has it is skipped",
        source: &[
            ("a", Node::Dir),
            ("a/f", Node::File(3)),
            ("a/g", Node::File(1)),
        ],
        hints: &[("a/f", Look::ENTRY), ("a/g", Look::ENTRY)],
        sent: &["a/f"],
        expect: Expect {
            alone: &["a/g"],
            skipped: &["a/f"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a deleted file is removed at once",
        source: &[("a", Node::Dir)],
        hints: &[("a/gone", REMOVED)],
        expect: Expect {
            alone: &["a/gone"],
            removed: &["a/gone"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a rename with both halves seen is made remotely first",
        source: &[("a", Node::Dir), ("a/new", Node::File(BIG))],
        hints: &[("a/old", MOVED), ("a/new", Look::ENTRY)],
        renames: &[("a/old", "a/new")],
        expect: Expect {
            alone: &["a/old", "a/new"],
            removed: &["a/old"],
            renamed: &[("a/old", "a/new")],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a rename whose new name SOURCE lacks is not made",
        source: &[("a", Node::Dir)],
        hints: &[("a/old", REMOVED), ("a/new", REMOVED)],
        renames: &[("a/old", "a/new")],
        expect: Expect {
            alone: &["a/old", "a/new"],
            removed: &["a/old", "a/new"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a rename's first half is held back",
        source: &[("a", Node::Dir)],
        hints: &[("a/old", MOVED)],
        expect: Expect {
            held: &["a/old"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a rename's first half is removed at once without hold",
        source: &[("a", Node::Dir)],
        hints: &[("a/old", MOVED)],
        hold: false,
        expect: Expect {
            alone: &["a/old"],
            removed: &["a/old"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a dry run holds nothing back and renames nothing",
        source: &[("a", Node::Dir), ("a/new", Node::File(BIG))],
        hints: &[("a/old", MOVED), ("a/new", Look::ENTRY)],
        renames: &[("a/old", "a/new")],
        dry_run: true,
        expect: Expect {
            alone: &["a/old", "a/new"],
            removed: &["a/old"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a held file is taken by a new file that may be it",
        source: &[
            ("a", Node::Dir),
            ("a/new", Node::File(BIG)),
            ("a/small", Node::File(1)),
        ],
        hints: &[("a/new", Look::ENTRY), ("a/small", Look::ENTRY)],
        held: &["a/old"],
        expect: Expect {
            alone: &["a/new", "a/small"],
            renamed: &[("a/old", "a/new")],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a new directory is sent whole",
        source: &[("d", Node::Dir), ("d/f", Node::File(1))],
        hints: &[("d", Look::TREE)],
        expect: Expect {
            whole: &["d"],
            touch: true,
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a directory made a moment ago waits to settle",
        source: &[("a", Node::Dir), ("a/d", Node::NewDir)],
        hints: &[("a/d", Look::TREE)],
        expect: Expect {
            settle: &["a/d"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a directory moved in is sent whole and doubted",
        source: &[
            ("a", Node::Dir),
            ("a/d", Node::Dir),
            ("a/d/f", Node::File(1)),
        ],
        hints: &[("a/d", MOVED_IN)],
        expect: Expect {
            whole: &["a/d"],
            doubt: &["a/d"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a held directory is taken by a new one with as many entries, which goes whole",
        source: &[
            ("a", Node::Dir),
            ("a/new", Node::Dir),
            ("a/new/f", Node::File(1)),
            ("a/new/g", Node::File(1)),
        ],
        hints: &[("a/new", Look::ENTRY)],
        held: &["a/old"],
        expect: Expect {
            whole: &["a/new"],
            renamed: &[("a/old", "a/new")],
            doubt: &["a/new"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "an excluded path is left out",
        source: &[("a", Node::Dir), ("a/x.tmp", Node::File(1))],
        hints: &[("a/x.tmp", Look::ENTRY), ("a/gone.tmp", REMOVED)],
        expect: NOTHING,
        ..CASE
    },
    Case {
        what: "a change in the root sets the root's times by touch",
        source: &[("f", Node::File(1))],
        hints: &[("", Look::ENTRY), ("f", Look::ENTRY)],
        expect: Expect {
            alone: &["f"],
            touch: true,
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "the root's times alone wait once for the change that is coming",
        hints: &[("", Look::ENTRY)],
        expect: Expect {
            wait_for_root: true,
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a path under a removed directory goes with it",
        source: &[("a", Node::Dir)],
        hints: &[("a/d", REMOVED), ("a/d/f", REMOVED), ("a/d/e/g", REMOVED)],
        expect: Expect {
            alone: &["a/d"],
            removed: &["a/d"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a path whose parent is now a file stands for that parent",
        source: &[("a", Node::Dir), ("a/b", Node::File(1))],
        hints: &[("a/b/f", Look::ENTRY)],
        expect: Expect {
            alone: &["a/b"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "the root looked at whole is a full pass",
        source: &[("f", Node::File(1))],
        hints: &[("f", Look::ENTRY), ("", Look::TREE)],
        retries: &[""],
        expect: Expect {
            whole_pass: true,
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "paths that all failed before are a repeat",
        source: &[
            ("a", Node::Dir),
            ("a/f", Node::File(1)),
            ("a/g", Node::File(1)),
        ],
        hints: &[("a/f", Look::ENTRY), ("a/g", Look::ENTRY)],
        retries: &["a/f", "a/g"],
        expect: Expect {
            alone: &["a/f", "a/g"],
            repeat: true,
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a retry among new paths is no repeat",
        source: &[
            ("a", Node::Dir),
            ("a/f", Node::File(1)),
            ("a/g", Node::File(1)),
        ],
        hints: &[("a/f", Look::ENTRY), ("a/g", Look::ENTRY)],
        retries: &["a/f"],
        expect: Expect {
            alone: &["a/f", "a/g"],
            ..NOTHING
        },
        ..CASE
    },
    Case {
        what: "a changed file with another name asks for a full pass",
        source: &[("a", Node::Dir), ("a/f", Node::Linked(1))],
        hints: &[("a/f", Look::ENTRY)],
        expect: Expect {
            alone: &["a/f"],
            other_names: true,
            ..NOTHING
        },
        ..CASE
    },
];
