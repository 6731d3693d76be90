//! The man page's sections beyond the options (EXIT STATUS, SIGNALS, FILES, LOG FORMAT,
//! EXAMPLES), as plain text: tests/generated.rs renders them into docs/man/foldersync.1.

/// A section: its heading and its items. An item with a tag is a tagged paragraph (`.TP`),
/// one without a plain paragraph.
pub type Section = (&'static str, &'static [(&'static str, &'static str)]);

/// The sections, in the order the page shows them.
pub const SECTIONS: &[Section] = &[
    (
        "EXIT STATUS",
        &[
            ("0", "Success, or (watching) stopped by Ctrl+C or SIGTERM."),
            (
                "1",
                "A --once pass finished but some paths failed (each was logged with its error), \
                 or it was refused by --max-delete, or (remote REPLICA) it was cut off by a lost \
                 connection or a replaced root. For foldersync status: the mirror is unhealthy.",
            ),
            (
                "2",
                "Bad command line or start-up input (missing SOURCE, nested paths, a log file or \
                 metrics address that cannot be used, ...): nothing was created, changed or \
                 removed. For foldersync status: the status file cannot be read.",
            ),
            (
                "20",
                "A --once run was stopped by Ctrl+C or SIGTERM before its pass ended: REPLICA \
                 may be mirrored only in part.",
            ),
            (
                "130",
                "A second Ctrl+C arrived while the first was being honoured: foldersync exited \
                 at once.",
            ),
        ],
    ),
    (
        "SIGNALS",
        &[
            (
                "SIGINT, SIGTERM",
                "Stop cleanly: the copy at work is finished or dropped, the status file says \
                 stopped, exit status 0 (20 for a --once run cut short). A second one within \
                 the stop exits at once.",
            ),
            (
                "SIGHUP",
                "Reopen the log file at its path (for log rotation); foldersync goes on. A log \
                 file deleted under it is made again on its own. With --config, also read the \
                 configuration again: mirrors added start, removed ones stop, changed ones \
                 restart, the others go on; a configuration with a mistake is refused (logged) \
                 and nothing changes.",
            ),
        ],
    ),
    (
        "FILES",
        &[
            (
                "sync_log.txt",
                "The default log file, in the working directory (-l/--log-path; none with \
                 --log-level off).",
            ),
            (
                "/var/lib/foldersync",
                "The state directory as root ($XDG_STATE_HOME/foldersync or \
                 ~/.local/state/foldersync otherwise; --state-dir): what foldersync remembers \
                 of each pair between runs, and its lock.",
            ),
            (
                "/etc/foldersync/NAME.conf",
                "The settings of the foldersync@NAME systemd unit (docs/systemd in the \
                 sources).",
            ),
            (
                "/run/foldersync/NAME.json",
                "The status file of the systemd unit (--status-file); read it with foldersync \
                 status.",
            ),
        ],
    ),
    (
        "LOG FORMAT",
        &[
            (
                "",
                "With --log-format text (the default), each line holds a millisecond timestamp \
                 in local time, the level in brackets and the message. A change to REPLICA is \
                 one line, with paths relative to the roots: copied a/x.txt (3 bytes), updated, \
                 created directory, created symlink, removed, renamed a -> b, linked, updated \
                 attributes of. A pass ends with a summary line (pass finished: ...); a periodic \
                 pass that changed nothing says it at debug level only.",
            ),
            (
                "",
                "With --log-format json, each line is one JSON object, in the log file and on \
                 the console: time (RFC 3339, UTC), level, msg (the text line's message), and \
                 for a change to REPLICA: op, path, and as they apply, to, size, bytes_written, \
                 appended, kept, dry_run.",
            ),
            (
                "",
                "Names are escaped the same way in both formats, so that no name can forge a \
                 line: a backslash is written \\\\, a newline \\n, other control characters \
                 \\x1b or \\u{9b}, and each byte that is not valid UTF-8 \\xff.",
            ),
        ],
    ),
    (
        "EXAMPLES",
        &[
            (
                "foldersync ~/Documents /mnt/backup/Documents",
                "Mirror continuously, a full pass every 10 minutes, log to ./sync_log.txt.",
            ),
            (
                "foldersync -i 30m -l /var/log/foldersync.log /srv/data /mnt/mirror/data",
                "A full pass every 30 minutes, log to /var/log/foldersync.log.",
            ),
            (
                "foldersync --once /srv/data /mnt/mirror/data",
                "One full pass, then exit (status 1 if any path failed).",
            ),
            (
                "foldersync --no-watch -i 1h /mnt/nfs/share /srv/mirror",
                "No watcher (for file systems that send no events): a full pass every hour.",
            ),
            (
                "foldersync /srv/data backup@nas:/volume1/data",
                "Mirror to another machine, over ssh and rsync.",
            ),
            (
                "foldersync --metrics 127.0.0.1:9108 --status-file /run/fs.json /srv/data /mnt/m",
                "Serve Prometheus metrics at http://127.0.0.1:9108/metrics and keep a status \
                 document; foldersync status /run/fs.json exits 1 when the mirror is unhealthy.",
            ),
            (
                "foldersync --log-format json --log-level off -q /srv/data /mnt/m",
                "Only warnings and errors, on the console, as JSON objects; no log file.",
            ),
        ],
    ),
];
