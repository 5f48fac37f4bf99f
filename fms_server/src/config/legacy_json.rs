//! The Python FMS's server `config.json` (its deployment guide's `server/config.json`,
//! `config.prod.json`), read when `--config` names a `.json` file and mapped onto our settings.
//! Its keys that mean nothing here are accepted and named in one warning; any other key is an
//! error, as in our TOML.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, FileConfig, FileLog, FileRateLimit, PartialLimits};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldConfig {
    /// `zenoh_endpoint`.
    zenoh_server_endpoint: Option<String>,
    security: Option<OldSecurity>,
    logging: Option<OldLogging>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldSecurity {
    /// false: no cross-origin browser access (`cors_origins` empty), whatever the origins say.
    enable_cors: Option<bool>,
    /// `cors_origins`.
    allowed_origins: Option<Vec<String>>,
    rate_limiting: Option<OldRateLimiting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldRateLimiting {
    /// `[rate_limit] enabled`.
    enabled: Option<bool>,
    /// Each of `[rate_limit]` `reads_per_min`, `tasks_per_min` and `fleet_per_min`.
    requests_per_minute: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldLogging {
    /// `log_level` (Python's names are read as ours: `INFO` is `info`, `WARNING` is `warn`).
    level: Option<String>,
    /// `[log] file`.
    file: Option<PathBuf>,
    /// `[log] max_size_mb`, from a size such as `"100MB"` (rounded up to whole MiB).
    max_size: Option<String>,
    /// `[log] backups`.
    backup_count: Option<u32>,
}

/// Why a size such as `100MB` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SizeError {
    #[error("{0:?} is not a size like \"100MB\"")]
    NotASize(String),
    #[error("{0:?}: the unit must be B, KB, MB or GB")]
    Unit(String),
    #[error("{0:?} must be between 1 byte and 1 TB")]
    Range(String),
}

/// A size such as `100MB`, `1.5 GB`, `512KB` or `1048576` (bytes), in whole MiB rounded up.
fn size_mb(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| SizeError::NotASize(text.to_owned()))?;
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(SizeError::Unit(text.to_owned())),
    };
    let mb = (number * scale / (1024.0 * 1024.0)).ceil();
    if !(mb.is_finite() && (1.0..=1.0e6).contains(&mb)) {
        return Err(SizeError::Range(text.to_owned()));
    }
    Ok(mb as u64)
}

/// Reads the old `config.json` as our file settings, plus warnings to log once logging is up.
pub(super) fn load(path: &Path, text: &str) -> Result<(FileConfig, Vec<String>), ConfigError> {
    let old: OldConfig =
        fms_msgs::decode(text.as_bytes()).map_err(|source| ConfigError::ParseJson {
            path: path.to_owned(),
            source,
        })?;
    map(old)
}

fn map(old: OldConfig) -> Result<(FileConfig, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let security = old.security.unwrap_or_default();
    let cors_origins = match (security.enable_cors, security.allowed_origins) {
        (Some(false), Some(origins)) => {
            if !origins.is_empty() {
                warnings.push(
                    "security.allowed_origins is not used: security.enable_cors is false \
                     (same-origin only)"
                        .to_owned(),
                );
            }
            Some(Vec::new())
        }
        (Some(false), None) => Some(Vec::new()),
        (_, origins) => origins,
    };
    let rl = security.rate_limiting.unwrap_or_default();
    let rate_limit =
        (rl.enabled.is_some() || rl.requests_per_minute.is_some()).then(|| FileRateLimit {
            enabled: rl.enabled,
            limits: rl.requests_per_minute.map(|n| PartialLimits {
                reads_per_min: Some(n),
                tasks_per_min: Some(n),
                fleet_per_min: Some(n),
            }),
        });
    let logging = old.logging.unwrap_or_default();
    let max_size_mb = logging
        .max_size
        .as_deref()
        .map(size_mb)
        .transpose()
        .map_err(|e| ConfigError::Invalid {
            name: "logging.max_size",
            reason: e.to_string(),
        })?;
    let log = (logging.file.is_some() || max_size_mb.is_some() || logging.backup_count.is_some())
        .then_some(FileLog {
            format: None,
            file: logging.file,
            max_size_mb,
            backups: logging.backup_count,
        });
    let file = FileConfig {
        zenoh_endpoint: old.zenoh_server_endpoint,
        log_level: logging.level,
        cors_origins,
        rate_limit,
        log,
        ..FileConfig::default()
    };
    Ok((file, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(FileConfig, Vec<String>), ConfigError> {
        load(Path::new("config.json"), text)
    }

    #[test]
    fn every_key_of_the_old_file_maps_onto_ours() {
        let (f, warnings) = read(
            r#"{
              "zenoh_server_endpoint": "tcp/zenoh.site:7447",
              "security": {
                "enable_cors": true,
                "allowed_origins": ["https://ops.example.org", "http://localhost:3000"],
                "rate_limiting": {"enabled": true, "requests_per_minute": 90}
              },
              "logging": {"level": "WARNING", "file": "/var/log/fms/s.log", "max_size": "20MB", "backup_count": 3}
            }"#,
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(f.zenoh_endpoint.as_deref(), Some("tcp/zenoh.site:7447"));
        assert_eq!(
            f.cors_origins.unwrap(),
            ["https://ops.example.org", "http://localhost:3000"]
        );
        let rl = f.rate_limit.unwrap();
        let limits = rl.limits.unwrap();
        assert_eq!(rl.enabled, Some(true));
        assert_eq!(
            (
                limits.reads_per_min,
                limits.tasks_per_min,
                limits.fleet_per_min
            ),
            (Some(90), Some(90), Some(90))
        );
        assert_eq!(f.log_level.as_deref(), Some("WARNING"));
        let log = f.log.unwrap();
        assert_eq!(log.file, Some(PathBuf::from("/var/log/fms/s.log")));
        assert_eq!((log.max_size_mb, log.backups), (Some(20), Some(3)));
    }

    #[test]
    fn cors_off_drops_the_origins_with_a_warning_and_unknown_keys_fail() {
        let (f, warnings) =
            read(r#"{"security":{"enable_cors":false,"allowed_origins":["https://a.example"]}}"#)
                .unwrap();
        assert_eq!(f.cors_origins, Some(vec![]));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("security.allowed_origins"),
            "{warnings:?}"
        );
        let (f, _) = read("{}").unwrap();
        assert!(f.cors_origins.is_none() && f.rate_limit.is_none() && f.log.is_none());
        for bad in [
            r#"{"zenoh_endpoint":"tcp/a:7447"}"#,
            r#"{"security":{"cors":true}}"#,
            r#"{"logging":{"level":"INFO","rotate":true}}"#,
            r#"{"security":{"rate_limiting":{"requests_per_minute":-1}}}"#,
        ] {
            assert!(
                matches!(read(bad), Err(ConfigError::ParseJson { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            read(r#"{"logging":{"max_size":"10 parsecs"}}"#),
            Err(ConfigError::Invalid {
                name: "logging.max_size",
                ..
            })
        ));
    }

    #[test]
    fn sizes_become_whole_mib() {
        for (text, mb) in [
            ("100MB", 100),
            ("1GB", 1024),
            ("1.5 gb", 1536),
            ("512KB", 1),
            ("1048577", 2),
            ("5M", 5),
        ] {
            assert_eq!(size_mb(text), Ok(mb), "{text}");
        }
        for bad in ["", "MB", "0MB", "1TB", "-1MB", "1e3MB"] {
            assert!(size_mb(bad).is_err(), "{bad}");
        }
    }
}
