//! The config's sections: every key, its type and its serde default, and the shipped
//! `config.toml` that documents them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::keymap::KeysConfig;

/// The config file shipped at the top of the repository: documentation and test fixture.
pub const SHIPPED: &str = include_str!("../../config.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Everything embedded on this machine: no AWS account, no network.
    Local,
    /// Kinesis, Firehose, S3, Lambda, SNS and Athena from one CloudFormation stack.
    Aws,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Local => "local",
            Backend::Aws => "aws",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub backend: Backend,
    /// Streams, lake, checkpoints, model snapshots, alerts.log, history and logs live here.
    /// `None` means the platform data folder (`$XDG_DATA_HOME/iotaa`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    pub producer: ProducerConfig,
    pub spike: SpikeConfig,
    pub detector: DetectorConfig,
    pub delivery: DeliveryConfig,
    pub alerts: AlertsConfig,
    pub query: QueryConfig,
    pub local: LocalConfig,
    pub aws: AwsConfig,
    pub log: LogConfig,
    pub keys: KeysConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Local,
            data_dir: None,
            producer: ProducerConfig::default(),
            spike: SpikeConfig::default(),
            detector: DetectorConfig::default(),
            delivery: DeliveryConfig::default(),
            alerts: AlertsConfig::default(),
            query: QueryConfig::default(),
            local: LocalConfig::default(),
            aws: AwsConfig::default(),
            log: LogConfig::default(),
            keys: KeysConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProducerConfig {
    /// Start sending as soon as the dashboard starts.
    pub autostart: bool,
    pub devices: Vec<String>,
    /// Readings per second, per device.
    #[serde(deserialize_with = "positive_f64")]
    pub rate: f64,
    /// Normal readings are uniform in `min_value..=max_value`.
    pub min_value: i16,
    pub max_value: i16,
    /// Readings per PutRecords-style batch (Kinesis and Firehose take at most 500).
    #[serde(deserialize_with = "positive_u32")]
    pub batch_size: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            autostart: true,
            devices: ["aaaa", "bbbb", "cccc", "dddd", "eeee"]
                .map(String::from)
                .to_vec(),
            rate: 1.0,
            min_value: -5,
            max_value: 5,
            batch_size: 500,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeDirection {
    Both,
    High,
    Low,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeConfig {
    /// A spike's reading is `min_magnitude..=max_magnitude`, signed by `direction`.
    #[serde(deserialize_with = "positive_i16")]
    pub min_magnitude: i16,
    #[serde(deserialize_with = "positive_i16")]
    pub max_magnitude: i16,
    pub direction: SpikeDirection,
    /// The device that spikes; absent means a random one of `producer.devices`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            min_magnitude: 400,
            max_magnitude: 500,
            direction: SpikeDirection::Both,
            device: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    #[serde(deserialize_with = "positive_u32")]
    pub trees: u32,
    #[serde(deserialize_with = "positive_u32")]
    pub sample_size: u32,
    /// KDA's timeDecay: a number of records (decay rate 1/N).
    #[serde(deserialize_with = "positive_u32")]
    pub time_decay: u32,
    #[serde(deserialize_with = "positive_u32")]
    pub shingle_size: u32,
    /// One forest per device instead of one over all devices.
    pub per_device: bool,
    /// Add ANOMALY_EXPLANATION to scored readings.
    pub explanation: bool,
    pub random_seed: u64,
    /// Save the model this often (and on quit), so a restart does not warm up again.
    #[serde(deserialize_with = "positive_u32")]
    pub snapshot_interval_secs: u32,
}

impl Default for DetectorConfig {
    /// The seed's RANDOM_CUT_FOREST parameters, from the detector's one definition of them.
    fn default() -> Self {
        let p = crate::detector::DetectorParams::seed();
        DetectorConfig {
            trees: p.trees as u32,
            sample_size: p.sample_size as u32,
            time_decay: p.time_decay as u32,
            shingle_size: p.shingle_size as u32,
            per_device: p.per_device,
            explanation: p.explanation,
            random_seed: p.random_seed,
            snapshot_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    Gzip,
    None,
}

/// What the lake's objects hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LakeFormat {
    /// Newline-delimited JSON, the records exactly as sent (`compression` applies).
    #[default]
    Json,
    /// Parquet with the Glue table's columns, Snappy-compressed, `.parquet` (Firehose's record
    /// format conversion). Records that are not readings go to the error prefix instead.
    Parquet,
}

impl LakeFormat {
    /// The value as config.toml and the template's `LakeFormat` parameter spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LakeFormat::Json => "json",
            LakeFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Flush the buffer after this many seconds (Firehose: 0–900; the seed used 60).
    pub buffer_interval_secs: u32,
    /// …or when it holds this many MiB (Firehose: 1–128).
    #[serde(deserialize_with = "positive_u32")]
    pub buffer_size_mib: u32,
    pub compression: Compression,
    /// JSON lines or Parquet objects.
    pub format: LakeFormat,
    /// Key prefix in the lake before `YYYY/MM/DD/HH/`.
    pub prefix: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            buffer_interval_secs: 10,
            buffer_size_mib: 1,
            compression: Compression::Gzip,
            format: LakeFormat::Json,
            prefix: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alert when ANOMALY_SCORE is above this.
    #[serde(deserialize_with = "positive_f64")]
    pub threshold: f64,
    /// POST each alert as JSON here; absent means no webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            threshold: 4.0,
            webhook_url: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    pub database: String,
    pub table: String,
    /// Rows collected per result; the rest are counted, not kept.
    #[serde(deserialize_with = "positive_u32")]
    pub max_rows: u32,
    /// Folder of example queries (`*.sql`).
    pub queries_dir: PathBuf,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            database: "analyticsdemo".into(),
            table: "devicedata".into(),
            max_rows: 10_000,
            queries_dir: PathBuf::from("queries"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    pub readings_stream: String,
    pub anomaly_stream: String,
    /// Name of the delivery stream; lake objects are named after it, as Firehose does.
    pub delivery_stream: String,
    /// Whole stream segments older than this are deleted (Kinesis' default retention: 24 h).
    #[serde(deserialize_with = "positive_u32")]
    pub retention_hours: u32,
    #[serde(deserialize_with = "positive_u32")]
    pub segment_size_mib: u32,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            readings_stream: "readings".into(),
            anomaly_stream: "anomalies".into(),
            delivery_stream: "devicedata".into(),
            retention_hours: 24,
            segment_size_mib: 16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingest {
    /// Producers write to the readings stream (Kinesis); Firehose and the detector read it.
    Kinesis,
    /// The seed's topology: producers call Firehose PutRecordBatch directly.
    Firehose,
}

impl Ingest {
    /// The value as config.toml and the template's `Ingest` parameter spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingest::Kinesis => "kinesis",
            Ingest::Firehose => "firehose",
        }
    }
}

/// Where the detector runs on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorPlace {
    /// A Lambda function in the stack (crate `lambda/`): always on, whoever has a dashboard open.
    Lambda,
    /// In this process, as in local mode (for accounts that cannot create functions).
    App,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    pub stack_name: String,
    /// Absent: the SDK's usual chain (AWS_REGION, profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// An AWS-compatible endpoint (e.g. moto); `AWS_ENDPOINT_URL` works too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    pub ingest: Ingest,
    /// Shards per Kinesis stream; 0 means on-demand capacity.
    pub shard_count: u32,
    /// Email subscribed to the alert topic (confirm the mail AWS sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_email: Option<String>,
    /// Firehose's buffering on AWS (the seed's 60 s / 1 MiB; `[delivery]`'s are the local
    /// delivery's, 10 s by default so that a first query has data quickly).
    pub buffer_interval_secs: u32,
    pub buffer_size_mib: u32,
    /// Lake objects expire this many days after they land; 0 keeps them.
    pub lake_expiration_days: u32,
    /// Athena cancels a query that scans more than this many bytes (the workgroup's
    /// BytesScannedCutoffPerQuery; at least 10,000,000).
    pub bytes_scanned_cutoff: u64,
    /// Turn on the stack's termination protection on deploy (off: `stack delete` works).
    pub termination_protection: bool,
    /// Where the detector runs: in a Lambda function of the stack, or in this process.
    pub detector: DetectorPlace,
    /// The function's zip (`bootstrap.zip`) to deploy instead of building it with cargo-lambda
    /// (`stack deploy --artifact PATH` sets it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector_artifact: Option<std::path::PathBuf>,
    /// Set by `stack delete --delete-lake` only (never read from a file): delete the lake
    /// bucket too, which the stack otherwise keeps (DeletionPolicy Retain).
    #[serde(skip)]
    pub delete_lake: bool,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            stack_name: "iotaa".into(),
            region: None,
            profile: None,
            endpoint_url: None,
            ingest: Ingest::Kinesis,
            shard_count: 0,
            alert_email: None,
            buffer_interval_secs: 60,
            buffer_size_mib: 1,
            lake_expiration_days: 0,
            bytes_scanned_cutoff: 10 * 1024 * 1024 * 1024,
            termination_protection: false,
            detector: DetectorPlace::Lambda,
            detector_artifact: None,
            delete_lake: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `iot_anomaly_analytics=debug,warn`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

fn positive<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    // Read as i64 first so that `-3` gets our message rather than "expected u32".
    let v = i64::deserialize(d)?;
    match T::try_from(v) {
        Ok(t) if v > 0 => Ok(t),
        _ if v <= 0 => Err(serde::de::Error::custom(format!(
            "expected a positive integer, got {v}"
        ))),
        _ => Err(serde::de::Error::custom(format!(
            "expected a positive integer up to {}, got {v}",
            type_max::<T>()
        ))),
    }
}

fn type_max<T>() -> &'static str {
    match std::mem::size_of::<T>() {
        2 => "32767",
        4 => "4294967295",
        _ => "the largest integer",
    }
}

fn positive_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    positive(d)
}

fn positive_i16<'de, D: Deserializer<'de>>(d: D) -> Result<i16, D::Error> {
    positive(d)
}

fn positive_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    // TOML integers are fine where a number is expected (`threshold = 4`).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        Float(f64),
    }
    let v = match Number::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a positive number"))?
    {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    };
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a positive number, got {v}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse;
    use crate::keymap::Keymap;

    #[test]
    fn shipped_file_is_the_defaults() {
        let loaded = parse(SHIPPED, Path::new("/repo/config.toml")).unwrap();
        let expected = Config {
            data_dir: Some(PathBuf::from("data")),
            ..Config::default()
        };
        assert_eq!(loaded.config, expected);
        assert_eq!(loaded.data_dir, PathBuf::from("/repo/data"));
        assert_eq!(loaded.queries_dir, PathBuf::from("/repo/queries"));
    }

    /// Every key that has a default appears in the shipped file (set or commented out), so
    /// the file documents every key.
    #[test]
    fn shipped_file_documents_every_key() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut missing = Vec::new();
        for (section, value) in &defaults {
            let keys: Vec<String> = match value.as_table() {
                Some(t) => t.keys().map(|k| format!("{section}.{k}")).collect(),
                None => vec![section.clone()],
            };
            for key in keys {
                let leaf = key.rsplit('.').next().unwrap();
                let written = SHIPPED.lines().any(|l| {
                    l.trim_start_matches(['#', ' '])
                        .starts_with(&format!("{leaf} ="))
                });
                if !written {
                    missing.push(key);
                }
            }
        }
        for optional in [
            "data_dir",
            "spike.device",
            "alerts.webhook_url",
            "aws.region",
            "aws.profile",
            "aws.endpoint_url",
            "aws.alert_email",
        ] {
            let leaf = optional.rsplit('.').next().unwrap();
            if !SHIPPED.lines().any(|l| {
                l.trim_start_matches(['#', ' '])
                    .starts_with(&format!("{leaf} ="))
            }) {
                missing.push(optional.to_string());
            }
        }
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
    }

    /// The `[keys]` defaults written as comments in the shipped file are the real defaults.
    #[test]
    fn shipped_key_comments_are_the_default_keymap() {
        let keys_section = SHIPPED.split("\n[keys]\n").nth(1).unwrap();
        let uncommented: String = keys_section
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let keys: KeysConfig = toml::from_str(&uncommented).unwrap();
        assert_eq!(keys.len(), crate::action::BINDABLE.len());
        assert_eq!(Keymap::new(&keys).unwrap(), Keymap::default());
    }
}
