//! Log output: human-readable or JSON lines on stderr, and optionally the same lines in a
//! file rotated by size (`fms.log` → `fms.log.1` → … → `fms.log.N`, the oldest dropped).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSettings};

/// A file that rolls over to numbered backups when it would grow past `max_bytes`.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    file: File,
    written: u64,
}

fn backup(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, backups: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            max_bytes,
            backups,
            file,
            written,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.backups > 0 {
            let _ = std::fs::remove_file(backup(&self.path, self.backups));
            for n in (1..self.backups).rev() {
                let from = backup(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, backup(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, backup(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => Box::new(base.with_ansi(ansi)),
        LogFormat::Json => Box::new(base.json().with_current_span(false)),
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error("invalid log level: {0}")]
    Level(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot open log file {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber: `filter` (e.g. `info,zenoh=warn`) on stderr and the file.
pub fn init(filter: &str, settings: &LogSettings) -> Result<(), LogInitError> {
    let filter = EnvFilter::try_new(filter)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut layers: Vec<BoxedLayer> = vec![layer(settings.format, std::io::stderr, ansi)];
    if let Some(path) = &settings.file {
        let file = RotatingFile::open(path, settings.max_size_bytes, settings.backups).map_err(
            |source| LogInitError::File {
                path: path.clone(),
                source,
            },
        )?;
        layers.push(layer(settings.format, Mutex::new(file), false));
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_backups() {
        let dir = std::env::temp_dir().join(format!("fms-log-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("fms.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            // 40-byte lines: two fit in 100 bytes, the third rotates.
            f.write_all(format!("{i:039}\n").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(path.clone()).lines().count(), 2);
        assert!(read(path.clone()).starts_with(&format!("{:039}", 8)));
        assert!(read(backup(&path, 1)).starts_with(&format!("{:039}", 6)));
        assert!(read(backup(&path, 2)).starts_with(&format!("{:039}", 4)));
        assert!(!backup(&path, 3).exists(), "only 2 backups are kept");
        // Reopening appends and counts what is there.
        let mut again = RotatingFile::open(&path, 100, 2).unwrap();
        again.write_all(b"x\n").unwrap();
        assert_eq!(read(path.clone()).lines().count(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
