//! Which of a batch's files are compared by content after its runs, decided: those rsync's
//! quick check may pass over although their bytes differ (see [`super::super::suspects`]).

use std::collections::HashMap;
use std::path::PathBuf;

use super::Source;
use crate::dir::{Kind, Meta, Stamp};
use crate::remote::proof::Proof;
use crate::remote::work::{sent_key, Sent, Work};

/// The batch's entries to compare if rsync sends nothing for them: files that changed since a
/// run sent them (or, not sent since, since the last pass's mark), that came in from elsewhere,
/// or that lie in an unproven directory (as `proof` has it once the plan's doubts are in).
pub fn named(
    work: &Work,
    source: &Source,
    sent: &HashMap<PathBuf, Sent>,
    proof: &Proof,
) -> Vec<PathBuf> {
    let named = |p: &&PathBuf| {
        source.meta(p).is_some_and(|m| {
            m.kind == Kind::File
                && (work.verify.contains(*p)
                    || proof.unproven(p)
                    || changed(&m, sent.get(*p), proof.mark))
        })
    };
    work.entries.iter().filter(named).cloned().collect()
}

/// Whether SOURCE's file (`m`) may have changed since REPLICA's copy was made: it differs from
/// what a run sent, or, not sent since the last pass began (`mark`), its ctime is not earlier;
/// without a pass to go by, any file may have.
pub fn changed(m: &Meta, sent: Option<&Sent>, mark: Option<Stamp>) -> bool {
    match sent {
        Some(s) => *s != sent_key(m),
        None => mark.is_none_or(|mark| m.ctime >= mark),
    }
}
