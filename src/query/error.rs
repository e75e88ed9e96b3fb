//! Why a query did not run: [`QueryError`], and DataFusion's errors turned into one readable
//! line.

use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

use super::engine::{CATALOG, EngineOptions};
use super::output::QueryError;
use super::read_only::read_only;
use crate::text::one_line;

/// sqlparser gives no position when the SQL ends too early: point just past its end.
pub(super) fn at_end_if_eof(mut e: QueryError, sql: &str) -> QueryError {
    if e.position.is_none() && e.message.contains("found: EOF") {
        let text = sql.trim_end();
        let line = text.lines().count().max(1);
        let column = text.lines().last().map_or(0, |l| l.chars().count()) + 1;
        e.position = Some((line, column));
    }
    e
}

/// " at Line: 1, Column: 15" at the end of sqlparser's messages.
fn split_position(message: &str) -> (String, Option<(usize, usize)>) {
    let Some(i) = message.rfind(" at Line: ") else {
        return (message.to_string(), None);
    };
    let tail = &message[i + " at Line: ".len()..];
    let mut parts = tail.splitn(2, ", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse().ok());
    let column = parts.next().and_then(|c| {
        c.trim()
            .trim_end_matches(|ch: char| !ch.is_ascii_digit())
            .parse()
            .ok()
    });
    match (line, column) {
        (Some(l), Some(c)) => (message[..i].to_string(), Some((l, c))),
        _ => (message.to_string(), None),
    }
}

fn strip_prefixes(mut s: &str) -> &str {
    const PREFIXES: [&str; 9] = [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Schema error: ",
        "Arrow error: ",
        "External error: ",
        "Internal error: ",
        "Invalid argument error: ",
        "Resources exhausted: ",
    ];
    loop {
        let before = s;
        for p in PREFIXES {
            s = s.strip_prefix(p).unwrap_or(s);
        }
        if s == before {
            return s;
        }
    }
}

/// Turns a DataFusion error into one readable line (with the SQL position when known).
pub(super) fn describe_error(e: &DataFusionError, options: &EngineOptions) -> QueryError {
    let position = e.diagnostic().and_then(|d| d.span).and_then(|span| {
        (span.start.line > 0).then_some((span.start.line as usize, span.start.column as usize))
    });
    let root = e.find_root();
    match root {
        DataFusionError::SQL(p, _) => {
            let (message, pos) = match p.as_ref() {
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => split_position(m),
                ParserError::RecursionLimitExceeded => {
                    ("the query is nested too deeply".to_string(), None)
                }
            };
            let message = message
                .strip_prefix("Expected: ")
                .map(|m| format!("expected {m}"))
                .unwrap_or(message);
            return QueryError {
                message: format!("syntax error: {}", one_line(&message)),
                position: pos.or(position),
            };
        }
        DataFusionError::ResourcesExhausted(m) => {
            let at = m
                .split("allocation failed for ")
                .nth(1)
                .and_then(|r| r.split(" with ").next())
                .map(|op| format!(" (in {op})"))
                .unwrap_or_default();
            return QueryError {
                message: format!(
                    "the query needs more than the {} MiB memory limit{at}: filter by datehour, aggregate, or add a LIMIT",
                    options.memory_limit_bytes >> 20,
                ),
                position,
            };
        }
        _ => {}
    }
    let mut text = strip_prefixes(&root.strip_backtrace()).to_string();
    // "Function 'f' user-defined coercion failed with: Error during planning: <ours>. No
    // function matches …": keep ours.
    if let Some((_, inner)) = text.split_once("coercion failed with: ") {
        let inner = strip_prefixes(inner);
        let inner = inner.split(". No function matches").next().unwrap_or(inner);
        text = inner.to_string();
    }
    let message = if let Some(rest) = text.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next().unwrap_or_default();
        let hint = text
            .split("Did you mean '")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        format!("function {name} is not supported by the embedded engine{hint}")
    } else if let Some(kind) = [
        "DDL not supported: ",
        "DML not supported: ",
        "Statement not supported: ",
    ]
    .iter()
    .find_map(|p| text.strip_prefix(p))
    {
        read_only(kind.trim()).message
    } else if let Some(rest) = text.strip_prefix("table '") {
        let name = rest.split('\'').next().unwrap_or_default();
        let name = name.strip_prefix(&format!("{CATALOG}.")).unwrap_or(name);
        format!(
            "table {name} not found (the lake's table is {}.{})",
            options.database, options.table
        )
    } else if text.contains("only supports a single SQL statement") {
        "one statement at a time, please: remove all but one".to_string()
    } else {
        one_line(&text)
    };
    QueryError {
        message: one_line(&message),
        position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_come_out_of_parser_messages() {
        assert_eq!(
            split_position("Expected: end of statement, found: x at Line: 2, Column: 7"),
            (
                "Expected: end of statement, found: x".to_string(),
                Some((2, 7))
            )
        );
        assert_eq!(split_position("no position"), ("no position".into(), None));
    }
}
