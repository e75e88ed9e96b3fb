//! Text for people, written once: any message as one line, an error with its causes, and
//! sizes in bytes (binary units, `KiB`, `MiB`, `GiB`, in every view and command).

use std::error::Error;

/// `text` on one line: lines trimmed, blank ones dropped, joined with `; ` (or a space after
/// punctuation), and runs of spaces or tabs inside a line collapsed to one space.
pub fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with(['.', ':', '!', '?', ',', ';']) {
                " "
            } else {
                "; "
            });
        }
        out.push_str(&line);
    }
    out
}

/// An error and its causes on one line, joined with `: `, each message once (an error that
/// repeats its source's text, as SDK and I/O wrappers do, is not said twice).
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    chain_of(std::iter::successors(Some(error), |e| (*e).source()))
}

/// [`error_chain`] of an `eyre` report (its context lines, then the error's causes).
pub fn report_chain(report: &color_eyre::Report) -> String {
    chain_of(report.chain())
}

fn chain_of<'a>(errors: impl Iterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in errors {
        let text = one_line(&e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// `512 B`, `1.2 KiB`, `3.4 MiB`, `5.6 GiB`, `7.8 TiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines_and_collapses_spaces() {
        assert_eq!(one_line("a\n  b  c \n\nd."), "a; b c; d.");
        assert_eq!(one_line("Error:\n  at 1:2"), "Error: at 1:2");
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(one_line(" \n\t"), "");
    }

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<Box<Wrapped>>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn a_chain_says_each_cause_once_on_one_line() {
        let e = Wrapped(
            "dispatch failure",
            Some(Box::new(Wrapped(
                "io error",
                Some(Box::new(Wrapped("connection\nrefused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "dispatch failure: io error: connection; refused"
        );
        let repeats = Wrapped("read x: denied", Some(Box::new(Wrapped("denied", None))));
        assert_eq!(error_chain(&repeats), "read x: denied");
        let report = color_eyre::eyre::eyre!("inner").wrap_err("outer");
        assert_eq!(report_chain(&report), "outer: inner");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
