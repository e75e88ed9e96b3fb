//! Validation: range and consistency checks on a config whose types are already right.

use super::types::Config;

/// Checks values, not just types. Returns the dotted key and what was expected.
pub fn validate(c: &Config) -> Result<(), (String, String)> {
    let fail = |key: &str, msg: String| Err((key.to_string(), msg));
    let p = &c.producer;
    if p.devices.is_empty() {
        return fail("producer.devices", "expected at least one device id".into());
    }
    for (i, d) in p.devices.iter().enumerate() {
        if d.trim().is_empty() || d.chars().any(char::is_control) {
            return fail(
                "producer.devices",
                format!("expected non-empty device ids without control characters, got {d:?}"),
            );
        }
        if p.devices[..i].contains(d) {
            return fail(
                "producer.devices",
                format!("expected unique device ids, got {d:?} twice"),
            );
        }
    }
    if !cfg!(feature = "sql") && c.delivery.format == super::LakeFormat::Parquet {
        return fail(
            "delivery.format",
            "expected \"json\": this build has no Parquet writer (built without the `sql` feature)"
                .into(),
        );
    }
    if p.min_value > p.max_value {
        return fail(
            "producer.max_value",
            format!(
                "expected at least min_value ({}), got {}",
                p.min_value, p.max_value
            ),
        );
    }
    if p.batch_size > 500 {
        return fail(
            "producer.batch_size",
            format!(
                "expected at most 500 (the PutRecords limit), got {}",
                p.batch_size
            ),
        );
    }
    let s = &c.spike;
    if s.min_magnitude > s.max_magnitude {
        return fail(
            "spike.max_magnitude",
            format!(
                "expected at least min_magnitude ({}), got {}",
                s.min_magnitude, s.max_magnitude
            ),
        );
    }
    if let Some(d) = &s.device
        && !p.devices.contains(d)
    {
        return fail(
            "spike.device",
            format!("expected one of producer.devices, got {d:?}"),
        );
    }
    let d = &c.detector;
    if d.sample_size < 4 {
        return fail(
            "detector.sample_size",
            format!("expected at least 4, got {}", d.sample_size),
        );
    }
    if d.trees > 1000 {
        return fail(
            "detector.trees",
            format!("expected at most 1000, got {}", d.trees),
        );
    }
    let dl = &c.delivery;
    // The same buffering ranges for the local delivery and for Firehose on AWS.
    for (section, interval, size) in [
        ("delivery", dl.buffer_interval_secs, dl.buffer_size_mib),
        ("aws", c.aws.buffer_interval_secs, c.aws.buffer_size_mib),
    ] {
        if interval > 900 {
            return fail(
                &format!("{section}.buffer_interval_secs"),
                format!("expected 0 to 900 (Firehose's range), got {interval}"),
            );
        }
        if size > 128 {
            return fail(
                &format!("{section}.buffer_size_mib"),
                format!("expected 1 to 128 (Firehose's range), got {size}"),
            );
        }
    }
    if c.aws.bytes_scanned_cutoff < 10_000_000 {
        return fail(
            "aws.bytes_scanned_cutoff",
            format!(
                "expected at least 10000000 (Athena's smallest per-query limit, 10 MB), got {}",
                c.aws.bytes_scanned_cutoff
            ),
        );
    }
    if !dl.prefix.is_empty() && (dl.prefix.starts_with('/') || dl.prefix.contains("..")) {
        return fail(
            "delivery.prefix",
            format!(
                "expected a relative key prefix like \"readings/\", got {:?}",
                dl.prefix
            ),
        );
    }
    if let Some(url) = &c.alerts.webhook_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return fail(
            "alerts.webhook_url",
            format!("expected an http:// or https:// URL, got {url:?}"),
        );
    }
    for (key, name) in [
        ("query.database", &c.query.database),
        ("query.table", &c.query.table),
        ("local.readings_stream", &c.local.readings_stream),
        ("local.anomaly_stream", &c.local.anomaly_stream),
        ("local.delivery_stream", &c.local.delivery_stream),
        ("aws.stack_name", &c.aws.stack_name),
    ] {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
        if !ok {
            return fail(
                key,
                format!("expected a name of letters, digits, '-' and '_', got {name:?}"),
            );
        }
    }
    if c.local.readings_stream == c.local.anomaly_stream {
        return fail(
            "local.anomaly_stream",
            "expected a different name from local.readings_stream".into(),
        );
    }
    if let Some(url) = &c.aws.endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return fail(
            "aws.endpoint_url",
            format!("expected an http:// or https:// URL, got {url:?}"),
        );
    }
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    // A bare word is a valid filter (a target at every level) but never what is meant here.
    let directives_ok = c.log.level.split(',').all(|d| {
        let d = d.trim();
        LEVELS.contains(&d.to_ascii_lowercase().as_str()) || d.contains('=')
    });
    if !directives_ok || tracing_subscriber::EnvFilter::try_new(&c.log.level).is_err() {
        return fail(
            "log.level",
            format!(
                "expected a level (error, warn, info, debug, trace) or a filter like \"iot_anomaly_analytics=debug,warn\", got {:?}",
                c.log.level
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::err;

    #[test]
    fn validation_errors_point_at_the_value() {
        assert_eq!(
            err("[producer]\ndevices = [\"a\", \"b\", \"a\"]\n"),
            "config.toml:2:11: producer.devices: expected unique device ids, got \"a\" twice"
        );
        assert_eq!(
            err("[detector]\nsample_size = 2\n"),
            "config.toml:2:15: detector.sample_size: expected at least 4, got 2"
        );
        assert_eq!(
            err("[alerts]\nthreshold = 0\n"),
            "config.toml:2:13: alerts.threshold: expected a positive number, got 0"
        );
    }
}
