//! Loading: finding and reading the config file, parsing its TOML, and resolving it into a
//! [`Loaded`] (validated, with paths resolved and the keymap built).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, friendly, key_at, line_col, span_of};
use super::types::Config;
use super::validate::validate;
use crate::keymap::Keymap;

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
    let mut config = config;
    config.aws.detector_artifact = config.aws.detector_artifact.as_deref().map(resolve);
    Ok(Loaded {
        config,
        source,
        keymap,
        data_dir,
        queries_dir,
    })
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
    use crate::config::err;

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
    fn missing_explicit_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/iotaa.toml"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/iotaa.toml: no such file (given with --config)"
        );
    }
}
