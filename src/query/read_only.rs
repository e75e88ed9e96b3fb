//! Read-only: everything but a query is refused before planning, naming the statement.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{SetExpr, Statement as SqlStatement};

use super::output::QueryError;

/// Refuses everything but queries, before planning, with the statement's name.
pub(super) fn check_read_only(statement: &DfStatement) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(s) => check_sql_statement(s),
        DfStatement::Explain(e) => check_read_only(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(read_only("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(read_only("COPY")),
        DfStatement::Reset(_) => Err(read_only("RESET")),
    }
}

fn check_sql_statement(s: &SqlStatement) -> Result<(), QueryError> {
    match s {
        SqlStatement::Query(q) if matches!(q.body.as_ref(), SetExpr::Select(s) if s.into.is_some()) => {
            Err(read_only("SELECT INTO"))
        }
        SqlStatement::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(inner)
            | SetExpr::Update(inner)
            | SetExpr::Delete(inner)
            | SetExpr::Merge(inner) => Err(read_only(&statement_name(&inner.to_string()))),
            _ => Ok(()),
        },
        SqlStatement::ExplainTable { .. } => Ok(()),
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        other => Err(read_only(&statement_name(&other.to_string()))),
    }
}

/// The leading keywords of a statement: `CREATE TABLE`, `INSERT INTO`, `DROP VIEW`, `SET`…
fn statement_name(text: &str) -> String {
    const OBJECTS: [&str; 12] = [
        "TABLE",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "INDEX",
        "FUNCTION",
        "INTO",
        "FROM",
        "CATALOG",
        "TABLES",
        "COLUMNS",
        "TRANSACTION",
    ];
    let mut words = Vec::new();
    for w in text.split_whitespace().take(4) {
        if !w.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        words.push(w);
        if OBJECTS.contains(&w) {
            break;
        }
    }
    if words.is_empty() {
        "this statement".into()
    } else {
        words.join(" ")
    }
}

pub(super) fn read_only(what: &str) -> QueryError {
    QueryError::new(format!(
        "iotaa is read-only: {what} is not allowed (only SELECT, WITH, VALUES, EXPLAIN and DESCRIBE run here)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_names() {
        assert_eq!(statement_name("CREATE TABLE t (a INT)"), "CREATE TABLE");
        assert_eq!(statement_name("INSERT INTO t VALUES (1)"), "INSERT INTO");
        assert_eq!(statement_name("DROP TABLE IF EXISTS t"), "DROP TABLE");
        assert_eq!(statement_name("SET x = 1"), "SET");
        assert_eq!(statement_name("x"), "this statement");
    }
}
