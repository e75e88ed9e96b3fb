//! The local stack: the folders and files under the data dir. Deploy creates the streams (the
//! rest appears as the pipeline runs); delete removes what the pipeline made, after the caller
//! asked. The dashboard does neither while its own pipeline uses them.

use std::path::{Path, PathBuf};

use super::layout::Layout;
use super::local::{LocalStreams, folder_size};
use crate::config::Loaded;
use crate::pipeline::{StartAt, StreamRole, read_position};
use crate::stack::{Resource, Say, Stack, StackSnapshot, Status};
use crate::stream::{Stream, StreamOptions};

pub struct LocalStack {
    layout: Layout,
    loaded: Loaded,
}

impl LocalStack {
    pub fn new(loaded: &Loaded) -> LocalStack {
        LocalStack {
            layout: Layout::new(loaded),
            loaded: loaded.clone(),
        }
    }

    fn stream_options(&self) -> StreamOptions {
        StreamOptions {
            segment_size_bytes: u64::from(self.loaded.config.local.segment_size_mib) * 1024 * 1024,
        }
    }

    /// What delete removes.
    fn targets(&self) -> [PathBuf; 5] {
        let l = &self.layout;
        [
            l.data_dir.join("streams"),
            l.lake(),
            l.data_dir.join("checkpoints"),
            l.data_dir.join("model"),
            l.alerts_log(),
        ]
    }

    /// One row per resource: the data dir, the streams, the lake, the
    /// checkpoints, the model snapshot, alerts.log and the log.
    fn resources(&self) -> Vec<Resource> {
        let l = &self.layout;
        let row = |name: &str, kind: &str, path: &Path, detail: String| Resource {
            name: name.into(),
            kind: kind.into(),
            status: Status::present(path.exists()),
            detail,
        };
        let mut rows = Vec::new();
        rows.push(row(
            "data dir",
            "folder",
            &l.data_dir,
            l.data_dir.display().to_string(),
        ));
        for role in [StreamRole::Readings, StreamRole::Anomalies] {
            let dir = l.stream_dir(role);
            let detail = if dir.exists() {
                match Stream::open(&dir, self.stream_options()).and_then(|s| s.stats()) {
                    Ok(st) => format!(
                        "{}: records {}..{}, {} segments, {} bytes",
                        dir.display(),
                        st.first_sequence.map_or("-".into(), |s| s.to_string()),
                        st.last_sequence.map_or("-".into(), |s| s.to_string()),
                        st.segments,
                        st.bytes
                    ),
                    Err(e) => format!("{}: {e}", dir.display()),
                }
            } else {
                dir.display().to_string()
            };
            let name = match role {
                StreamRole::Readings => "readings stream",
                StreamRole::Anomalies => "anomaly stream",
            };
            rows.push(row(name, "stream", &dir, detail));
        }
        let lake = l.lake();
        rows.push(row(
            "lake",
            "folder",
            &lake,
            format!("{}: {} bytes", lake.display(), folder_size(&lake)),
        ));
        for consumer in ["delivery", "detector", "alerts"] {
            let p = l.checkpoint(consumer);
            let at = match read_position(&p) {
                Ok(None) => "none".into(),
                Ok(Some(StartAt::AfterSequence(s))) => format!("after record {s}"),
                Ok(Some(_)) => "a Kinesis position".into(),
                Err(why) => why,
            };
            rows.push(row(&format!("{consumer} checkpoint"), "file", &p, at));
        }
        let snap = l.snapshot();
        rows.push(row(
            "model snapshot",
            "file",
            &snap,
            snap.display().to_string(),
        ));
        let log = l.alerts_log();
        let lines = std::fs::read(&log)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        rows.push(row(
            "alerts.log",
            "file",
            &log,
            format!("{}: {lines} alerts", log.display()),
        ));
        let log_file = crate::logging::log_file(&l.data_dir);
        rows.push(row(
            "log",
            "file",
            &log_file,
            log_file.display().to_string(),
        ));
        rows
    }
}

impl Stack for LocalStack {
    fn name(&self) -> String {
        "the local stack".into()
    }

    fn snapshot(&self) -> Result<StackSnapshot, String> {
        let l = &self.layout;
        let deployed = [StreamRole::Readings, StreamRole::Anomalies]
            .iter()
            .all(|r| l.stream_dir(*r).exists());
        Ok(StackSnapshot {
            title: format!("local ({})", l.data_dir.display()),
            status: Some(Status::present(deployed)),
            reason: String::new(),
            resources: self.resources(),
            events: Vec::new(),
            outputs: vec![
                ("alerts_log".into(), l.alerts_log().display().to_string()),
                (
                    "anomalies".into(),
                    l.stream_dir(StreamRole::Anomalies).display().to_string(),
                ),
                ("lake".into(), l.lake().display().to_string()),
                (
                    "readings".into(),
                    l.stream_dir(StreamRole::Readings).display().to_string(),
                ),
            ],
            delivery: None,
            detector: None,
            detector_figures: None,
            standing_cost: None,
            watch: Vec::new(),
        })
    }

    fn deploy(&self, say: &dyn Say) -> Result<bool, String> {
        LocalStreams::open(&self.layout, &self.loaded).map_err(|e| e.to_string())?;
        say.out(format!(
            "local stack: streams ready under {}",
            self.layout.data_dir.display()
        ));
        Ok(true)
    }

    fn delete_question(&self) -> String {
        format!(
            "Delete the streams, lake, checkpoints, model and alerts.log under {}?",
            self.layout.data_dir.display()
        )
    }

    fn delete(&self, say: &dyn Say) -> Result<bool, String> {
        for t in self.targets() {
            let r = if t.is_dir() {
                std::fs::remove_dir_all(&t)
            } else {
                std::fs::remove_file(&t)
            };
            match r {
                Ok(()) => say.out(format!("deleted {}", t.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot delete {}: {e}", t.display())),
            }
        }
        Ok(true)
    }

    fn dashboard_ops_refused(&self) -> Option<String> {
        Some(
            "The local stack is the data folder, in use by this dashboard: `iotaa stack deploy|delete` after quitting."
                .into(),
        )
    }
}
