//! What says the stack is healthy beyond its resources' statuses: its CloudWatch alarms
//! (DescribeAlarms of the names in the `AlarmNames` output) and the depth of its failure queues
//! (SQS GetQueueAttributes: batches the alert and detector mappings gave up on). Rows of the
//! Stack pane and of `iotaa stack status`; an error is a row too, never a failure.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;

use super::error_line;
use crate::stack::{Health, Resource, Status};

/// One row per alarm named in `names` (comma-separated): its state and reason.
pub async fn alarms(sdk: &SdkConfig, names: &str) -> Vec<Resource> {
    let names: Vec<String> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    match cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.clone()))
        .send()
        .await
    {
        Ok(out) => names
            .iter()
            .map(|name| {
                match out
                    .metric_alarms()
                    .iter()
                    .find(|a| a.alarm_name() == Some(name.as_str()))
                {
                    Some(a) => {
                        let state = a.state_value().map(|s| s.as_str()).unwrap_or("unknown");
                        alarm_row(name, state, a.state_reason().unwrap_or_default())
                    }
                    None => Resource {
                        name: name.clone(),
                        kind: "CloudWatch::Alarm".into(),
                        status: Status::new("missing", Health::Missing),
                        detail: "not found by DescribeAlarms".into(),
                    },
                }
            })
            .collect(),
        Err(e) => vec![Resource {
            name: "alarms".into(),
            kind: "CloudWatch::Alarm".into(),
            status: Status::new("unavailable", Health::Missing),
            detail: format!("{} alarms: {}", names.len(), error_line(&e)),
        }],
    }
}

/// `OK` is healthy, `ALARM` failed, `INSUFFICIENT_DATA` (nothing measured yet) stopped.
pub fn alarm_row(name: &str, state: &str, reason: &str) -> Resource {
    let health = match state {
        "OK" => Health::Ok,
        "ALARM" => Health::Failed,
        _ => Health::Stopped,
    };
    Resource {
        name: name.to_string(),
        kind: "CloudWatch::Alarm".into(),
        status: Status::new(state, health),
        detail: crate::text::one_line(reason),
    }
}

/// A failure queue's depth: empty is healthy, anything in it is a batch given up on.
pub async fn queue(sdk: &SdkConfig, name: &str, url: &str) -> Resource {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (status, detail) = match sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
    {
        Ok(out) => {
            let n: u64 = out
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            queue_status(n, url)
        }
        Err(e) => (
            Status::new("unknown", Health::Missing),
            format!("{url}: {}", error_line(&e)),
        ),
    };
    Resource {
        name: name.to_string(),
        kind: "SQS::Queue".into(),
        status,
        detail,
    }
}

fn queue_status(messages: u64, url: &str) -> (Status, String) {
    if messages == 0 {
        (Status::new("empty", Health::Ok), url.to_string())
    } else {
        (
            Status::new(format!("{messages} messages"), Health::Failed),
            format!(
                "{url}: batches given up on after their retries (each names its shard and sequence numbers)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_states_and_queue_depths_read_at_a_glance() {
        assert_eq!(alarm_row("a", "OK", "").status.health, Health::Ok);
        assert_eq!(
            alarm_row("a", "ALARM", "Threshold\ncrossed").status.health,
            Health::Failed
        );
        assert_eq!(
            alarm_row("a", "ALARM", "Threshold\ncrossed").detail,
            "Threshold; crossed"
        );
        assert_eq!(
            alarm_row("a", "INSUFFICIENT_DATA", "").status.health,
            Health::Stopped
        );
        assert_eq!(queue_status(0, "u").0.health, Health::Ok);
        let (s, d) = queue_status(3, "u");
        assert_eq!((s.label.as_str(), s.health), ("3 messages", Health::Failed));
        assert!(d.starts_with("u: batches given up on"), "{d}");
    }
}
