//! Where this process keeps its state: under the data dir locally (streams, lake, checkpoints,
//! model, alerts.log), under `<data_dir>/aws/<stack>/` on AWS (checkpoints, model, alerts.log).

use std::path::PathBuf;

use crate::config::Loaded;
use crate::pipeline::StreamRole;

/// Where everything lives under the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub readings_stream: String,
    pub anomaly_stream: String,
}

impl Layout {
    pub fn new(loaded: &Loaded) -> Self {
        Layout {
            data_dir: loaded.data_dir.clone(),
            readings_stream: loaded.config.local.readings_stream.clone(),
            anomaly_stream: loaded.config.local.anomaly_stream.clone(),
        }
    }

    pub fn stream_dir(&self, role: StreamRole) -> PathBuf {
        let name = match role {
            StreamRole::Readings => &self.readings_stream,
            StreamRole::Anomalies => &self.anomaly_stream,
        };
        self.data_dir.join("streams").join(name)
    }

    pub fn lake(&self) -> PathBuf {
        self.data_dir.join("lake")
    }

    pub fn checkpoint(&self, consumer: &str) -> PathBuf {
        self.data_dir.join("checkpoints").join(consumer)
    }

    pub fn snapshot(&self) -> PathBuf {
        self.data_dir.join("model").join("detector.snapshot")
    }

    pub fn alerts_log(&self) -> PathBuf {
        self.data_dir.join("alerts.log")
    }

    /// A checkpoint left by an earlier version under its old name (`scoring`, now `detector`)
    /// is renamed, so the detector resumes where it was.
    pub fn migrate_legacy(&self) {
        let old = self.checkpoint("scoring");
        let new = self.checkpoint("detector");
        if old.exists() && !new.exists() {
            let _ = std::fs::rename(old, new);
        }
    }
}
