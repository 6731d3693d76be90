//! SOURCE's health, checked before every pass and batch: still the directory the mirror started
//! with (or one made in its place on the same device), readable, and not empty while REPLICA is
//! not. A problem is logged once, and again only when it changes; REPLICA is left alone until
//! SOURCE is back.

use std::sync::Arc;
use std::time::Instant;

use log::{error, info, warn};

use crate::escape::esc;
use crate::filter::Filter;
use crate::own::OwnFiles;
use crate::replica::Replica;
use crate::root::{self, AtPath, Root};
use crate::timing::{SOURCE_CHECK, SOURCE_RETRY};

/// What a check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    /// Usable, as before.
    Fine,
    /// Usable, but a new directory (replaced, or back after a problem): watch it anew and run
    /// a full pass.
    Renewed,
    /// Unusable: nothing is to be changed.
    Unusable,
}

/// SOURCE, held open, and what is known to be wrong with it.
pub struct SourceCheck {
    pub root: Root,
    allow_empty: bool,
    own: Arc<OwnFiles>,
    filter: Filter,
    problem: Option<String>,
    next_check: Option<Instant>,
}

/// Whether SOURCE holds no data that is mirrored (see [`crate::data`]). One definition, asked
/// at start-up and while running.
pub fn is_empty(source: &Root, own: &OwnFiles, filter: &Filter) -> bool {
    crate::data::holds_none(&source.dir, std::path::Path::new(""), own, filter).unwrap_or(false)
}

/// Why an empty SOURCE must not be mirrored, if it must not.
pub fn refuse_empty(
    source: &Root,
    own: &OwnFiles,
    filter: &Filter,
    allow: bool,
    replica: &dyn Replica,
) -> Option<String> {
    (!allow && is_empty(source, own, filter) && replica.has_content()).then(|| {
        format!(
            "SOURCE {} is empty but REPLICA {} is not: refusing to empty it (is SOURCE's disk \
             mounted?); use --allow-empty-source to allow it",
            esc(&source.path),
            replica.describe()
        )
    })
}

/// What keeps SOURCE from being mirrored now.
enum Trouble {
    /// Its root is gone, replaced by something unusable, or unreadable.
    Root(String),
    /// It is empty while REPLICA is not (the message says what REPLICA is left as).
    Empty(String),
}

impl SourceCheck {
    pub fn new(
        root: Root,
        allow_empty: bool,
        own: Arc<OwnFiles>,
        filter: Filter,
        watching: bool,
    ) -> SourceCheck {
        SourceCheck {
            root,
            allow_empty,
            own,
            filter,
            problem: None,
            next_check: watching.then(|| Instant::now() + SOURCE_CHECK),
        }
    }

    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// When the next periodic check is due (watch mode).
    pub fn check_due(&self) -> Option<Instant> {
        self.next_check
    }

    /// Checks SOURCE. A thorough check also reads it (that it is readable, and not empty while
    /// REPLICA is not); while SOURCE is unusable every check is thorough, so it is not declared
    /// back too soon.
    pub fn check(&mut self, thorough: bool, replica: &dyn Replica) -> Health {
        let thorough = thorough || self.problem.is_some();
        let mut renewed = false;
        let found = match self.root.now() {
            AtPath::Same => Ok(()),
            AtPath::Replaced(new) => {
                if self.problem.is_none() {
                    warn!(
                        "SOURCE {} was replaced by another directory; watching the new one",
                        esc(&self.root.path)
                    );
                }
                self.root = new;
                renewed = true;
                Ok(())
            }
            now => Err(Trouble::Root(
                root::problem("SOURCE", &self.root.path, &now).unwrap_or_default(),
            )),
        };
        let found = found.and_then(|()| {
            if !thorough {
                return Ok(());
            }
            // One look at the listing says both: SOURCE is readable, and whether it is empty.
            let empty = match crate::data::holds_none(
                &self.root.dir,
                std::path::Path::new(""),
                &self.own,
                &self.filter,
            ) {
                Ok(empty) => empty,
                Err(e) => {
                    return Err(Trouble::Root(format!(
                        "SOURCE {} is not readable: {e}",
                        esc(&self.root.path)
                    )))
                }
            };
            if !self.allow_empty && empty && replica.has_content() {
                return Err(Trouble::Empty(format!(
                    "SOURCE {} is empty while REPLICA is not: REPLICA is left untouched (restart \
                     with --allow-empty-source to let an empty SOURCE empty REPLICA)",
                    esc(&self.root.path)
                )));
            }
            Ok(())
        });
        let now = Instant::now();
        match found {
            Err(problem) => {
                let problem = match problem {
                    Trouble::Empty(said) => said,
                    Trouble::Root(why) => {
                        format!("{why}; REPLICA is left untouched until SOURCE is back")
                    }
                };
                if self.problem.as_ref() != Some(&problem) {
                    error!("{problem}");
                    self.problem = Some(problem);
                }
                if self.next_check.is_some() {
                    self.next_check = Some(now + SOURCE_RETRY);
                }
                Health::Unusable
            }
            Ok(()) => {
                if self.problem.take().is_some() {
                    info!("SOURCE {} is back", esc(&self.root.path));
                    renewed = true;
                }
                if self.next_check.is_some() {
                    self.next_check = Some(now + SOURCE_CHECK);
                }
                if renewed {
                    Health::Renewed
                } else {
                    Health::Fine
                }
            }
        }
    }
}
