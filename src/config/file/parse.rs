//! One configuration file read into keys with their places (file and line): the top-level keys
//! (shared defaults and the process-wide options) and one [`Mirror`] per `[mirror.NAME]` table.
//! Only the shape is checked here (TOML syntax, tables where tables belong, value types that
//! can be options); what the values mean is for clap and `Config::from_args`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::StartError;
use crate::escape::{controls, esc};

/// Where a key was written: a file and a line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", esc(&*self.file), self.line)
    }
}

impl Place {
    /// An error at this place, about `mirror` if it is one's.
    pub fn error(&self, mirror: Option<&str>, what: impl fmt::Display) -> StartError {
        match mirror {
            Some(name) => StartError::new(format!("{self}: mirror {name}: {what}")),
            None => StartError::new(format!("{self}: {what}")),
        }
    }
}

/// A value that can stand for an option's value (or values, a list).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    /// An integer or a float, as written in decimal.
    Num(String),
    Bool(bool),
    List(Vec<Val>),
}

impl Val {
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Num(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::List(_) => "a list",
        }
    }
}

/// One `name = value`, with where it was written.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub val: Val,
    pub at: Place,
}

/// One `[mirror.NAME]` table.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub name: String,
    /// The table's header.
    pub at: Place,
    pub source: Option<(String, Place)>,
    pub replicas: Vec<(String, Place)>,
    /// Its other keys, options of the command line by their long names.
    pub keys: Vec<Key>,
}

/// What one file holds.
#[derive(Debug, Default)]
pub struct Parsed {
    pub top: Vec<Key>,
    pub mirrors: Vec<Mirror>,
}

/// The line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

struct Reader<'t> {
    file: Arc<Path>,
    text: &'t str,
}

impl Reader<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> Place {
        Place {
            file: self.file.clone(),
            line: line_of(self.text, span.start),
        }
    }
}

/// Reads the text of the configuration file `file`.
pub fn parse(file: &Path, text: &str) -> Result<Parsed, StartError> {
    let r = Reader {
        file: Arc::from(file),
        text,
    };
    let table = DeTable::parse(text).map_err(|e| {
        let at = r.at(e.span().unwrap_or(0..0));
        at.error(
            None,
            format_args!("not valid TOML: {}", controls(e.message().trim())),
        )
    })?;
    let mut parsed = Parsed::default();
    for (key, value) in table.get_ref() {
        let at = r.at(key.span());
        match key.get_ref().as_ref() {
            "mirror" => {
                let Some(mirrors) = value.get_ref().as_table() else {
                    return Err(at.error(
                        None,
                        "`mirror` is a table of mirrors: write each as [mirror.NAME]",
                    ));
                };
                for (name, body) in mirrors {
                    parsed.mirrors.push(r.mirror(name, body)?);
                }
            }
            "source" | "replicas" | "replica" => {
                return Err(at.error(
                    None,
                    format_args!(
                        "`{}` belongs in a mirror's table: write it under [mirror.NAME]",
                        key.get_ref()
                    ),
                ))
            }
            name => parsed.top.push(Key {
                name: name.to_string(),
                val: r.val(None, name, value)?,
                at,
            }),
        }
    }
    Ok(parsed)
}

