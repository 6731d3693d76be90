//! What is left out of the mirror: exclude patterns in gitignore syntax, matched by the `ignore`
//! crate (as in ripgrep). foldersync's own files are another matter: see [`crate::own`].

use std::fs;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::StartError;

/// The exclusions, matched against paths relative to the roots.
#[derive(Debug, Clone)]
pub struct Filter {
    patterns: Gitignore,
    /// The pattern lines, in order (for a remote replica, whose rsync gets them translated).
    lines: Vec<String>,
    /// Remove excluded entries that exist in REPLICA.
    pub delete_excluded: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            patterns: Gitignore::empty(),
            lines: Vec::new(),
            delete_excluded: false,
        }
    }
}

impl Filter {
    /// Builds the filter from `--exclude` patterns and `--exclude-from` files (one pattern a line,
    /// `#` comments, blank lines ignored). An invalid pattern or an unreadable file is an error
    /// that names it.
    pub fn new(
        source: &Path,
        patterns: &[String],
        files: &[PathBuf],
        delete_excluded: bool,
    ) -> Result<Filter, StartError> {
        let mut builder = GitignoreBuilder::new(source);
        // A typo such as `a[` is reported rather than taken literally.
        builder.allow_unclosed_class(false);
        let mut lines = Vec::new();
        let mut add = |line: &str, from: Option<&Path>| {
            lines.push(line.to_string());
            builder
                .add_line(from.map(Path::to_path_buf), line)
                .map(drop)
                .map_err(|e| {
                    let place = from
                        .map(|f| format!(" (in {})", crate::escape::esc(f)))
                        .unwrap_or_default();
                    StartError::new(format!(
                        "invalid exclude pattern '{}'{place}: {}",
                        crate::escape::text(line),
                        crate::escape::text(&e.to_string())
                    ))
                })
        };
        for pattern in patterns {
            add(pattern, None)?;
        }
        for file in files {
            let text = fs::read_to_string(file).map_err(|e| {
                StartError::new(format!(
                    "cannot read exclude file {}: {e}",
                    crate::escape::esc(file)
                ))
            })?;
            for line in text.lines() {
                // Trailing spaces are the pattern syntax's to drop (an escaped one stays).
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() || line.starts_with('#') {
                    continue;
                }
                add(line, Some(file))?;
            }
        }
        let patterns = builder.build().map_err(|e| {
            StartError::new(format!(
                "invalid exclude patterns: {}",
                crate::escape::text(&e.to_string())
            ))
        })?;
        Ok(Filter {
            patterns,
            lines,
            delete_excluded,
        })
    }

    /// The pattern lines, in the order they were given.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// An entry met while walking (its parents are known not to be excluded) matches a pattern.
    pub fn excludes(&self, rel: &Path, is_dir: bool) -> bool {
        self.patterns.matched(rel, is_dir).is_ignore()
    }

    /// A path met on its own (a watcher event) is excluded, or lies in an excluded directory.
    pub fn excludes_path(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty()
            && !rel.has_root()
            && self
                .patterns
                .matched_path_or_any_parents(rel, is_dir)
                .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> Filter {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Filter::new(Path::new("/src"), &patterns, &[], false).unwrap()
    }

    #[test]
    fn gitignore_syntax() {
        let f = filter(&[
            "*.tmp",
            "build/",
            "/top-only",
            "**/cache",
            "*.log",
            "!keep.log",
        ]);
        assert!(f.excludes(Path::new("a/b/x.tmp"), false));
        assert!(f.excludes(Path::new("sub/build"), true));
        assert!(
            !f.excludes(Path::new("sub/build"), false),
            "build/ matches directories only"
        );
        assert!(f.excludes(Path::new("top-only"), false));
        assert!(
            !f.excludes(Path::new("sub/top-only"), false),
            "anchored to the root"
        );
        assert!(f.excludes(Path::new("x/y/cache"), true));
        assert!(f.excludes(Path::new("debug.log"), false));
        assert!(!f.excludes(Path::new("keep.log"), false), "negated");
        assert!(f.excludes_path(Path::new("sub/build/deep/file.rs"), false));
        assert!(!f.excludes_path(Path::new("sub/src/file.rs"), false));
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        for bad in ["a[", "{a,b", "x[z-a]"] {
            let err = Filter::new(Path::new("/src"), &[bad.into()], &[], false).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }
}
