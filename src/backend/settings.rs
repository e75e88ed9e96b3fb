//! Every stage's settings from the config, and [`Plan`]: which stages this process runs and
//! where the lake is. The pipeline's stages never read the config themselves.

use std::time::Duration;

use super::layout::Layout;
use crate::config::{Compression, Loaded, SpikeDirection as ConfigDirection};
use crate::detector::DetectorParams;
use crate::pipeline::StartAt;
use crate::pipeline::alerts::AlertSettings;
use crate::pipeline::delivery::DeliverySettings;
use crate::pipeline::detector::DetectorSettings;
use crate::pipeline::producer::{ProducerSettings, SpikeDirection, SpikeSettings};
use crate::pipeline::run::PipelineSettings;

/// What this process runs on its backend, and where: every stage's settings (the stages a
/// command runs are picked from these), whether delivery to the lake is one of this process's
/// stages, and where the lake is.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where this process keeps its state (checkpoints, model snapshot, alerts.log).
    pub layout: Layout,
    pub producer: ProducerSettings,
    /// `None` when something else delivers to the lake (Firehose on AWS).
    pub delivery: Option<DeliverySettings>,
    pub detector: DetectorSettings,
    /// `Some(where)` when the detector runs elsewhere (the stack's Lambda function): this
    /// process never scores, the tail shows what it writes.
    pub detector_elsewhere: Option<String>,
    pub alerts: AlertSettings,
    /// Where the lake is: a folder, or `s3://bucket/prefix/`.
    pub lake: String,
}

impl Plan {
    /// The stages of a plan whose state is in `layout`, with delivery here and the lake under
    /// the data dir (the local backend; AWS changes what differs).
    pub fn new(layout: Layout, loaded: &Loaded) -> Plan {
        Plan {
            producer: producer_settings(loaded),
            delivery: Some(delivery_settings(&layout, loaded)),
            detector: detector_settings(&layout, loaded),
            detector_elsewhere: None,
            alerts: alert_settings(&layout, loaded),
            lake: layout.lake().display().to_string(),
            layout,
        }
    }

    /// What this process says of a detector that runs elsewhere: `in the Lambda function X
    /// (this process does not score)`.
    pub fn detector_elsewhere_note(&self) -> Option<String> {
        self.detector_elsewhere
            .as_ref()
            .map(|place| format!("in {place} (this process does not score)"))
    }

    /// The detector's settings when this process runs the detector.
    fn detector_here(&self) -> Option<DetectorSettings> {
        self.detector_elsewhere
            .is_none()
            .then(|| self.detector.clone())
    }

    /// Every stage the dashboard runs: the producer (paused unless `producer.autostart`),
    /// delivery where this process delivers, the detector unless it runs elsewhere, alerts,
    /// and a tail of the anomaly stream from two minutes back, which fills the Scores pane at
    /// once.
    pub fn dashboard(&self) -> PipelineSettings {
        PipelineSettings {
            producer: Some(self.producer.clone()),
            delivery: self.delivery.clone(),
            detector: self.detector_here(),
            alerts: Some(self.alerts.clone()),
            tail: Some(StartAt::AtTimestamp(
                chrono::Utc::now().timestamp_millis() - 120_000,
            )),
        }
    }

    /// `iotaa produce`: the producer with these settings and, unless `producer_only`, every
    /// consumer this process runs (no tail: nothing shows it).
    pub fn headless(&self, producer: ProducerSettings, producer_only: bool) -> PipelineSettings {
        let consumers = !producer_only;
        PipelineSettings {
            producer: Some(producer),
            delivery: self.delivery.clone().filter(|_| consumers),
            detector: self.detector_here().filter(|_| consumers),
            alerts: consumers.then(|| self.alerts.clone()),
            tail: None,
        }
    }

    /// `iotaa detect`: the detector alone.
    pub fn detector_only(&self) -> PipelineSettings {
        PipelineSettings {
            detector: Some(self.detector.clone()),
            ..PipelineSettings::default()
        }
    }

    /// What `produce` says it is doing while stopping.
    pub fn stopping_note(&self) -> &'static str {
        if self.delivery.is_some() {
            "flushing the lake buffer and saving the model"
        } else {
            "saving the model"
        }
    }
}

pub fn producer_settings(loaded: &Loaded) -> ProducerSettings {
    let p = &loaded.config.producer;
    let spike = &loaded.config.spike;
    ProducerSettings {
        devices: p.devices.clone(),
        rate_per_device: p.rate,
        min_value: p.min_value.into(),
        max_value: p.max_value.into(),
        batch_size: p.batch_size as usize,
        spike: SpikeSettings {
            min_magnitude: spike.min_magnitude,
            max_magnitude: spike.max_magnitude,
            direction: match spike.direction {
                ConfigDirection::High => SpikeDirection::High,
                ConfigDirection::Low => SpikeDirection::Low,
                ConfigDirection::Both => SpikeDirection::Both,
            },
            device: spike.device.clone(),
        },
        start_paused: !p.autostart,
        limit: None,
        seed: None,
        ack_log: None,
        max_rate_per_device: crate::pipeline::producer::MAX_RATE_PER_DEVICE,
    }
}

pub fn detector_params(loaded: &Loaded) -> DetectorParams {
    let d = &loaded.config.detector;
    DetectorParams {
        trees: d.trees as usize,
        sample_size: d.sample_size as usize,
        time_decay: u64::from(d.time_decay),
        shingle_size: d.shingle_size as usize,
        per_device: d.per_device,
        explanation: d.explanation,
        random_seed: d.random_seed,
    }
}

pub fn detector_settings(layout: &Layout, loaded: &Loaded) -> DetectorSettings {
    DetectorSettings {
        params: detector_params(loaded),
        snapshot: layout.snapshot(),
        checkpoint: layout.checkpoint("detector"),
        snapshot_interval: Duration::from_secs(
            loaded.config.detector.snapshot_interval_secs.into(),
        ),
        note: None,
    }
}

pub fn delivery_settings(layout: &Layout, loaded: &Loaded) -> DeliverySettings {
    let d = &loaded.config.delivery;
    DeliverySettings {
        lake_dir: layout.lake(),
        prefix: d.prefix.clone(),
        stream_name: loaded.config.local.delivery_stream.clone(),
        interval: Duration::from_secs(d.buffer_interval_secs.into()),
        size_bytes: d.buffer_size_mib as usize * 1024 * 1024,
        gzip: d.compression == Compression::Gzip,
        parquet: parquet_encoder(d.format),
        checkpoint: layout.checkpoint("delivery"),
    }
}

/// The Parquet encoder for `format = "parquet"` (the query engine's writer; config validation
/// refuses "parquet" in a build without it).
fn parquet_encoder(
    format: crate::config::LakeFormat,
) -> Option<crate::pipeline::delivery::ParquetEncoder> {
    if format != crate::config::LakeFormat::Parquet {
        return None;
    }
    #[cfg(feature = "sql")]
    {
        Some(crate::query::lake::write::encode_records)
    }
    #[cfg(not(feature = "sql"))]
    {
        None
    }
}

pub fn alert_settings(layout: &Layout, loaded: &Loaded) -> AlertSettings {
    AlertSettings {
        threshold: loaded.config.alerts.threshold,
        log_path: layout.alerts_log(),
        webhook_url: loaded.config.alerts.webhook_url.clone(),
        checkpoint: layout.checkpoint("alerts"),
        webhook_timeout: Duration::from_secs(5),
    }
}
