//! The detector function as the dashboard sees it: its event source mapping's state and last
//! result (Lambda `GetEventSourceMapping`) and its metrics over the last five minutes
//! (CloudWatch `GetMetricData`: IteratorAge, Invocations, Errors, Throttles). One row of the
//! Stack pane and of `iotaa stack status`, and the Scores pane's lag when the function scores.

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

use super::error_line;
use crate::stack::{FunctionFigures, Health, Resource, Status};

/// The window the figures cover.
pub const WINDOW_MINS: u32 = 5;

/// The row of the function (named after its mapping's state) and its figures. Never fails:
/// an error becomes the row's detail.
pub async fn detector_row(
    sdk: &SdkConfig,
    function: &str,
    mapping: Option<&str>,
) -> (Resource, Option<FunctionFigures>) {
    let (status, mut detail) = match mapping {
        // Ingest=firehose: Firehose invokes it, there is no mapping.
        None => (
            Status::new("Firehose processor", Health::Ok),
            function.to_string(),
        ),
        Some(uuid) => mapping_status(sdk, function, uuid).await,
    };
    let figures = match figures(sdk, function).await {
        Ok(f) => {
            detail.push_str(&format!("; {}", f.describe()));
            Some(f)
        }
        Err(e) => {
            detail.push_str(&format!("; metrics unavailable: {e}"));
            None
        }
    };
    let status = match &figures {
        Some(f) if status.health == Health::Ok && f.troubled() => {
            Status::new(format!("{} (errors)", status.label), Health::Failed)
        }
        _ => status,
    };
    (
        Resource {
            name: "detector".into(),
            kind: "Lambda::Function".into(),
            status,
            detail,
        },
        figures,
    )
}

/// `Enabled` with result `OK` (or no records yet) is healthy; `Creating`, `Enabling`,
/// `Updating` are changing; `Disabled` is stopped; a `PROBLEM:` result is failed.
async fn mapping_status(sdk: &SdkConfig, function: &str, uuid: &str) -> (Status, String) {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    match lambda.get_event_source_mapping().uuid(uuid).send().await {
        Ok(m) => {
            let state = m.state().unwrap_or("unknown").to_string();
            let result = m.last_processing_result().unwrap_or("no result yet");
            let health = match state.as_str() {
                _ if result.starts_with("PROBLEM") => Health::Failed,
                "Enabled" => Health::Ok,
                "Creating" | "Enabling" | "Updating" | "Disabling" | "Deleting" => {
                    Health::InProgress
                }
                "Disabled" => Health::Stopped,
                _ => Health::Failed,
            };
            (
                Status::new(state, health),
                format!("{function}, last result: {result}"),
            )
        }
        Err(e) => (
            Status::new("unknown", Health::Failed),
            format!("{function}: mapping {uuid}: {}", error_line(&e)),
        ),
    }
}

/// The function's metrics over the last [`WINDOW_MINS`] minutes.
async fn figures(sdk: &SdkConfig, function: &str) -> Result<FunctionFigures, String> {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    let now = chrono::Utc::now().timestamp();
    let query = |id: &str, metric: &str, stat: &str| {
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/Lambda")
                            .metric_name(metric)
                            .dimensions(
                                Dimension::builder()
                                    .name("FunctionName")
                                    .value(function)
                                    .build(),
                            )
                            .build(),
                    )
                    .period(60)
                    .stat(stat)
                    .build(),
            )
            .build()
    };
    let out = cloudwatch
        .get_metric_data()
        .start_time(DateTime::from_secs(now - i64::from(WINDOW_MINS) * 60))
        .end_time(DateTime::from_secs(now))
        .metric_data_queries(query("age", "IteratorAge", "Maximum"))
        .metric_data_queries(query("invocations", "Invocations", "Sum"))
        .metric_data_queries(query("errors", "Errors", "Sum"))
        .metric_data_queries(query("throttles", "Throttles", "Sum"))
        .send()
        .await
        .map_err(|e| error_line(&e))?;
    let results = out
        .metric_data_results()
        .iter()
        .map(|r| (r.id().unwrap_or_default().to_string(), r.values().to_vec()))
        .collect::<Vec<_>>();
    Ok(figures_from(&results))
}

/// The figures from GetMetricData's results (id → values, newest first).
pub fn figures_from(results: &[(String, Vec<f64>)]) -> FunctionFigures {
    let values = |id: &str| -> &[f64] {
        results
            .iter()
            .find(|(i, _)| i == id)
            .map_or(&[], |(_, v)| v.as_slice())
    };
    let sum = |id: &str| values(id).iter().sum::<f64>().max(0.0) as u64;
    // Newest first: the first IteratorAge value is the latest minute's maximum.
    FunctionFigures {
        iterator_age_ms: values("age").first().map(|ms| ms.max(0.0) as u64),
        invocations: sum("invocations"),
        errors: sum("errors"),
        throttles: sum("throttles"),
        window_mins: WINDOW_MINS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_sum_the_window_and_take_the_latest_iterator_age() {
        let results = vec![
            ("age".to_string(), vec![1_500.0, 90_000.0]),
            ("invocations".to_string(), vec![60.0, 58.0, 2.0]),
            ("errors".to_string(), vec![1.0]),
            ("throttles".to_string(), vec![]),
        ];
        let f = figures_from(&results);
        assert_eq!(f.iterator_age_ms, Some(1_500));
        assert_eq!((f.invocations, f.errors, f.throttles), (120, 1, 0));
        assert_eq!(
            f.describe(),
            "120 invocations, 1 errors, 0 throttles in 5 min, iterator age 1.5 s"
        );
        // No invocation in the window: CloudWatch has no IteratorAge point.
        let none = figures_from(&[]);
        assert_eq!(none.iterator_age_ms, None);
        assert_eq!(
            none.describe(),
            "0 invocations, 0 errors, 0 throttles in 5 min"
        );
    }
}
