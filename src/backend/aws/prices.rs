//! What a deployed stack costs while it does nothing: the one price table of the app, dated.
//! Usage (data in and out, requests, Lambda time, storage, Athena scans) is extra and is not
//! estimated here; see README "The pipeline on AWS".

use crate::stack::{Health, Resource, Status};

/// When and where these prices were read (AWS's price pages, us-east-1).
pub const AS_OF: &str = "us-east-1 prices of 2026-12-02";
/// Kinesis Data Streams: an on-demand stream, per hour.
pub const ON_DEMAND_STREAM_HOUR: f64 = 0.04;
/// Kinesis Data Streams: a provisioned shard, per hour.
pub const SHARD_HOUR: f64 = 0.015;
/// CloudWatch: a standard-resolution alarm, per month.
pub const ALARM_MONTH: f64 = 0.10;
/// KMS: a customer-managed key, per month (the alert topic's).
pub const KMS_KEY_MONTH: f64 = 1.0;
/// Hours in the month the figures use (30 days).
pub const MONTH_HOURS: f64 = 720.0;

/// The standing cost of `streams` Kinesis streams (on demand when `shards` is 0, else that many
/// provisioned shards each), `alarms` CloudWatch alarms and `keys` KMS keys, as a row of the
/// stack.
pub fn standing_cost(streams: usize, shards: u32, alarms: usize, keys: usize) -> Resource {
    let (per_stream_hour, what) = if shards == 0 {
        (
            ON_DEMAND_STREAM_HOUR,
            format!("{streams} on-demand streams at ${ON_DEMAND_STREAM_HOUR}/h"),
        )
    } else {
        (
            SHARD_HOUR * f64::from(shards),
            format!("{streams} streams × {shards} shards at ${SHARD_HOUR}/shard-h"),
        )
    };
    let hour = streams as f64 * per_stream_hour
        + (alarms as f64 * ALARM_MONTH + keys as f64 * KMS_KEY_MONTH) / MONTH_HOURS;
    let month = hour * MONTH_HOURS;
    Resource {
        name: "standing cost".into(),
        kind: "estimate".into(),
        status: Status::new(format!("${hour:.3}/h"), Health::Ok),
        detail: format!(
            "${month:.2}/month idle: {what}, {alarms} alarms at ${ALARM_MONTH:.2}/month, {keys} KMS keys at ${KMS_KEY_MONTH:.2}/month; data, requests, Lambda, storage and queries extra ({AS_OF})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_and_provisioned_streams_and_alarms() {
        let r = standing_cost(2, 0, 0, 0);
        assert_eq!(r.status.label, "$0.080/h");
        assert!(
            r.detail
                .starts_with("$57.60/month idle: 2 on-demand streams"),
            "{}",
            r.detail
        );
        let r = standing_cost(2, 3, 4, 1);
        // 2 × 3 × 0.015 = 0.09 $/h, + (4 × 0.10 + 1) / 720.
        assert_eq!(r.status.label, "$0.092/h");
        assert!(
            r.detail
                .starts_with("$66.20/month idle: 2 streams × 3 shards"),
            "{}",
            r.detail
        );
    }
}
