//! What a remote replica's rsync leaves out: the exclude patterns (gitignore syntax) turned into
//! rsync filter rules, and foldersync's own files. gitignore lets the last matching pattern win
//! and rsync the first, so the rules come in reverse order; a gitignore pattern with a slash
//! inside is anchored to the root, which rsync writes with a leading slash; `a/**/b` also
//! matches `a/b` in gitignore, so rsync gets both.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::filter::Filter;
use crate::own::OwnFiles;

/// rsync filter rules (each one `--filter` argument), first match winning.
pub fn rules(filter: &Filter, own: &OwnFiles, backup_in: Option<&Path>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    // Our own files in SOURCE are never sent, and REPLICA's copies of them are never removed.
    for rel in own.source_files() {
        // Protected too: --delete-excluded removes what is excluded on the receiving side.
        out.push(rule("P /", &literal(rel), ""));
        out.push(rule("- /", &literal(rel), ""));
    }
    for rel in own.source_dirs() {
        out.push(rule("P /", &literal(rel), "/"));
        out.push(rule("- /", &literal(rel), "/"));
    }
    for dir in own.source_temp_dirs() {
        // The pattern has a wildcard, so the directory's part is escaped in full.
        let mut pattern = escaped(dir.as_os_str().as_bytes());
        if !pattern.is_empty() {
            pattern.push(b'/');
        }
        pattern.extend_from_slice(own.temps().pattern().as_bytes());
        out.push(rule("- /", &pattern, ""));
    }
    // Our directories in REPLICA (a backup directory): neither sent to nor removed.
    for rel in own
        .replica_dirs()
        .iter()
        .map(PathBuf::as_path)
        .chain(backup_in)
    {
        out.push(rule("P /", &literal(rel), "/"));
        out.push(rule("- /", &literal(rel), "/"));
    }
    for line in filter.lines().iter().rev() {
        out.extend(translate(line));
    }
    out
}

fn rule(prefix: &str, pattern: &[u8], suffix: &str) -> OsString {
    let mut r = prefix.as_bytes().to_vec();
    r.extend_from_slice(pattern);
    r.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(r)
}

/// A path as an rsync pattern that matches only itself: its wildcard characters escaped.
/// rsync honours backslashes in a pattern that has wildcards, so a path with `*`, `?` or `[`
/// gets them all escaped, and the escapes are read back.
pub fn literal(rel: &Path) -> Vec<u8> {
    let bytes = rel.as_os_str().as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        return bytes.to_vec();
    }
    escaped(bytes)
}

/// `bytes` with every wildcard character and backslash escaped.
fn escaped(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// One gitignore line as rsync rules.
fn translate(line: &str) -> Vec<OsString> {
    let mut pattern = trim_trailing_spaces(line);
    let negated = pattern.starts_with('!');
    // `!` negates; `\!` and `\#` stand for the characters themselves.
    if negated || pattern.starts_with("\\!") || pattern.starts_with("\\#") {
        pattern = &pattern[1..];
    }
    let dir_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    if body.is_empty() {
        return Vec::new();
    }
    let anchored = if let Some(rest) = body.strip_prefix("**/") {
        // Anywhere: rsync matches an unanchored pattern against the end of the path.
        rest.to_string()
    } else if let Some(rest) = body.strip_prefix('/') {
        format!("/{rest}")
    } else if body.contains('/') {
        format!("/{body}")
    } else {
        body.to_string()
    };
    let mut variants = vec![anchored.clone()];
    if anchored.contains("/**/") {
        variants.push(anchored.replace("/**/", "/"));
    }
    let prefix = if negated { "+ " } else { "- " };
    let suffix = if dir_only { "/" } else { "" };
    variants
        .into_iter()
        .map(|v| rule(prefix, v.as_bytes(), suffix))
        .collect()
}

/// gitignore drops trailing spaces unless the last one is escaped.
fn trim_trailing_spaces(line: &str) -> &str {
    let trimmed = line.trim_end_matches(' ');
    if trimmed.ends_with('\\') && trimmed.len() < line.len() {
        &line[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

/// The include rules for a batch: each path and its parents, a whole directory with `***`,
/// everything else left out. NUL-terminated, for `--from0`.
pub fn include_rules(entries: &[PathBuf], trees: &[PathBuf]) -> Vec<u8> {
    let mut parents: BTreeSet<PathBuf> = BTreeSet::new();
    for p in entries.iter().chain(trees) {
        let mut a = p.parent();
        while let Some(dir) = a.filter(|d| !d.as_os_str().is_empty()) {
            parents.insert(dir.to_path_buf());
            a = dir.parent();
        }
    }
    let mut out = Vec::new();
    let mut push = |prefix: &str, rel: &Path, suffix: &str| {
        out.extend_from_slice(prefix.as_bytes());
        out.extend(literal(rel));
        out.extend_from_slice(suffix.as_bytes());
        out.push(0);
    };
    for dir in &parents {
        push("+ /", dir, "/");
    }
    for p in entries.iter().chain(trees) {
        if !p.as_os_str().is_empty() {
            push("+ /", p, "");
        }
    }
    for p in trees {
        if p.as_os_str().is_empty() {
            push("+ /", p, "***");
        } else {
            push("+ /", p, "/***");
        }
    }
    push("- ", Path::new(""), "*");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn t(line: &str) -> Vec<String> {
        translate(line)
            .into_iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn gitignore_lines_become_rsync_rules() {
        assert_eq!(t("*.tmp"), ["- *.tmp"]);
        assert_eq!(t("build/"), ["- build/"]);
        assert_eq!(t("/top-only"), ["- /top-only"]);
        assert_eq!(t("**/cache"), ["- cache"]);
        assert_eq!(t("docs/*.pdf"), ["- /docs/*.pdf"]);
        assert_eq!(t("!keep.log"), ["+ keep.log"]);
        assert_eq!(t("a/**/b"), ["- /a/**/b", "- /a/b"]);
        assert_eq!(t("trailing  "), ["- trailing"]);
        assert!(t("/").is_empty());
    }

    #[test]
    fn last_gitignore_line_comes_first() {
        let patterns = vec!["*.log".to_string(), "!keep.log".to_string()];
        let filter = Filter::new(Path::new("/src"), &patterns, &[], false).unwrap();
        let own = OwnFiles::new(vec![PathBuf::from("logs/sync[1].log")], vec![]);
        let r: Vec<String> = rules(&filter, &own, None)
            .into_iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        assert_eq!(r[0], "P /logs/sync\\[1].log");
        assert_eq!(r[1], "- /logs/sync\\[1].log");
        assert!(r[2].starts_with("- /logs/.foldersync-"));
        assert_eq!(&r[3..], ["+ keep.log", "- *.log"]);
    }

    #[test]
    fn include_rules_name_parents_and_whole_directories() {
        let rules = include_rules(&[PathBuf::from("a/b/c")], &[PathBuf::from("x/new[1]")]);
        let rules: Vec<String> = rules
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
        assert_eq!(
            rules,
            [
                "+ /a/",
                "+ /a/b/",
                "+ /x/",
                "+ /a/b/c",
                "+ /x/new\\[1]",
                "+ /x/new\\[1]/***",
                "- *"
            ]
        );
    }
}
