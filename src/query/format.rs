//! Printing a [`QueryOutput`]: an aligned table, CSV or JSON lines, and the one-line summary.

use std::fmt::Write as _;

use super::QueryOutput;

fn is_numeric(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint" | "smallint" | "integer" | "bigint" | "real" | "double"
    ) || data_type.starts_with("decimal")
}

/// Aligned columns under a header; NULL shown as `NULL`, numbers right-aligned.
pub fn format_table(output: &QueryOutput) -> String {
    let cell = |v: &Option<String>| -> String {
        match v {
            None => "NULL".to_string(),
            Some(s) => s
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\t', " "),
        }
    };
    let cells: Vec<Vec<String>> = output
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = output
        .columns
        .iter()
        .map(|c| c.name.chars().count())
        .collect();
    for row in &cells {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    let right: Vec<bool> = output
        .columns
        .iter()
        .map(|c| is_numeric(&c.data_type))
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, values: &[String]| {
        let mut text = String::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(v.chars().count());
            if right[i] {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(v);
            } else {
                text.push_str(v);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let header: Vec<String> = output.columns.iter().map(|c| c.name.clone()).collect();
    line(&mut out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for row in &cells {
        line(&mut out, row);
    }
    out
}

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// CSV with a header (RFC 4180 quoting); NULL is an empty field.
pub fn format_csv(output: &QueryOutput) -> String {
    let mut out = String::new();
    for (i, c) in output.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, &c.name);
    }
    out.push('\n');
    for row in &output.rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(v) = v {
                csv_field(&mut out, v);
            }
        }
        out.push('\n');
    }
    out
}

fn json_value(data_type: &str, v: &Option<String>) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "null".into());
    let Some(v) = v else {
        return "null".into();
    };
    match data_type {
        "tinyint" | "smallint" | "integer" | "bigint" => match v.parse::<i64>() {
            Ok(n) => n.to_string(),
            Err(_) => quoted(v),
        },
        "real" | "double" => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => serde_json::Number::from_f64(x)
                .map(|n| n.to_string())
                .unwrap_or_else(|| quoted(v)),
            _ => quoted(v),
        },
        t if t.starts_with("decimal") => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => v.clone(),
            _ => quoted(v),
        },
        "boolean" => match v.as_str() {
            "true" | "false" => v.clone(),
            _ => quoted(v),
        },
        _ => quoted(v),
    }
}

/// JSON lines: one object per row, keys in column order, numbers and booleans typed.
pub fn format_json(output: &QueryOutput) -> String {
    let mut out = String::new();
    for row in &output.rows {
        out.push('{');
        for (i, (c, v)) in output.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{}:{}",
                serde_json::to_string(&c.name).unwrap_or_default(),
                json_value(&c.data_type, v)
            );
        }
        out.push_str("}\n");
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line: rows, what was dropped, bytes scanned, objects, malformed lines, time, cost.
pub fn format_summary(output: &QueryOutput) -> String {
    let rows = output.rows.len() as u64;
    let mut s = plural(rows, "row", "rows");
    match (output.more_rows, output.dropped_rows) {
        (true, Some(n)) => {
            let _ = write!(s, " (+{n} more not kept: max rows reached)");
        }
        (true, None) => s.push_str(" (more rows were dropped: max rows reached)"),
        _ => {}
    }
    if let Some(id) = &output.execution_id {
        let _ = write!(
            s,
            " · {} scanned · {:.3} s · Athena cost ≈ ${:.6} · query {id}",
            crate::text::bytes(output.bytes_scanned),
            output.elapsed.as_secs_f64(),
            output.cost_usd()
        );
        return s;
    }
    let _ = write!(
        s,
        " · {} scanned in {} · {} skipped · {:.3} s · Athena cost ≈ ${:.6}",
        crate::text::bytes(output.bytes_scanned),
        plural(output.files_scanned, "object", "objects"),
        plural(output.malformed_lines, "malformed line", "malformed lines"),
        output.elapsed.as_secs_f64(),
        output.cost_usd()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::Column;
    use super::*;
    use std::time::Duration;

    fn sample() -> QueryOutput {
        QueryOutput {
            columns: vec![
                Column {
                    name: "deviceid".into(),
                    data_type: "varchar".into(),
                },
                Column {
                    name: "n".into(),
                    data_type: "bigint".into(),
                },
                Column {
                    name: "avg".into(),
                    data_type: "double".into(),
                },
            ],
            rows: vec![
                vec![Some("aaaa".into()), Some("12".into()), Some("0.5".into())],
                vec![Some("b,\"b\"".into()), None, Some("NaN".into())],
            ],
            dropped_rows: None,
            more_rows: false,
            bytes_scanned: 2048,
            files_scanned: 1,
            malformed_lines: 0,
            skipped_objects: Vec::new(),
            execution_id: None,
            elapsed: Duration::from_millis(12),
        }
    }

    #[test]
    fn table_aligns_and_shows_null() {
        assert_eq!(
            format_table(&sample()),
            "deviceid     n  avg\n--------  ----  ---\naaaa        12  0.5\nb,\"b\"     NULL  NaN\n"
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            format_csv(&sample()),
            "deviceid,n,avg\naaaa,12,0.5\n\"b,\"\"b\"\"\",,NaN\n"
        );
    }

    #[test]
    fn json_is_typed() {
        assert_eq!(
            format_json(&sample()),
            "{\"deviceid\":\"aaaa\",\"n\":12,\"avg\":0.5}\n{\"deviceid\":\"b,\\\"b\\\"\",\"n\":null,\"avg\":\"NaN\"}\n"
        );
    }

    #[test]
    fn summary_line() {
        let s = format_summary(&sample());
        assert!(
            s.starts_with("2 rows · 2.0 KiB scanned in 1 object · 0 malformed lines skipped"),
            "{s}"
        );
    }
}
