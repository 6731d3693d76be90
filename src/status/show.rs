//! `foldersync status`: the status file read back and shown to people, with an exit status
//! that says whether the mirror is healthy.

use std::fs;
use std::path::Path;

use super::*;

/// `foldersync status PATH`: prints the status for people. Returns the exit status: 0 healthy,
/// 1 unhealthy, 2 unreadable.
pub fn print(path: &Path) -> crate::exit::Exit {
    let read = fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())
        })
        .and_then(|value| {
            if value.get("pairs").is_some() {
                serde_json::from_value::<super::board::Many>(value).map(Doc::Many)
            } else {
                serde_json::from_value::<Status>(value).map(|s| Doc::One(Box::new(s)))
            }
            .map_err(|e| e.to_string())
        });
    match read {
        Ok(Doc::One(doc)) => print_one(&doc),
        Ok(Doc::Many(many)) => print_many(&many),
        Err(e) => {
            eprintln!(
                "foldersync: error: cannot read status file {}: {}",
                esc(path),
                crate::escape::text(&e)
            );
            crate::exit::Exit::BadInput
        }
    }
}

/// What a status file holds: one pair (the command line), or several (`--config`).
enum Doc {
    One(Box<Status>),
    Many(super::board::Many),
}

/// Every pair of a `--config` process, each as a single pair is shown; the status of the worst.
fn print_many(many: &super::board::Many) -> crate::exit::Exit {
    let mut worst = crate::exit::Exit::Success;
    let mut unhealthy = 0;
    for (i, slot) in many.pairs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("mirror {}:", controls(&slot.mirror));
        if print_one(&slot.status) != crate::exit::Exit::Success {
            worst = crate::exit::Exit::Failed;
            unhealthy += 1;
        }
    }
    println!();
    match unhealthy {
        0 => println!("all {} pairs healthy", many.pairs.len()),
        n => println!("UNHEALTHY: {n} of {} pairs", many.pairs.len()),
    }
    worst
}

/// One pair's status for people; 0 healthy, 1 not.
fn print_one(doc: &Status) -> crate::exit::Exit {
    println!(
        "foldersync {} (pid {}): {}",
        controls(&doc.version),
        doc.pid,
        state_name(doc.state)
    );
    if let Some(reason) = &doc.reason {
        println!("  reason:  {}", controls(reason));
    }
    println!("  SOURCE:  {}", controls(&doc.source));
    println!("  REPLICA: {}", controls(&doc.replica));
    println!("  running since {}", controls(&doc.started_at));
    match &doc.last_pass {
        Some(p) => println!(
            "  last pass: {} at {}: {}",
            controls(&p.outcome),
            controls(&p.finished_at),
            p.counts
                .summary(Duration::from_secs_f64(p.seconds.max(0.0)))
        ),
        None => println!("  last pass: none yet"),
    }
    println!(
        "  bytes written since start: {}",
        indicatif::HumanBytes(doc.bytes_written)
    );
    println!(
        "  events applied since start: {}; pending: {}{}",
        doc.events_applied,
        doc.pending,
        if doc.pass_pending {
            " (a full pass is queued)"
        } else {
            ""
        }
    );
    if doc.failing > 0 {
        println!(
            "  failing now: {} paths, tried again until they succeed",
            doc.failing
        );
        for p in &doc.failing_paths {
            println!("    {}", controls(p));
        }
    }
    let age = (unix_now() - doc.updated_unix).max(0.0);
    println!("  status written {age:.0} s ago");
    match unhealthy(doc, age) {
        None => {
            println!("healthy");
            crate::exit::Exit::Success
        }
        Some(why) => {
            println!("UNHEALTHY: {}", controls(&why));
            crate::exit::Exit::Failed
        }
    }
}

/// Why a mirror is not healthy, if it is not.
fn unhealthy(doc: &Status, age_seconds: f64) -> Option<String> {
    let alive = rustix::process::Pid::from_raw(doc.pid as i32).is_some_and(|pid| {
        matches!(
            rustix::process::test_kill_process(pid),
            Ok(()) | Err(rustix::io::Errno::PERM)
        )
    });
    match doc.state {
        State::Stopped => return Some("the mirror was stopped".into()),
        State::Finished => {
            return doc
                .last_pass
                .as_ref()
                .filter(|p| p.counts.errors > 0 || p.outcome != "ok")
                .map(|p| format!("the pass ended with outcome {}", p.outcome));
        }
        State::SourceMissing | State::ReplicaMissing | State::Degraded => {
            return Some(
                doc.reason
                    .clone()
                    .unwrap_or_else(|| state_name(doc.state).into()),
            )
        }
        _ => {}
    }
    if !alive {
        return Some(format!("process {} is not running", doc.pid));
    }
    if let Some(problem) = &doc.log_problem {
        return Some(problem.clone());
    }
    if doc.failing > 0 {
        return Some(format!(
            "{} paths are failing now (see the log); they are tried again until they succeed",
            doc.failing
        ));
    }
    if let Some(p) = &doc.last_pass {
        // Errors on paths that are tried again count while they fail (above); the others
        // until the next pass.
        if p.counts.errors > p.retried {
            return Some(format!(
                "the last pass had {} errors (see the log)",
                p.counts.errors
            ));
        }
    }
    // The file is rewritten at least after every pass; a pass every interval.
    let stale_after = doc.interval_seconds * 2.0 + 60.0;
    if age_seconds > stale_after && doc.state != State::Passing {
        return Some(format!(
            "no update for {age_seconds:.0} s (more than two intervals)"
        ));
    }
    None
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Watching => "watching",
        State::PeriodicOnly => "periodic passes only",
        State::Passing => "full pass running",
        State::SourceMissing => "SOURCE missing",
        State::ReplicaMissing => "REPLICA missing",
        State::Finished => "finished (one pass)",
        State::Degraded => "degraded",
        State::Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rules() {
        let mut doc = Status::new(
            Path::new("/s"),
            "/r",
            Duration::from_secs(600),
            State::Watching,
        );
        assert_eq!(unhealthy(&doc, 1.0), None);
        assert!(unhealthy(&doc, 1300.0).is_some(), "stale");
        doc.state = State::SourceMissing;
        doc.reason = Some("SOURCE /s is unavailable".into());
        assert_eq!(
            unhealthy(&doc, 1.0).as_deref(),
            Some("SOURCE /s is unavailable")
        );
        doc.state = State::Watching;
        doc.pid = u32::MAX / 2;
        assert!(unhealthy(&doc, 1.0).unwrap().contains("not running"));
    }
}
