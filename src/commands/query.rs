//! `iotaa query`: one query on the backend's query engine (the embedded one over the local
//! lake, or Athena), printed to stdout, summary on stderr. Ctrl-C cancels it where it runs.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use color_eyre::eyre::{Result, WrapErr, eyre};

use super::stop_on_signal;
use crate::backend;
use crate::cli::Format;
use crate::config::Loaded;
use crate::query::{
    QueryError, QueryOutput, format_csv, format_json, format_summary, format_table,
};

/// Finds the SQL: the argument, else `-f FILE` (also looked up in `query.queries_dir`), else
/// standard input when it is not a terminal.
fn read_sql(loaded: &Loaded, sql: Option<String>, file: Option<PathBuf>) -> Result<String> {
    if let Some(sql) = sql {
        return Ok(sql);
    }
    if let Some(file) = file {
        let path = resolve_query_file(&loaded.queries_dir, &file);
        return std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("cannot read {}", path.display()));
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(eyre!(
            "expected SQL: iotaa query \"SELECT …\", iotaa query -f FILE.sql, or SQL on standard input"
        ));
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .wrap_err("cannot read SQL from standard input")?;
    Ok(text)
}

/// `FILE` as given if it exists, else `queries_dir/FILE` if that exists.
fn resolve_query_file(queries_dir: &Path, file: &Path) -> PathBuf {
    if !file.exists() && file.is_relative() {
        let in_dir = queries_dir.join(file);
        if in_dir.exists() {
            return in_dir;
        }
    }
    file.to_path_buf()
}

/// Runs `iotaa query`. Query errors print `iotaa: query: …` (one line) and exit 1.
pub fn query(
    loaded: &Loaded,
    sql: Option<String>,
    file: Option<PathBuf>,
    max_rows: Option<u32>,
    format: Format,
) -> Result<ExitCode> {
    let sql = read_sql(loaded, sql, file).wrap_err("query")?;
    let runtime = backend::runtime("query").wrap_err("query")?;
    let engine = backend::query(loaded, &runtime).wrap_err("query")?;
    let cancel = stop_on_signal();
    let result = runtime.block_on(engine.run(sql, max_rows.map(|m| m as usize), cancel));
    // Scan threads end on their own once the stream is gone; do not wait for stragglers.
    runtime.shutdown_background();
    print(result, format)
}

/// Prints a result (or its one-line error) and the summary line.
fn print(result: Result<QueryOutput, QueryError>, format: Format) -> Result<ExitCode> {
    let output = match result {
        Ok(output) => output,
        Err(e) => {
            eprintln!("iotaa: query: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let text = match format {
        Format::Table => format_table(&output),
        Format::Csv => format_csv(&output),
        Format::Json => format_json(&output),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        // `iotaa query … | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).wrap_err("query: cannot write the result"),
    }
    for line in &output.skipped_objects {
        eprintln!("skipped {line}");
    }
    eprintln!("{}", format_summary(&output));
    Ok(ExitCode::SUCCESS)
}