impl Reader<'_> {
    fn mirror(
        &self,
        name: &Spanned<toml::de::DeString<'_>>,
        body: &Spanned<DeValue<'_>>,
    ) -> Result<Mirror, StartError> {
        let at = self.at(name.span());
        let shown = controls(name.get_ref()).to_string();
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if shown.is_empty() || !name.get_ref().chars().all(plain) {
            return Err(at.error(
                None,
                format_args!(
                    "mirror name {shown:?}: use letters, digits, '-', '_' and '.' only \
                     (it marks the mirror's log lines and status)"
                ),
            ));
        }
        let mirror = Some(shown.as_str());
        let Some(table) = body.get_ref().as_table() else {
            return Err(at.error(mirror, "a mirror is a table: write it as [mirror.NAME]"));
        };
        let mut m = Mirror {
            name: shown.clone(),
            at,
            source: None,
            replicas: Vec::new(),
            keys: Vec::new(),
        };
        for (key, value) in table {
            let at = self.at(key.span());
            let key_name = key.get_ref().as_ref();
            match (key_name, self.val(mirror, key_name, value)?) {
                ("source", Val::Str(s)) => m.source = Some((s, at)),
                ("replicas" | "replica", Val::Str(s)) => m.replicas.push((s, at)),
                ("replicas" | "replica", Val::List(items)) => {
                    let spans = value.get_ref().as_array().map(|a| a.iter());
                    for (item, span) in items.into_iter().zip(spans.into_iter().flatten()) {
                        let at = self.at(span.span());
                        match item {
                            Val::Str(s) => m.replicas.push((s, at)),
                            other => {
                                return Err(at.error(
                                    mirror,
                                    format_args!(
                                        "each replica is a string (a path or [USER@]HOST:PATH), \
                                         not {}",
                                        other.kind()
                                    ),
                                ))
                            }
                        }
                    }
                }
                ("source" | "replicas" | "replica", other) => {
                    return Err(at.error(
                        mirror,
                        format_args!(
                            "`{key_name}` is a path as a string (replicas: a list of them), \
                             not {}",
                            other.kind()
                        ),
                    ))
                }
                (name, val) => m.keys.push(Key {
                    name: name.to_string(),
                    val,
                    at,
                }),
            }
        }
        Ok(m)
    }

    /// A value as an option can take it: a string, a number, a boolean, or a list of those.
    fn val(
        &self,
        mirror: Option<&str>,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<Val, StartError> {
        let at = self.at(value.span());
        let key = controls(key);
        Ok(match value.get_ref() {
            DeValue::String(s) => Val::Str(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Val::Num(n.to_string()),
                Err(e) => return Err(at.error(mirror, format_args!("`{key}`: {e}"))),
            },
            DeValue::Float(f) => Val::Num(f.as_str().to_string()),
            DeValue::Boolean(b) => Val::Bool(*b),
            DeValue::Array(items) => {
                let mut list = Vec::new();
                for item in items {
                    match self.val(mirror, &key, item)? {
                        Val::List(_) => {
                            return Err(self.at(item.span()).error(
                                mirror,
                                format_args!("`{key}`: a list inside a list means nothing here"),
                            ))
                        }
                        v => list.push(v),
                    }
                }
                Val::List(list)
            }
            DeValue::Table(_) => {
                let hint = if mirror.is_none() {
                    " (mirrors are written [mirror.NAME])"
                } else {
                    ""
                };
                return Err(at.error(
                    mirror,
                    format_args!("`{key}` is a table, and no option takes one{hint}"),
                ));
            }
            DeValue::Datetime(_) => {
                return Err(at.error(
                    mirror,
                    format_args!("`{key}` is a date, and no option takes one: quote it"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Parsed, String> {
        parse(Path::new("/etc/f.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_and_mirrors_with_their_lines() {
        let p = parse_text(
            "interval = \"10m\"\nexclude = [\"*.tmp\"]\n\n[mirror.www]\nsource = \"/srv/www\"\n\
             replicas = [\n  \"/b/www\",\n  \"web2:/srv/www\",\n]\nmax-delete = 500\n",
        )
        .unwrap();
        assert_eq!(p.top.len(), 2);
        assert_eq!(p.top[0].name, "exclude");
        assert_eq!(p.top[0].at.line, 2);
        let m = &p.mirrors[0];
        assert_eq!((m.name.as_str(), m.at.line), ("www", 4));
        assert_eq!(m.source.as_ref().map(|s| s.1.line), Some(5));
        let lines: Vec<usize> = m.replicas.iter().map(|r| r.1.line).collect();
        assert_eq!(lines, [7, 8]);
        assert_eq!(m.keys[0].val, Val::Num("500".into()));
        assert_eq!(m.keys[0].at.line, 10);
    }

    #[test]
    fn mistakes_have_their_line() {
        let e = parse_text("a = 1\nb = = 2\n").unwrap_err();
        assert!(e.starts_with("/etc/f.toml:2: not valid TOML"), "{e}");
        let e = parse_text("[mirror.www]\nsource = 3\n").unwrap_err();
        assert!(e.starts_with("/etc/f.toml:2: mirror www: `source`"), "{e}");
        let e = parse_text("\nsource = \"/a\"\n").unwrap_err();
        assert!(e.starts_with("/etc/f.toml:2: `source` belongs"), "{e}");
        let e = parse_text("[mirror.\"a b\"]\n").unwrap_err();
        assert!(e.contains("mirror name \"a b\""), "{e}");
        let e = parse_text("[mirror.m]\nreplicas = [\"/a\", 3]\n").unwrap_err();
        assert!(
            e.starts_with("/etc/f.toml:2: mirror m: each replica"),
            "{e}"
        );
    }
}
