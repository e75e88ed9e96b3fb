//! Errors: [`ConfigError`] and its one-line `file:line:col: key: message` form, with the
//! helpers that find where in the file an error is and put serde's messages in the user's terms.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::PathBuf;

/// One line: `file:line:col: key: message`, with the parts that are known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a place in the file.
    pub position: Option<(usize, usize)>,
    /// Dotted key, e.g. `detector.trees`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.file.display().to_string();
        if let Some((l, col)) = self.position {
            line.push_str(&format!(":{l}:{col}"));
        }
        if let Some(key) = &self.key {
            line.push_str(&format!(": {key}"));
        }
        line.push_str(&format!(": {}", self.message));
        // Always one line: a quoted key or a string in the file may hold a newline, and serde
        // quotes unknown keys and variants as they are. Control characters are shown escaped.
        for c in line.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// The dotted key whose key or value covers byte `offset` (the deepest one).
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    walk(doc.get_ref(), "", &mut |path, key_span, value_span| {
        if key_span.contains(&offset) || value_span.contains(&offset) {
            let depth = path.matches('.').count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, path.to_string()));
            }
        }
    });
    best.map(|(_, p)| p)
}

/// Where dotted `key` is in the file: its value's span (or the key's, for tables).
pub(super) fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut found = None;
    walk(doc.get_ref(), "", &mut |path, key_span, value_span| {
        if path == key {
            found = Some(if value_span.is_empty() {
                key_span
            } else {
                value_span
            });
        }
    });
    found
}

/// Called with each dotted key, its key span and its value span.
type Visit<'a> = &'a mut dyn FnMut(&str, Range<usize>, Range<usize>);

fn walk(table: &toml::de::DeTable<'_>, prefix: &str, visit: Visit<'_>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        visit(&path, k.span(), v.span());
        if let Some(t) = v.get_ref().as_table() {
            walk(t, &path, visit);
        }
    }
}

/// Rewrites serde's messages into "expected X, got Y" in the user's terms.
pub(super) fn friendly(message: &str) -> String {
    let message = message.trim();
    let type_name = |t: &str| -> String {
        match t.trim() {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
            "i8" | "i16" => "an integer from -32768 to 32767".into(),
            "i32" | "i64" | "isize" => "an integer".into(),
            "f32" | "f64" => "a number".into(),
            "a sequence" => "an array".into(),
            "a map" => "a table".into(),
            t if t.starts_with("struct ") => "a table".into(),
            t => t.into(),
        }
    };
    let got = |g: &str| -> String {
        let g = g.trim();
        for (prefix, _) in [
            ("integer ", ()),
            ("floating point ", ()),
            ("boolean ", ()),
            ("string ", ()),
        ] {
            if let Some(v) = g.strip_prefix(prefix) {
                return v.trim_matches('`').to_string();
            }
        }
        match g {
            "map" => "a table".into(),
            "sequence" => "an array".into(),
            g => g.into(),
        }
    };
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(kind)
            && let Some((g, e)) = rest.split_once(", expected ")
        {
            return format!("expected {}, got {}", type_name(e), got(g));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some((field, expected)) = rest.split_once(", expected ")
    {
        return format!("unknown key {field}; expected {expected}");
    }
    // An enum (backend, ingest, compression, direction) given a number, bool or array.
    if message == "wanted string or table" {
        return "expected a string naming one of the choices listed in config.toml".into();
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((v, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {expected}, got {v}");
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::err;

    /// A quoted key or a value with a newline (found by the fuzz target `config_load`).
    #[test]
    fn errors_stay_one_line_when_the_file_has_newlines_in_names() {
        assert_eq!(
            err("[producer]\n\"a\\nb\" = 1\n"),
            "config.toml:2:1: producer.a\\nb: unknown key `a\\nb`; expected one of `autostart`, `devices`, `rate`, `min_value`, `max_value`, `batch_size`"
        );
        assert_eq!(
            err("backend = \"lo\\ncal\"\n"),
            "config.toml:1:11: backend: expected `local` or `aws`, got `lo\\ncal`"
        );
    }

    #[test]
    fn type_errors_name_line_column_and_key() {
        assert_eq!(
            err("[detector]\ntrees = -3\n"),
            "config.toml:2:9: detector.trees: expected a positive integer, got -3"
        );
        assert_eq!(
            err("[producer]\nautostart = \"yes\"\n"),
            "config.toml:2:13: producer.autostart: expected a boolean, got \"yes\""
        );
        assert_eq!(
            err("backend = \"gcp\"\n"),
            "config.toml:1:11: backend: expected `local` or `aws`, got `gcp`"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err("[detector]\ntress = 100\n");
        assert!(
            e.starts_with("config.toml:2:1: detector.tress: unknown key `tress`; expected one of"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = err("[producer\nrate = 1\n");
        assert!(e.starts_with("config.toml:1:"), "{e}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é = 1\nx", 7), (2, 1));
    }
}
