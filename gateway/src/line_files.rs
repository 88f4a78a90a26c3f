//! The store of the embedded default: InfluxDB line protocol appended to local files, so that
//! `make run` ingests with no server at all. Each file is importable as is:
//! `influx write --bucket iot_data --precision ms --file data/gateway/points/points-....lp`.
//!
//! Files are named `points-{UTC start time}-{n}.lp` (name order is age order); a new one starts
//! when the current one reaches `rotate_bytes`, and the oldest go beyond `keep_files`. A batch is
//! written with one `write(2)`: once `send` returns it survives a crash of the gateway.

use crate::config::FilesConfig;
use smartcity_connectors::sink::{Failure, Outcome, Reason};
use smartcity_model::codec::line_protocol;
use smartcity_model::Reading;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

pub struct LineFiles {
    cfg: FilesConfig,
    current: Option<(File, u64)>,
    opened: u64,
}

impl LineFiles {
    pub fn new(cfg: &FilesConfig) -> Self {
        LineFiles { cfg: cfg.clone(), current: None, opened: 0 }
    }

    pub fn describe(&self) -> String {
        format!("line-protocol files in {}", self.cfg.dir.display())
    }

    /// Creates the folder and checks that a file can be written in it.
    pub fn check(&mut self) -> Result<String, Failure> {
        let probe = self.cfg.dir.join(".write-check");
        fs::create_dir_all(&self.cfg.dir)
            .and_then(|()| fs::write(&probe, b""))
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| Failure::new(Reason::Missing, format!("cannot write in {}: {e}", self.cfg.dir.display())))?;
        Ok(self.describe())
    }

    pub fn send(&mut self, batch: &[Reading]) -> Outcome {
        let text = line_protocol::encode_batch(batch);
        match self.append(text.as_bytes()) {
            Ok(()) => Outcome::ok(),
            Err(e) => Outcome::retry_all(
                batch.len(),
                Failure::new(Reason::Server, format!("cannot write in {}: {e}", self.cfg.dir.display())),
            ),
        }
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.current.as_ref().is_none_or(|(_, size)| *size >= self.cfg.rotate_bytes) {
            self.current = Some((self.open_next()?, 0));
        }
        let (file, size) = self.current.as_mut().expect("a file is open");
        let result = file.write_all(bytes);
        if result.is_err() {
            // Whatever part went in stays; the next write starts a fresh file.
            self.current = None;
        } else {
            *size += bytes.len() as u64;
        }
        result
    }

    fn open_next(&mut self) -> std::io::Result<File> {
        fs::create_dir_all(&self.cfg.dir)?;
        self.opened += 1;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let path = self.cfg.dir.join(format!("points-{stamp}-{:04}.lp", self.opened));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        tracing::info!("writing readings to {}", path.display());
        self.prune();
        Ok(file)
    }

    /// Deletes the oldest files beyond `keep_files`.
    fn prune(&self) {
        if self.cfg.keep_files == 0 {
            return;
        }
        let mut files: Vec<PathBuf> = match fs::read_dir(&self.cfg.dir) {
            Ok(dir) => dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "lp"))
                .collect(),
            Err(_) => return,
        };
        files.sort();
        let excess = files.len().saturating_sub(self.cfg.keep_files);
        for old in &files[..excess] {
            if let Err(e) = fs::remove_file(old) {
                tracing::warn!("cannot delete old points file {}: {e}", old.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use smartcity_model::{dynamics::Simulation, Catalogue};

    #[test]
    fn appends_line_protocol_and_rotates() {
        let dir = std::env::temp_dir().join(format!("gw-lp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cfg = FilesConfig { dir: dir.clone(), rotate_bytes: 4096, keep_files: 3 };
        let mut files = LineFiles::new(&cfg);
        assert!(files.check().is_ok());
        let cat = Catalogue::default_ten();
        let sim = Simulation::new(1);
        for seq in 0..100 {
            let batch: Vec<Reading> = cat.sensors().iter().map(|s| sim.reading(s, Utc::now(), seq)).collect();
            assert!(files.send(&batch).is_ok());
        }
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(names.len(), 3, "rotated and pruned to keep_files: {names:?}");
        let text = fs::read_to_string(&names[0]).unwrap();
        assert!(text.lines().all(|l| l.contains(" ") && l.contains("seq=")), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
