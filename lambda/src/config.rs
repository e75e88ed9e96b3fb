//! The function's configuration: its environment, as the template sets it.

use std::time::Duration;

use iotaa_detector::DetectorParams;

/// What the function needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub params: DetectorParams,
    /// Kinesis stream the scored readings go to.
    pub anomaly_stream: String,
    /// Bucket and key prefix (ends with `/`, or empty) of the model snapshots.
    pub bucket: String,
    pub prefix: String,
    /// Save a model at most this often, and at least this often while readings arrive.
    pub snapshot_interval: Duration,
}

/// Reads the configuration through `var` (the environment in the function, a map in tests).
/// One line naming the variable and what was expected when one is missing or malformed.
pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let required = |name: &str| {
        var(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("environment variable {name} is not set"))
    };
    fn number<T: std::str::FromStr>(
        var: &dyn Fn(&str) -> Option<String>,
        name: &str,
        default: T,
    ) -> Result<T, String> {
        match var(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                format!("environment variable {name} is {v:?}: expected a whole number")
            }),
        }
    }
    fn flag(
        var: &dyn Fn(&str) -> Option<String>,
        name: &str,
        default: bool,
    ) -> Result<bool, String> {
        match var(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!(
                "environment variable {name} is {v:?}: expected true or false"
            )),
        }
    }
    let var: &dyn Fn(&str) -> Option<String> = &var;
    let d = DetectorParams::seed();
    let params = DetectorParams {
        trees: number(var, "DETECTOR_TREES", d.trees)?,
        sample_size: number(var, "DETECTOR_SAMPLE_SIZE", d.sample_size)?,
        time_decay: number(var, "DETECTOR_TIME_DECAY", d.time_decay)?,
        shingle_size: number(var, "DETECTOR_SHINGLE_SIZE", d.shingle_size)?,
        per_device: flag(var, "DETECTOR_PER_DEVICE", d.per_device)?,
        explanation: flag(var, "DETECTOR_EXPLANATION", d.explanation)?,
        random_seed: number(var, "DETECTOR_RANDOM_SEED", d.random_seed)?,
    };
    params
        .validate()
        .map_err(|e| format!("detector parameters: {e}"))?;
    let secs: u64 = number(var, "SNAPSHOT_INTERVAL_SECS", 60)?;
    if secs == 0 {
        return Err("environment variable SNAPSHOT_INTERVAL_SECS is 0: expected at least 1".into());
    }
    let mut prefix = var("STATE_PREFIX").unwrap_or_else(|| "detector-state/".to_string());
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(Config {
        params,
        anomaly_stream: required("ANOMALY_STREAM_NAME")?,
        bucket: required("STATE_BUCKET")?,
        prefix,
        snapshot_interval: Duration::from_secs(secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_seed_and_each_bad_value_is_named() {
        let base = [
            ("ANOMALY_STREAM_NAME", "s-anomalies"),
            ("STATE_BUCKET", "b"),
        ];
        let c = from_vars(vars(&base)).unwrap();
        assert_eq!(c.params, DetectorParams::seed());
        assert_eq!(c.prefix, "detector-state/");
        assert_eq!(c.snapshot_interval, Duration::from_secs(60));

        let mut v = base.to_vec();
        v.extend([
            ("DETECTOR_PER_DEVICE", "true"),
            ("DETECTOR_TREES", "30"),
            ("STATE_PREFIX", "x"),
        ]);
        let c = from_vars(vars(&v)).unwrap();
        assert!(c.params.per_device);
        assert_eq!(c.params.trees, 30);
        assert_eq!(c.prefix, "x/");

        let err = from_vars(vars(&[("STATE_BUCKET", "b")])).unwrap_err();
        assert_eq!(err, "environment variable ANOMALY_STREAM_NAME is not set");
        let mut v = base.to_vec();
        v.push(("DETECTOR_EXPLANATION", "yes"));
        assert!(
            from_vars(vars(&v))
                .unwrap_err()
                .contains("DETECTOR_EXPLANATION is \"yes\": expected true or false")
        );
        let mut v = base.to_vec();
        v.push(("DETECTOR_SAMPLE_SIZE", "2"));
        assert!(from_vars(vars(&v)).unwrap_err().contains("sample_size"));
    }
}
