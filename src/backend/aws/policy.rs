//! `iotaa --backend aws stack policy [--deploy]`: the IAM policy a person needs to run the
//! dashboard on the deployed stack (`infra/operator-policy.json`), or to deploy and delete it
//! (`infra/deploy-policy.json`), with the placeholders filled from the account, region and the
//! stack's outputs. infra/README.md lists the placeholders.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use color_eyre::eyre::{Result, eyre};

use super::cloudformation::describe;
use super::error_line;

pub const OPERATOR: &str = include_str!("../../../infra/operator-policy.json");
pub const DEPLOY: &str = include_str!("../../../infra/deploy-policy.json");

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `policy` with every `${Name}` replaced from `values`; one line naming the first placeholder
/// left without a value.
pub fn fill(policy: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(policy.len());
    let mut rest = policy;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(eyre!(
                "policy template: unclosed ${{ at byte {}",
                policy.len() - rest.len() + start
            ));
        };
        let name = &rest[start + 2..start + len];
        let value = values
            .get(name)
            .ok_or_else(|| eyre!("policy template: no value for ${{{name}}}"))?;
        out.push_str(value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The policy, filled for `stack` (whose Glue database is `database`, `[query] database`) in
/// the configured account and region.
pub async fn policy(sdk: &SdkConfig, stack: &str, database: &str, deploy: bool) -> Result<String> {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let account = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            eyre!(
                "find the account (STS GetCallerIdentity): {}",
                error_line(&e)
            )
        })?
        .account()
        .unwrap_or_default()
        .to_string();
    let mut values: BTreeMap<String, String> = [
        ("Partition", partition(&region).to_string()),
        ("Region", region.clone()),
        ("Account", account),
        ("StackName", stack.to_string()),
        ("StackNameLower", stack.to_lowercase()),
        ("GlueDatabaseName", database.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let client = aws_sdk_cloudformation::Client::new(sdk);
    match describe(&client, stack).await? {
        Some(d) => {
            values.insert("LakePrefix".into(), String::new());
            values.extend(d.outputs);
        }
        None if deploy => {}
        None => {
            return Err(eyre!(
                "stack {stack} is not deployed in {region}: the operator policy names its resources; `stack policy --deploy` prints the policy to deploy it"
            ));
        }
    }
    fill(if deploy { DEPLOY } else { OPERATOR }, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_placeholder_of_both_policies_is_filled_and_the_result_is_json() {
        let v = values(&[
            ("Partition", "aws"),
            ("Region", "eu-west-1"),
            ("Account", "123456789012"),
            ("StackName", "Demo"),
            ("StackNameLower", "demo"),
            ("GlueDatabaseName", "analyticsdemo"),
            ("ReadingsStreamName", "Demo-readings"),
            ("AnomalyStreamName", "Demo-anomalies"),
            ("DeliveryStreamName", "Demo-devicedata"),
            ("BucketName", "demo-lakebucket-x"),
            ("LakePrefix", ""),
            ("AthenaWorkGroup", "Demo-queries"),
            ("GlueTableName", "devicedata"),
        ]);
        for policy in [OPERATOR, DEPLOY] {
            let filled = fill(policy, &v).unwrap();
            assert!(!filled.contains("${"), "{filled}");
            let json: serde_json::Value = serde_json::from_str(&filled).unwrap();
            assert_eq!(json["Version"], "2012-10-17");
        }
        let err = fill("{\"a\": \"${Nope}\"}", &v).unwrap_err().to_string();
        assert_eq!(err, "policy template: no value for ${Nope}");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("us-east-1"), "aws");
    }
}
