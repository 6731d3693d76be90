//! Writers in SOURCE cannot stall the mirror: held removals and arrivals are matched through an
//! index (not every arrival against every held entry, each listed again), and a warning about
//! one path is said once per pass however often the path is touched.

use std::time::Instant;

use super::*;

const DIRS: usize = 1_500;

#[test]
fn many_moves_and_arrivals_do_not_stall_a_later_mkdir() {
    let _heavy = heavy();
    let env = Env::new();
    for i in 0..DIRS {
        write(env.src.join(format!("gone/d{i:04}/a")), "a");
    }
    let mut run = watching(&env, &["-i", "1h"]);
    env.converges(Duration::from_secs(30));

    // 1,500 directories moved out of SOURCE (held a moment, in case they come back under
    // another name), 1,500 new ones made (each looked for among the held: they come after the
    // moves, in time and in a batch's order), then one more once the mirror is at them.
    let away = env.root.join("away");
    mkdir(&away);
    for i in 0..DIRS {
        let name = format!("d{i:04}");
        fs::rename(env.src.join("gone").join(&name), away.join(&name)).unwrap();
    }
    for i in 0..DIRS {
        write(env.src.join(format!("new/n{i:04}/b")), "b");
    }
    wait_for(QUICK, "the mirror at the new directories", || {
        env.rep.join("new").is_dir()
    });
    fs::create_dir(env.src.join("late")).unwrap();
    let made = Instant::now();
    while !env.rep.join("late").is_dir() && made.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = made.elapsed();
    eprintln!("late reached REPLICA {took:?} after the mkdir");
    // 2 s, as the issue asks. `late` may wait for the batch making the 1,500 new directories
    // to end: linear work, about 1 ms a directory in an unoptimised build on a busy machine
    // (up to 1.9 s seen beside the other tests), hence more time there. The code before issue
    // 18 took 25 to 56 s here.
    let bound = Duration::from_secs(if cfg!(debug_assertions) { 4 } else { 2 });
    assert!(
        took < bound,
        "a mkdir after 1,500 moves and 1,500 arrivals took {took:?} to reach REPLICA"
    );
    // The moved-away directories go (what became of the new ones: see the next test).
    wait_for(
        Duration::from_secs(30),
        "the moved-away directories removed",
        || names(&env.rep.join("gone")).is_empty(),
    );
    run.stop();
}

/// Directories made while the watcher catches up with many others moved away must all reach
/// REPLICA. They do not on 4f06146: notify (8.2.2) passes a new directory's Create event on at
/// once but adds its watch only once it has read every queued event and removed the watches of
/// the directories moved away (each removal scans every watch). foldersync walks the new
/// directory on the event, before the watch exists; what is made in it between that walk and
/// the watch is never reported, and no later look walks it again: those directories are missing
/// until the next full pass, with no sign of lost events. Now a new directory is walked again
/// once the events have been quiet (notify has caught up and watches it).
#[test]
fn directories_made_while_the_watcher_catches_up_are_mirrored() {
    const MOVED: usize = 3_000;
    let _heavy = heavy();
    let env = Env::new();
    for i in 0..MOVED {
        write(env.src.join(format!("old/d{i:04}/a")), "a");
    }
    let mut run = watching(&env, &["-i", "1h"]);
    env.converges(Duration::from_secs(30));
    let away = env.root.join("away");
    mkdir(&away);
    for i in 0..MOVED {
        let name = format!("d{i:04}");
        fs::rename(env.src.join("old").join(&name), away.join(&name)).unwrap();
    }
    // A writer at work for a second or two (not all at once: the window is while the watcher
    // catches up).
    for i in 0..DIRS {
        write(env.src.join(format!("new/n{i:04}/b")), "b");
        std::thread::sleep(Duration::from_millis(1));
    }
    let missing = || {
        names(&env.src.join("new"))
            .into_iter()
            .filter(|n| !env.rep.join("new").join(n).join("b").exists())
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !missing().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = missing();
    assert!(
        left.is_empty(),
        "{} of {DIRS} new directories never reached REPLICA (from {} to {})",
        left.len(),
        left[0],
        left[left.len() - 1]
    );
    env.converges(Duration::from_secs(30));
    run.stop();
}

#[test]
fn a_fifo_touched_over_and_over_is_said_once_per_pass() {
    const FIFOS: usize = 1_000;
    let _heavy = heavy();
    let env = Env::new();
    write(env.src.join("data.txt"), "data");
    for i in 0..FIFOS {
        fifo(&env.src.join(format!("p{i:04}")));
    }
    let mut run = watching(&env, &["-i", "1h"]);
    let said = || env.log_text().matches("skipped fifo").count();
    wait_for(QUICK, "the first pass's warnings", || said() >= FIFOS);

    let started = Instant::now();
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
    };
    // Sweeps over all of them, as a script in a loop would, each about a debounce apart (a
    // tighter loop only overflows the kernel's queue, and lost events cost one pass).
    let mut touches = 0;
    while started.elapsed() < Duration::from_secs(5) {
        for i in 0..FIFOS {
            let path = env.src.join(format!("p{i:04}"));
            let _ = rustix::fs::utimensat(
                rustix::fs::CWD,
                &path,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            );
            touches += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever is still queued is looked at; then the count is read.
    write(env.src.join("marker.txt"), "after the touches");
    wait_for(Duration::from_secs(60), "the marker", || {
        env.rep.join("marker.txt").exists()
    });
    let passes = env.log_text().matches("pass finished").count();
    let warnings = said();
    assert!(
        warnings <= FIFOS * (passes + 1),
        "{warnings} warnings about {FIFOS} fifos touched {touches} times, in {passes} passes \
         (at most one each per pass)"
    );
    eprintln!("{warnings} warnings, {touches} touches, {passes} passes");
    run.stop();
}
