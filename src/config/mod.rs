//! Configuration: every key, its default, loading, validation and clear errors.
//!
//! The shipped `config.toml` documents every key with its default; a test checks that it
//! parses to exactly [`Config::default`]. Lookup order: `--config PATH`, else `./config.toml`,
//! else `$XDG_CONFIG_HOME/iotaa/config.toml` (`~/.config/iotaa/config.toml`); no file at all
//! means the defaults. Relative paths in a file resolve against the file's folder.
//!
//! Errors name file, line, column, key and what was expected, in one line:
//! `config.toml:12:9: detector.trees: expected a positive integer, got -3`.

mod error;
mod load;
mod types;
mod validate;

pub use error::{ConfigError, line_col};
pub use load::{Loaded, Source, load, load_bytes, load_file, locate, parse};
pub use types::{
    AlertsConfig, AwsConfig, Backend, Compression, Config, DeliveryConfig, DetectorConfig,
    DetectorPlace, Ingest, LakeFormat, LocalConfig, LogConfig, ProducerConfig, QueryConfig,
    SHIPPED, SpikeConfig, SpikeDirection,
};
pub use validate::validate;

/// The error `text` gives as `config.toml`, as the user sees it (the unit tests' helper).
#[cfg(test)]
fn err(text: &str) -> String {
    parse(text, std::path::Path::new("config.toml"))
        .unwrap_err()
        .to_string()
}
