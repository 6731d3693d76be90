# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_foldersync_global_optspecs
    string join \n config= i/interval= l/log-path= once debounce= no-watch n/dry-run max-delete= exclude= exclude-from= delete-excluded c/checksum backup-dir= backup-versions= backup-max-age= status-file= metrics= v/verbose q/quiet log-level= log-format= allow-empty-source adopt-replica state-dir= no-hard-links no-xattrs modify-window= fsync e/rsh= h/help V/version
end

function __fish_foldersync_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_foldersync_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_foldersync_using_subcommand
    set -l cmd (__fish_foldersync_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c foldersync -n "__fish_foldersync_needs_command" -l config -d 'Run the mirrors a configuration file names (TOML; a directory: each of its *.toml files), instead of SOURCE and REPLICA. Options go in the file; only -v and -q may be given beside it' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -s i -l interval -d 'Time between full passes: seconds (1800) or a duration (500ms, 30s, 10m, 1h)' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -s l -l log-path -l log_path -d 'Log file, appended to. It may live inside SOURCE (it is never mirrored) but not inside REPLICA' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -l debounce -d 'How long the watcher gathers events for a path before the mirror acts on them' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l max-delete -d 'Refuse a pass (or a batch of watcher events) that would remove more than N entries from REPLICA: it removes none of them and logs an error' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l exclude -d 'Leave out paths matching PATTERN (gitignore syntax, relative to SOURCE: `*.tmp`, `build/`, `/top-only`, `**/cache`, `!keep.log`). Repeatable' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l exclude-from -d 'Read exclude patterns from FILE, one a line; lines starting with # are comments' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -l backup-dir -d 'Move every file the mirror would remove or overwrite into DIR, under its path relative to REPLICA with a timestamp suffix, instead of destroying it. Not inside SOURCE' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -l backup-versions -d 'Keep at most N versions of each path in the backup directory: the oldest go when a new one is kept (0 keeps them all)' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l backup-max-age -d 'Remove versions older than DURATION from the backup directory, after each pass (30d, 12h, seconds). By default versions are kept whatever their age' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l status-file -d 'Keep a JSON document describing the mirror\'s state at PATH, replaced atomically (read it with `foldersync status PATH`). Not inside REPLICA' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -l metrics -d 'Serve Prometheus metrics over HTTP at http://ADDR/metrics (ADDR is IP:PORT, such as 127.0.0.1:9108; [::]:9108 for every address). An address that cannot be bound refuses the start' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l log-level -d 'What the log file records: off, error, warn, info (every operation), debug or trace' -r -f -a "off\t''
error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c foldersync -n "__fish_foldersync_needs_command" -l log-format -d 'How log lines are written, in the log file and on the console: text, or json (one JSON object a line, with the fields of each change for tools)' -r -f -a "text\t''
json\t''"
complete -c foldersync -n "__fish_foldersync_needs_command" -l state-dir -d 'Where foldersync remembers what it mirrored between runs (default: /var/lib/foldersync as root, $XDG_STATE_HOME/foldersync or ~/.local/state/foldersync otherwise)' -r -F
complete -c foldersync -n "__fish_foldersync_needs_command" -l modify-window -d 'Count modification times this close as equal, for replicas with coarse timestamps: 2 for FAT, 0.01 for exFAT (as rsync\'s --modify-window)' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -s e -l rsh -d 'The ssh command for a remote REPLICA, as rsync\'s -e: `ssh -p 2222 -i ~/.ssh/mirror`. It runs in batch mode (no password or host-key prompt) over one shared connection' -r
complete -c foldersync -n "__fish_foldersync_needs_command" -l once -d 'Run one full pass, then exit'
complete -c foldersync -n "__fish_foldersync_needs_command" -l no-watch -d 'Do not watch SOURCE for changes: mirror by periodic full passes only'
complete -c foldersync -n "__fish_foldersync_needs_command" -s n -l dry-run -d 'Log every operation that would be made, marked "[dry run]", and change nothing'
complete -c foldersync -n "__fish_foldersync_needs_command" -l delete-excluded -d 'Also remove excluded paths from REPLICA (by default they are left alone there)'
complete -c foldersync -n "__fish_foldersync_needs_command" -s c -l checksum -d 'Compare files of the same size by content instead of trusting their modification times'
complete -c foldersync -n "__fish_foldersync_needs_command" -s v -l verbose -d 'More detail on the console: -v for debug, -vv for trace'
complete -c foldersync -n "__fish_foldersync_needs_command" -s q -l quiet -d 'Less on the console: -q for warnings and errors only, -qq for errors, -qqq for nothing'
complete -c foldersync -n "__fish_foldersync_needs_command" -l allow-empty-source -d 'Allow an empty SOURCE to empty a non-empty REPLICA. Without it, an empty SOURCE (an unmounted disk, a wiped folder) is refused at start-up and ignored while running'
complete -c foldersync -n "__fish_foldersync_needs_command" -l adopt-replica -d 'Let the first pass into an existing directory that foldersync has not mirrored into before remove what SOURCE lacks, even when that is most of it (refused otherwise when it would remove more than half of REPLICA\'s entries and more than 20)'
complete -c foldersync -n "__fish_foldersync_needs_command" -l no-hard-links -d 'Copy hard links as separate files (by default a file with several names in SOURCE has the same names, linked, in REPLICA)'
complete -c foldersync -n "__fish_foldersync_needs_command" -l no-xattrs -d 'Do not copy extended attributes and POSIX ACLs (copied by default)'
complete -c foldersync -n "__fish_foldersync_needs_command" -l fsync -d 'Flush each file to stable storage before it is renamed into place, and each directory after its entries change, so what was logged as copied survives a power cut'
complete -c foldersync -n "__fish_foldersync_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c foldersync -n "__fish_foldersync_needs_command" -s V -l version -d 'Print version'
complete -c foldersync -n "__fish_foldersync_needs_command" -a "status" -d 'Print the status file of a running mirror (see --status-file) and exit 1 if the mirror is unhealthy: SOURCE missing, degraded, errors in the last pass, not running, or no update for two intervals. A SOURCE directory named "status" is written ./status'
complete -c foldersync -n "__fish_foldersync_using_subcommand status" -s h -l help -d 'Print help'
