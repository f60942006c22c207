//! Size-based rotation of the trace files: `traces.tsv` is written; when the next line would
//! take it past the limit it becomes `traces.tsv.1` (newest), `.1` becomes `.2` … and the
//! oldest beyond `max_files` is removed. Every file starts with the header; lines are buffered
//! whole and never split across files. A failed write (disk full) is rolled back by truncating
//! to the last whole line already in the file, so the file is never corrupted.
use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

pub const ACTIVE: &str = "traces.tsv";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write traces to {dir}: {source} (pass --trace-dir a writable directory)")]
    Dir {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("writing {file}: {source}")]
    Write {
        file: String,
        #[source]
        source: io::Error,
    },
}

pub struct Rotator {
    dir: PathBuf,
    max_bytes: u64,
    max_files: u32,
    header: Vec<u8>,
    file: File,
    /// Bytes in the file (whole lines only).
    size: u64,
    /// Whole lines not yet written; `size + buf.len()` is the file's size once flushed.
    buf: Vec<u8>,
}

/// Lines are collected up to this size before one `write`.
const BUF_BYTES: usize = 256 * 1024;

impl Rotator {
    /// Opens (creating) `dir/traces.tsv`. An existing non-empty file is rotated away first, so
    /// this run's file starts with its header and nothing of a previous run is overwritten.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        max_files: u32,
        header: &str,
    ) -> Result<Rotator, Error> {
        let dir_err = |source| Error::Dir {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let active = dir.join(ACTIVE);
        let header = format!("{header}\n").into_bytes();
        let existing = std::fs::metadata(&active).map(|m| m.len()).unwrap_or(0);
        let mut rotator = Rotator {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(header.len() as u64 + 1),
            max_files,
            file: open_new(&active).map_err(dir_err)?,
            size: 0,
            buf: Vec::with_capacity(BUF_BYTES),
            header,
        };
        if existing > 0 {
            rotator.rotate().map_err(dir_err)?;
        } else {
            rotator.start_file().map_err(dir_err)?;
        }
        Ok(rotator)
    }

    /// Takes one whole line (with its newline), rotating first when it would not fit.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), Error> {
        let pending = self.size + self.buf.len() as u64;
        if pending + line.len() as u64 > self.max_bytes && pending > self.header.len() as u64 {
            self.flush()?;
            self.rotate().map_err(|e| self.write_err(e))?;
        }
        self.buf.extend_from_slice(line);
        if self.buf.len() >= BUF_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered lines. On failure they are dropped and the file is cut back to its
    /// last whole line.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.append(&buf);
        self.buf = buf;
        self.buf.clear();
        result.map_err(|e| self.write_err(e))
    }

    fn write_err(&self, source: io::Error) -> Error {
        Error::Write {
            file: self.dir.join(ACTIVE).display().to_string(),
            source,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Roll back a partial write so the file ends with a whole line.
                let _ = self.file.set_len(self.size);
                Err(e)
            }
        }
    }

    fn start_file(&mut self) -> io::Result<()> {
        self.size = 0;
        let header = std::mem::take(&mut self.header);
        let result = self.append(&header);
        self.header = header;
        result
    }

    fn rotate(&mut self) -> io::Result<()> {
        let name = |n: u32| self.dir.join(format!("{ACTIVE}.{n}"));
        if self.max_files == 0 {
            std::fs::remove_file(self.dir.join(ACTIVE))?;
        } else {
            let _ = std::fs::remove_file(name(self.max_files));
            for n in (1..self.max_files).rev() {
                if name(n).exists() {
                    std::fs::rename(name(n), name(n + 1))?;
                }
            }
            std::fs::rename(self.dir.join(ACTIVE), name(1))?;
        }
        self.file = open_new(&self.dir.join(ACTIVE))?;
        self.start_file()
    }
}

fn open_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "timestamp\tpath";

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn rotates_by_size_keeping_headers_and_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Rotator::open(dir.path(), 100, 3, HEADER).unwrap();
        let lines: Vec<String> = (0..40)
            .map(|i| format!("t{i:02}\t/some/path/{i:02}\n"))
            .collect();
        for l in &lines {
            r.write_line(l.as_bytes()).unwrap();
        }
        r.flush().unwrap();
        let mut seen = Vec::new();
        for name in ["traces.tsv.3", "traces.tsv.2", "traces.tsv.1", "traces.tsv"] {
            let text = read(dir.path(), name);
            assert!(text.starts_with(&format!("{HEADER}\n")), "{name}: {text:?}");
            assert!(text.len() <= 100, "{name} is {} bytes", text.len());
            assert!(text.ends_with('\n'));
            seen.extend(text.lines().skip(1).map(|l| format!("{l}\n")));
        }
        assert!(!dir.path().join("traces.tsv.4").exists());
        // What is kept is the newest lines, in order, none split or repeated.
        assert_eq!(seen, lines[lines.len() - seen.len()..].to_vec());
    }

    #[test]
    fn a_line_longer_than_the_limit_still_goes_in_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Rotator::open(dir.path(), 20, 2, HEADER).unwrap();
        let long = format!("{}\n", "x".repeat(50));
        r.write_line(long.as_bytes()).unwrap();
        r.write_line(b"short\n").unwrap();
        r.flush().unwrap();
        assert_eq!(
            read(dir.path(), "traces.tsv.1"),
            format!("{HEADER}\n{long}")
        );
        assert_eq!(read(dir.path(), "traces.tsv"), format!("{HEADER}\nshort\n"));
    }

    #[test]
    fn an_existing_file_is_rotated_away_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ACTIVE), "old run\n").unwrap();
        let _r = Rotator::open(dir.path(), 1000, 3, HEADER).unwrap();
        assert_eq!(read(dir.path(), "traces.tsv.1"), "old run\n");
        assert_eq!(read(dir.path(), "traces.tsv"), format!("{HEADER}\n"));
    }

    #[test]
    fn an_unwritable_directory_says_what_to_do() {
        let err = Rotator::open(Path::new("/proc/forbidden/traces"), 1000, 3, HEADER)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("pass --trace-dir a writable directory"),
            "{err}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn disk_full_rolls_back_to_the_last_whole_line() {
        // /dev/full fails every write with ENOSPC; simulate by swapping the file handle.
        let dir = tempfile::tempdir().unwrap();
        let mut r = Rotator::open(dir.path(), 1000, 3, HEADER).unwrap();
        r.write_line(b"first\n").unwrap();
        r.flush().unwrap();
        let good = r.size;
        r.file = OpenOptions::new().append(true).open("/dev/full").unwrap();
        r.write_line(b"second\n").unwrap();
        let err = r.flush().unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
        assert_eq!(r.size, good);
        assert_eq!(read(dir.path(), ACTIVE), format!("{HEADER}\nfirst\n"));
    }
}
