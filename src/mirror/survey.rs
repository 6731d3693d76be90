//! Before a first pass into a directory foldersync has not mirrored into before: how much of
//! it the pass would remove. A walk of both trees' listings (no `statx` but for kinds the
//! listing lacks), read-only, made at start-up only while there is no record of an earlier pass
//! (see [`crate::state`]).

use std::path::{Path, PathBuf};

use crate::dir::{tree, Dir, Kind};
use crate::filter::Filter;
use crate::own::{self, OwnFiles};

pub use crate::replica::Survey;

/// How many of the paths that would go are named.
const SAMPLE: usize = 8;

/// Surveys what making `replica` match `source` would remove.
pub fn survey(
    source: &Dir,
    replica: &Dir,
    own: &OwnFiles,
    filter: &Filter,
) -> std::io::Result<Survey> {
    let mut out = Survey::default();
    let mut todo: Vec<(PathBuf, Dir, Dir)> = vec![(PathBuf::new(), source.dup()?, replica.dup()?)];
    while let Some((rel, src, dst)) = todo.pop() {
        let theirs = src.list()?;
        for (name, kind) in dst.list()? {
            let path = rel.join(&name);
            let ours = own::is_temp_name(&name)
                || own.in_replica(&path)
                || own.leads_to_own(&path)
                || own.in_source(&path);
            let excluded = filter.excludes(&path, kind == Kind::Dir) && !filter.delete_excluded;
            if ours || excluded {
                continue;
            }
            let there = theirs
                .binary_search_by(|(n, _)| n.as_os_str().cmp(&name))
                .ok()
                .map(|i| theirs[i].1);
            match there {
                Some(k) if k == kind && kind == Kind::Dir => {
                    out.total += 1;
                    if let (Ok(s), Ok(d)) = (src.open_dir(&name), dst.open_dir(&name)) {
                        todo.push((path, s, d));
                    }
                }
                Some(k) if k == kind => out.total += 1,
                // Missing in SOURCE, or of another kind there: it goes, with what it holds.
                _ => {
                    let n = if kind == Kind::Dir {
                        tree::count(&dst, &name)
                    } else {
                        1
                    };
                    out.total += n;
                    out.removed += n;
                    if out.sample.len() < SAMPLE {
                        out.sample.push(path);
                    }
                }
            }
        }
    }
    out.sample.sort();
    Ok(out)
}

impl Survey {
    /// Whether a first pass should be refused: it would remove more than half of REPLICA and
    /// more than 20 entries.
    pub fn too_much(&self) -> bool {
        self.removed > 20 && self.removed * 2 > self.total
    }
}

/// The refusal, for a start-up error.
pub fn refusal(replica: &str, survey: &Survey, stranger: bool) -> String {
    let sample: Vec<String> = survey
        .sample
        .iter()
        .map(|p| crate::escape::rel(Path::new(p)).to_string())
        .collect();
    format!(
        "REPLICA {replica} holds {} entries {}, and the first pass would remove {} of them \
         ({}{}): refusing. If REPLICA is to become a copy of SOURCE, start again with \
         --adopt-replica{}",
        survey.total,
        if stranger {
            "and is not the directory foldersync mirrored into before (another file system or \
             another directory is there now)"
        } else {
            "that foldersync has not mirrored into before"
        },
        survey.removed,
        sample.join(", "),
        if survey.removed > sample.len() as u64 {
            ", ..."
        } else {
            ""
        },
        if stranger {
            ""
        } else {
            " (or bound what a pass may remove with --max-delete N)"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_would_go() {
        let tmp = tempfile::tempdir().unwrap();
        let (s, r) = (tmp.path().join("s"), tmp.path().join("r"));
        std::fs::create_dir_all(s.join("keep")).unwrap();
        std::fs::create_dir_all(r.join("keep/old")).unwrap();
        std::fs::write(s.join("same"), b"1").unwrap();
        std::fs::write(r.join("same"), b"2").unwrap();
        std::fs::write(r.join("keep/old/a"), b"").unwrap();
        std::fs::write(r.join("keep/old/b"), b"").unwrap();
        std::fs::write(r.join("extra"), b"").unwrap();
        std::fs::create_dir(s.join("extra2")).unwrap();
        std::fs::write(r.join("extra2"), b"").unwrap();
        let open = |p: &Path| Dir::open(&std::fs::canonicalize(p).unwrap()).unwrap();
        let got = survey(
            &open(&s),
            &open(&r),
            &OwnFiles::default(),
            &Filter::default(),
        )
        .unwrap();
        // keep, same; keep/old with a and b, extra, extra2 (a file where SOURCE has a directory).
        assert_eq!(got.total, 7);
        assert_eq!(got.removed, 5);
        assert_eq!(
            got.sample,
            [PathBuf::from("extra"), "extra2".into(), "keep/old".into()]
        );
        assert!(!got.too_much());
    }
}
