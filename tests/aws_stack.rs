//! `iotaa stack …` with `backend = "aws"`, through the real binary and the real AWS SDK, against
//! moto. `./.ci/run` starts moto and sets `IOTAA_MOTO_ENDPOINT`; without it these tests fail
//! and say so. Also the AWS rows of the bad-input matrix that need no pipeline: no region, no
//! credentials, an unreachable endpoint.
//!
//! moto creates the Kinesis streams, bucket, topic, roles, function and event-source mapping;
//! it accepts but does not create the Firehose delivery stream, the Glue database and table, the
//! Athena workgroup, the bucket policy and the email subscription (`infra/check_moto.py` lists
//! them), and records no per-resource events.

mod common;

use std::time::{Duration, Instant};

use common::aws::{CREDS, FaultProxy, Faults, endpoint, iotaa, stack_name, text, workdir};

const OUTPUTS: [&str; 10] = [
    "ReadingsStreamName",
    "AnomalyStreamName",
    "DeliveryStreamName",
    "BucketName",
    "GlueDatabaseName",
    "GlueTableName",
    "AthenaWorkGroup",
    "AthenaResultsLocation",
    "AlertTopicArn",
    "AlertFunctionName",
];

#[test]
fn deploy_status_outputs_events_update_and_delete_on_moto() {
    let stack = stack_name("ops");
    let dir = workdir(&stack, &format!("endpoint_url = \"{}\"\n", endpoint()));
    let d = dir.path();

    let out = iotaa(d, &CREDS, &["stack", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("not deployed"),
        "{}",
        text(&out.stdout)
    );

    let started = Instant::now();
    let out = iotaa(d, &CREDS, &["stack", "deploy"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "deploy: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("stack {stack}: creating in us-east-1")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stack {stack}: CREATE_COMPLETE")),
        "{stdout}"
    );
    for key in OUTPUTS {
        assert!(
            stdout.contains(key),
            "deploy does not print output {key}:\n{stdout}"
        );
    }
    let deploy_took = started.elapsed();

    let out = iotaa(d, &CREDS, &["stack", "status"]);
    let status = text(&out.stdout);
    assert!(out.status.success(), "{status}{}", text(&out.stderr));
    assert!(status.contains("CREATE_COMPLETE"), "{status}");
    for kind in [
        "AWS::Kinesis::Stream",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::IAM::Role",
    ] {
        assert!(status.contains(kind), "status lists no {kind}:\n{status}");
    }

    let out = iotaa(d, &CREDS, &["stack", "outputs"]);
    let outputs = text(&out.stdout);
    assert!(out.status.success());
    for key in OUTPUTS {
        let line = outputs
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no output {key}:\n{outputs}"));
        assert!(
            line.split_whitespace().nth(1).is_some(),
            "{key} is empty: {line}"
        );
    }
    let readings = outputs
        .lines()
        .find(|l| l.starts_with("ReadingsStreamName"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    assert!(readings.starts_with(&stack), "{readings}");

    let out = iotaa(d, &CREDS, &["stack", "events"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CREATE_COMPLETE"),
        "{}",
        text(&out.stdout)
    );

    // Deploying again with the same template and parameters changes nothing.
    let out = iotaa(d, &CREDS, &["stack", "deploy"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("already up to date") || stdout.contains("UPDATE_COMPLETE"),
        "{stdout}"
    );

    // An object in the lake bucket, as Firehose would leave: delete empties the bucket first
    // (CloudFormation cannot delete a bucket with objects in it).
    let bucket = outputs
        .lines()
        .find(|l| l.starts_with("BucketName"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let put = ureq::put(&format!("{}/{bucket}/2026/11/30/05/lake-object", endpoint()))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send("{\"deviceId\":\"aaaa\"}\n")
        .unwrap();
    assert_eq!(put.status(), 200);

    // Delete: refused without --yes when stdin is not a terminal, then done with it.
    let out = iotaa(d, &CREDS, &["stack", "delete"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--yes"), "{err}");
    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(&format!("stack {stack}: deleted")));
    assert!(
        text(&out.stdout).contains(&format!("bucket {bucket}: 1 objects deleted")),
        "{}",
        text(&out.stdout)
    );
    let out = iotaa(d, &CREDS, &["stack", "status"]);
    assert!(
        text(&out.stdout).contains("not deployed"),
        "{}",
        text(&out.stdout)
    );
    eprintln!(
        "aws_stack: deploy on moto in {:.1} s; status, outputs ({} keys), events, no-op update, delete",
        deploy_took.as_secs_f64(),
        OUTPUTS.len()
    );
}

/// The AWS rows of the bad-input matrix that need no pipeline: each is one line on stderr and
/// exit status 1, quickly.
#[test]
fn no_region_no_credentials_and_an_unreachable_endpoint_are_one_line_each() {
    let moto = endpoint();
    // (case, [aws] lines, environment, what the line must say)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no region",
            format!("endpoint_url = \"{moto}\"\n"),
            vec![
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
            "no AWS region",
        ),
        (
            "no credentials",
            format!("endpoint_url = \"{moto}\"\nregion = \"us-east-1\"\n"),
            vec![],
            "no AWS credentials",
        ),
        (
            "unknown profile",
            format!(
                "endpoint_url = \"{moto}\"\nregion = \"us-east-1\"\nprofile = \"nosuchprofile\"\n"
            ),
            vec![],
            "no AWS credentials",
        ),
        (
            "empty region",
            format!("endpoint_url = \"{moto}\"\n"),
            vec![
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", ""),
            ],
            "no AWS region",
        ),
        (
            "invalid region",
            format!("endpoint_url = \"{moto}\"\nregion = \"Mars North 1\"\n"),
            CREDS[..2].to_vec(),
            "invalid AWS region",
        ),
        (
            "unreachable endpoint",
            "endpoint_url = \"http://127.0.0.1:9\"\n".to_string(),
            CREDS.to_vec(),
            "Connection refused",
        ),
    ];
    for (case, aws, env, needle) in &cases {
        let dir = workdir(&stack_name("bad"), aws);
        let started = Instant::now();
        let out = iotaa(dir.path(), env, &["stack", "status"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{case}: not one line:\n{err}"
        );
        assert!(err.contains(needle), "{case}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{case}: took {:?}",
            started.elapsed()
        );
    }
    eprintln!("aws_stack: {} bad-input cases, one line each", cases.len());
}

/// States moto cannot produce, reported through the proxy: deploy refuses a stack in
/// ROLLBACK_COMPLETE or in progress, and the pipeline refuses a stack that is not complete,
/// each with one line that says what to do.
#[test]
fn deploy_refuses_a_rolled_back_or_busy_stack_and_the_pipeline_an_unfinished_one() {
    let proxy = FaultProxy::start(&endpoint(), Faults::NONE);
    let stack = stack_name("states");
    let dir = workdir(&stack, &format!("endpoint_url = \"{}\"\n", proxy.url));
    let d = dir.path();
    let out = iotaa(d, &CREDS, &["stack", "deploy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (status, command, needle) in [
        ("ROLLBACK_COMPLETE", "deploy", "cannot be updated"),
        (
            "UPDATE_IN_PROGRESS",
            "deploy",
            "is busy (UPDATE_IN_PROGRESS)",
        ),
        (
            "CREATE_IN_PROGRESS",
            "tail",
            "the pipeline needs it CREATE_COMPLETE",
        ),
    ] {
        proxy.set(Faults {
            stack_status: Some(status),
            ..Faults::NONE
        });
        let args: Vec<&str> = if command == "deploy" {
            vec!["stack", "deploy"]
        } else {
            vec!["tail"]
        };
        let out = iotaa(d, &CREDS, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{status}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{status}: {err}");
        assert!(err.contains(needle), "{status}: {err}");
    }
    proxy.set(Faults::NONE);
    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
