//! Configuration: every key, its default, loading, validation and clear errors.
//!
//! The shipped `config.toml` documents every key with its default; a test checks that it
//! parses to exactly [`Config::default`]. Lookup order: `--config PATH`, else `./config.toml`,
//! else `$XDG_CONFIG_HOME/iotaa/config.toml` (`~/.config/iotaa/config.toml`); no file at all
//! means the defaults. Relative paths in a file resolve against the file's folder.
//!
//! Errors name file, line, column, key and what was expected, in one line:
//! `config.toml:12:9: detector.trees: expected a positive integer, got -3`.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::keymap::{Keymap, KeysConfig};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Flush the buffer after this many seconds (Firehose: 0–900; the seed used 60).
    pub buffer_interval_secs: u32,
    /// …or when it holds this many MiB (Firehose: 1–128).
    #[serde(deserialize_with = "positive_u32")]
    pub buffer_size_mib: u32,
    pub compression: Compression,
    /// Key prefix in the lake before `YYYY/MM/DD/HH/`.
    pub prefix: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            buffer_interval_secs: 10,
            buffer_size_mib: 1,
            compression: Compression::Gzip,
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

/// Where the config came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    Defaults,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Defaults => f.write_str("built-in defaults (no config file found)"),
        }
    }
}

/// A config that loaded and validated, with paths resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: Source,
    pub keymap: Keymap,
    /// `config.data_dir` resolved to an absolute-or-file-relative path.
    pub data_dir: PathBuf,
    pub queries_dir: PathBuf,
}

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

/// Finds the config file: `explicit` (must exist), else `./config.toml`, else the XDG one.
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        if !path.exists() {
            return Err(ConfigError {
                file: path.to_path_buf(),
                position: None,
                key: None,
                message: "no such file (given with --config)".into(),
            });
        }
        return Ok(Some(path.to_path_buf()));
    }
    let local = PathBuf::from("config.toml");
    if local.is_file() {
        return Ok(Some(local));
    }
    Ok(xdg_dir("XDG_CONFIG_HOME", ".config")
        .map(|d| d.join("iotaa").join("config.toml"))
        .filter(|p| p.is_file()))
}

fn xdg_dir(var: &str, home_fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_fallback)))
}

/// Locates, reads, parses and validates the config.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    match locate(explicit)? {
        // Absolute, so messages and the Stack pane say where the file is.
        Some(path) => load_file(&std::path::absolute(&path).unwrap_or(path)),
        None => from_parts(Config::default(), Source::Defaults, None),
    }
}

pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        position: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    load_bytes(bytes, path)
}

/// Parses and validates the bytes of the file at `path`, as [`load_file`] does once it has
/// read them (a file that is not UTF-8 is an error with its position).
pub fn load_bytes(bytes: Vec<u8>, path: &Path) -> Result<Loaded, ConfigError> {
    let err = |message: String| ConfigError {
        file: path.to_path_buf(),
        position: None,
        key: None,
        message,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, col) = line_col(&String::from_utf8_lossy(e.as_bytes()), at);
        ConfigError {
            position: Some((line, col)),
            ..err(format!(
                "not valid UTF-8 (byte {at}); save the file as UTF-8"
            ))
        }
    })?;
    parse(&text, path)
}

/// Parses and validates `text` as the contents of `path`.
pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let at = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
        file: path.to_path_buf(),
        position: span.map(|s| line_col(text, s.start)),
        key,
        message,
    };
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span();
        let key = span.clone().and_then(|s| key_at(text, s.start));
        at(span, key, friendly(e.message()))
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    from_parts(config, Source::File(path.to_path_buf()), Some(&base)).map_err(|mut e| {
        // Validation errors carry only the key: find where it is in the file.
        if let Some(key) = &e.key {
            e.position = span_of(text, key).map(|s| line_col(text, s.start));
        }
        e.file = path.to_path_buf();
        e
    })
}

fn from_parts(config: Config, source: Source, base: Option<&Path>) -> Result<Loaded, ConfigError> {
    let file = match &source {
        Source::File(p) => p.clone(),
        Source::Defaults => PathBuf::from("<defaults>"),
    };
    let invalid = |key: &str, message: String| ConfigError {
        file: file.clone(),
        position: None,
        key: Some(key.to_string()),
        message,
    };
    validate(&config).map_err(|(key, msg)| invalid(&key, msg))?;
    let keymap = Keymap::new(&config.keys).map_err(|(key, msg)| invalid(&key, msg))?;
    let resolve = |p: &Path| match base {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    };
    let data_dir = match &config.data_dir {
        Some(dir) => resolve(dir),
        None => xdg_dir("XDG_DATA_HOME", ".local/share")
            .map(|d| d.join("iotaa"))
            .unwrap_or_else(|| PathBuf::from(".iotaa")),
    };
    let queries_dir = resolve(&config.query.queries_dir);
    Ok(Loaded {
        config,
        source,
        keymap,
        data_dir,
        queries_dir,
    })
}

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
    if dl.buffer_interval_secs > 900 {
        return fail(
            "delivery.buffer_interval_secs",
            format!(
                "expected 0 to 900 (Firehose's range), got {}",
                dl.buffer_interval_secs
            ),
        );
    }
    if dl.buffer_size_mib > 128 {
        return fail(
            "delivery.buffer_size_mib",
            format!(
                "expected 1 to 128 (Firehose's range), got {}",
                dl.buffer_size_mib
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
fn key_at(text: &str, offset: usize) -> Option<String> {
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
fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
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
fn friendly(message: &str) -> String {
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

impl Loaded {
    /// The effective config as TOML: resolved paths and the full keymap.
    pub fn to_toml(&self) -> String {
        let mut c = self.config.clone();
        c.data_dir = Some(self.data_dir.clone());
        c.query.queries_dir = self.queries_dir.clone();
        c.keys = self.keymap.to_config();
        toml::to_string(&c).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("config.toml"))
            .unwrap_err()
            .to_string()
    }

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

    #[test]
    fn key_errors_are_config_errors() {
        let e = err("[keys]\nzoom = \"ctrl-\"\n");
        assert!(e.starts_with("config.toml:2:8: keys.zoom: "), "{e}");
        let e = err("[keys]\nexplode = \"x\"\n");
        assert!(
            e.starts_with("config.toml:2:1: keys.explode: expected one of `quit`"),
            "{e}"
        );
        let e = err("[keys]\nzoom = \"k\"\nquit = \"k\"\n");
        assert!(
            e.starts_with("config.toml:2:8: keys.zoom: `k` is also bound"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = err("[producer\nrate = 1\n");
        assert!(e.starts_with("config.toml:1:"), "{e}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/iotaa.toml"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/iotaa.toml: no such file (given with --config)"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é = 1\nx", 7), (2, 1));
    }
}
