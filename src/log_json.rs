//! `--log-format json`: a log record as one JSON object a line, with the fields of a change
//! (`Change::say`) handed over beside the record through a thread-local.

use std::sync::OnceLock;

use log::Level;

/// Lines are JSON objects (`--log-format json`).
static JSON: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// The fields of the record being logged on this thread (a change's), for JSON lines.
    static FIELDS: std::cell::RefCell<Option<serde_json::Map<String, serde_json::Value>>> =
        const { std::cell::RefCell::new(None) };
}

/// Whether lines are JSON objects.
pub fn on() -> bool {
    JSON.get().copied().unwrap_or(false)
}

/// Runs `log` (which logs one record) with `fields` added to that record's JSON object.
pub fn with_fields(fields: serde_json::Map<String, serde_json::Value>, log: impl FnOnce()) {
    FIELDS.with(|f| *f.borrow_mut() = Some(fields));
    log();
    FIELDS.with(|f| f.borrow_mut().take());
}

/// Sets the format once, at start-up.
pub(crate) fn set(json: bool) {
    let _ = JSON.set(json);
}

/// A record as one JSON object: its time (UTC), level and message, and the fields given with
/// [`with_fields`]. serde_json escapes every control character.
pub(crate) fn line(level: Level, text: &str) -> String {
    let mut object = serde_json::Map::new();
    object.insert("time".into(), crate::status::now_text().into());
    object.insert("level".into(), level.as_str().to_lowercase().into());
    object.insert("msg".into(), text.into());
    if let Some(fields) = FIELDS.with(|f| f.borrow_mut().take()) {
        object.extend(fields);
    }
    serde_json::Value::Object(object).to_string()
}
