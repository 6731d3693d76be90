//! One (mirror, replica) pair's keys turned into the command line that would say the same, and
//! parsed by clap into `cli::Args`: so a key is any long option, with the very checks the
//! command line gets. clap's refusals are told at the line of the key they name.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{ArgAction, CommandFactory, Parser};

use super::parse::{Key, Mirror, Place, Val};
use crate::cli::Args;
use crate::error::StartError;

/// The options that are one for the whole process: allowed at the top of a file only.
pub const PROCESS_WIDE: &[&str] = &[
    "log-path",
    "log-level",
    "log-format",
    "status-file",
    "metrics",
    "verbose",
    "quiet",
];

/// Long options that are not keys.
const NOT_KEYS: &[&str] = &["config", "help", "version"];

/// A pair's keys, merged (a mirror's key replaces the default of the same name), with the
/// command line they make.
#[derive(Debug)]
pub struct Built {
    pub args: Args,
    pub keys: Vec<Key>,
}

#[cfg(test)]
impl Built {
    /// Where key `name` was written, if it was.
    pub fn place(&self, name: &str) -> Option<&Place> {
        self.keys.iter().find(|k| k.name == name).map(|k| &k.at)
    }
}

/// The keys a mirror may not hold: the process-wide ones.
pub fn check_mirror_keys(m: &Mirror) -> Result<(), StartError> {
    for key in &m.keys {
        if PROCESS_WIDE.contains(&key.name.as_str()) {
            return Err(key.at.error(
                Some(&m.name),
                format_args!(
                    "`{}` is one for the whole process ({}): set it at the top of a \
                     configuration file, before any [mirror.NAME]",
                    key.name,
                    PROCESS_WIDE.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The command line of one pair: the defaults, then the mirror's keys, then `-- SOURCE REPLICA`.
pub fn build(
    top: &[Key],
    m: &Mirror,
    source: &(String, Place),
    replica: &(String, Place),
) -> Result<Built, StartError> {
    let mut keys: Vec<Key> = top
        .iter()
        .filter(|k| !m.keys.iter().any(|own| own.name == k.name))
        .cloned()
        .collect();
    keys.extend(m.keys.iter().cloned());
    let command = Args::command();
    let mut argv: Vec<OsString> = vec!["foldersync".into()];
    let remote = crate::address::parse(replica.0.as_ref()).is_some();
    for key in &keys {
        // A mirror's replicas may be local and remote in any mix: what only a remote REPLICA
        // can use is left out of a local one's command line.
        if key.name == "rsh" && !remote {
            continue;
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.name.as_str()))
            .filter(|_| !NOT_KEYS.contains(&key.name.as_str()));
        let Some(arg) = arg else {
            return Err(key.at.error(
                Some(&m.name),
                format_args!(
                    "unknown key `{}`: the keys are foldersync's long options without their \
                     dashes (see foldersync --help), and source and replicas",
                    crate::escape::controls(&key.name)
                ),
            ));
        };
        let paths = arg.get_value_names().is_some_and(|n| {
            n.iter()
                .any(|n| ["FILE", "DIR", "PATH"].contains(&n.as_str()))
        });
        option(&mut argv, key, arg.get_action(), paths, &m.name)?;
    }
    argv.push("--".into());
    argv.push(local(&source.0, &source.1).into_os_string());
    argv.push(if remote {
        OsString::from(&replica.0)
    } else {
        local(&replica.0, &replica.1).into_os_string()
    });
    let args = Args::try_parse_from(argv).map_err(|e| refused(&e, &keys, m))?;
    Ok(Built { args, keys })
}

/// A path relative to the directory of the file that names it.
fn local(text: &str, at: &Place) -> PathBuf {
    let path = Path::new(text);
    match at.file.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// `key` as options: a flag for `true`, repeated for a count, `--name=value` for each value.
fn option(
    argv: &mut Vec<OsString>,
    key: &Key,
    action: &ArgAction,
    paths: bool,
    mirror: &str,
) -> Result<(), StartError> {
    let flag = format!("--{}", key.name);
    let wrong = |what: &str| {
        key.at.error(
            Some(mirror),
            format_args!("`{}` {what}, not {}", key.name, key.val.kind()),
        )
    };
    let value = |v: &Val| -> Result<OsString, StartError> {
        let text = match v {
            Val::Str(s) if paths => local(s, &key.at).into_os_string(),
            Val::Str(s) | Val::Num(s) => OsString::from(s),
            _ => return Err(wrong("takes a string or a number (or a list of them)")),
        };
        let mut one = OsString::from(format!("{flag}="));
        one.push(text);
        Ok(one)
    };
    match (action, &key.val) {
        (ArgAction::SetTrue, Val::Bool(on)) => {
            if *on {
                argv.push(flag.into());
            }
        }
        (ArgAction::SetTrue, _) => return Err(wrong("is true or false")),
        (ArgAction::Count, Val::Num(n)) => {
            let n: u8 = n
                .parse()
                .ok()
                .filter(|n| *n <= 3)
                .ok_or_else(|| wrong("is a count from 0 to 3"))?;
            argv.extend((0..n).map(|_| OsString::from(&flag)));
        }
        (ArgAction::Count, _) => return Err(wrong("is a count from 0 to 3")),
        (ArgAction::Append, Val::List(items)) => {
            for item in items {
                argv.push(value(item)?);
            }
        }
        (_, Val::List(_)) => return Err(wrong("takes one value")),
        (_, v) => argv.push(value(v)?),
    }
    Ok(())
}

/// clap's refusal, at the line of the key it names (else the mirror's header).
fn refused(e: &clap::Error, keys: &[Key], m: &Mirror) -> StartError {
    let named = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let name = named
        .trim_start_matches('-')
        .split([' ', '='])
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    let key = keys.iter().find(|k| k.name == name);
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ");
    let what = crate::escape::controls(first);
    match key {
        Some(k) => {
            k.at.error(Some(&m.name), format_args!("`{}`: {what}", k.name))
        }
        None => m.at.error(Some(&m.name), what),
    }
}

/// Parses a command line as `main` does (for tests).
#[cfg(test)]
pub fn parse_line(line: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(line)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn pair(text: &str) -> Result<Built, String> {
        let p = parse(Path::new("/etc/fs/a.toml"), text).map_err(|e| e.to_string())?;
        let m = &p.mirrors[0];
        check_mirror_keys(m).map_err(|e| e.to_string())?;
        let source = m.source.clone().unwrap();
        build(&p.top, m, &source, &m.replicas[0]).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_become_options() {
        let b = pair(
            "interval = \"10m\"\nexclude = [\"*.tmp\", \"*.bak\"]\ndry-run = true\nverbose = 2\n\
             [mirror.w]\nsource = \"s\"\nreplicas = [\"/r\"]\nmax-delete = 5\ninterval = 30\n",
        )
        .unwrap();
        assert_eq!(b.args.interval, std::time::Duration::from_secs(30));
        assert_eq!(b.args.exclude, ["*.tmp", "*.bak"]);
        assert!(b.args.dry_run);
        assert_eq!(b.args.verbose, 2);
        assert_eq!(b.args.max_delete, Some(5));
        assert_eq!(b.args.source.as_deref(), Some(Path::new("/etc/fs/s")));
        assert_eq!(b.place("interval").map(|p| p.line), Some(9));
    }

    #[test]
    fn refusals_name_the_key_and_its_line() {
        let e =
            pair("[mirror.w]\nsource = \"/s\"\nreplicas = \"/r\"\nintervall = 3\n").unwrap_err();
        assert!(
            e.starts_with("/etc/fs/a.toml:4: mirror w: unknown key `intervall`"),
            "{e}"
        );
        let e = pair("interval = \"soon\"\n[mirror.w]\nsource = \"/s\"\nreplicas = \"/r\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("/etc/fs/a.toml:1: mirror w: `interval`: invalid value"),
            "{e}"
        );
        let e =
            pair("[mirror.w]\nsource = \"/s\"\nreplicas = \"/r\"\nonce = \"yes\"\n").unwrap_err();
        assert!(e.contains(":4: mirror w: `once` is true or false"), "{e}");
        let e = pair("[mirror.w]\nsource = \"/s\"\nreplicas = \"/r\"\nlog-path = \"/l\"\n")
            .unwrap_err();
        assert!(
            e.contains(":4: mirror w: `log-path` is one for the whole process"),
            "{e}"
        );
        let e = pair("verbose = 1\nquiet = 1\n[mirror.w]\nsource = \"/s\"\nreplicas = \"/r\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("/etc/fs/a.toml:2: mirror w: `quiet`: "),
            "{e}"
        );
    }

    /// The example the docs ship is read and made into command lines.
    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../../docs/systemd/foldersync.toml");
        let p = parse(Path::new("/etc/foldersync/foldersync.toml"), text).unwrap();
        assert_eq!(p.mirrors.len(), 2);
        for m in &p.mirrors {
            check_mirror_keys(m).unwrap();
            let source = m.source.clone().unwrap();
            for replica in &m.replicas {
                let b = build(&p.top, m, &source, replica).unwrap();
                assert!(b.args.status_file.is_some());
            }
        }
    }

    #[test]
    fn a_source_named_like_a_command_stays_a_path() {
        let b = pair("[mirror.w]\nsource = \"/x/status\"\nreplicas = \"status\"\n").unwrap();
        assert!(b.args.command.is_none());
        assert!(parse_line(&["foldersync", "--", "status", "b"]).is_ok());
    }
}
