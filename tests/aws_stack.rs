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
    // What the stack costs idle: 2 on-demand streams at $0.04/h, 4 alarms at $0.10/month and
    // the alert topic's KMS key at $1/month: 57.60 + 0.40 + 1.00.
    let cost = status
        .lines()
        .find(|l| l.trim_start().starts_with("standing cost"))
        .unwrap_or_else(|| panic!("no standing cost row:\n{status}"));
    // The alert mapping's failure queue, empty; the alarms (moto cannot answer CloudWatch's
    // current protocol: one row says so).
    let queue = status
        .lines()
        .find(|l| l.trim_start().starts_with("alert failures"))
        .unwrap_or_else(|| panic!("no alert failures row:\n{status}"));
    assert!(
        queue.contains("SQS::Queue") && queue.contains(" empty "),
        "{queue}"
    );
    assert!(
        status.lines().any(|l| l.contains("CloudWatch::Alarm")),
        "no alarm row:\n{status}"
    );
    assert!(cost.contains("$0.082/h"), "{cost}");
    assert!(
        cost.contains("$59.00/month idle: 2 on-demand streams"),
        "{cost}"
    );

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
    // The operator's IAM policy, filled with the stack's names (STS on moto says the account).
    let out = iotaa(d, &CREDS, &["stack", "policy"]);
    let policy = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(json["Version"], "2012-10-17");
    assert!(!policy.contains("${"), "{policy}");
    assert!(policy.contains(&format!(":stream/{readings}")), "{policy}");
    assert!(
        policy.contains(&format!("arn:aws:s3:::{bucket}")),
        "{policy}"
    );
    let out = iotaa(d, &CREDS, &["stack", "policy", "--deploy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok());

    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes", "--delete-lake"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(&format!("stack {stack}: deleted")));
    // The stack keeps its bucket (DeletionPolicy Retain); --delete-lake empties and deletes it.
    assert!(
        text(&out.stdout).contains(&format!(
            "bucket {bucket}: 1 objects deleted; bucket deleted"
        )),
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

/// A zip holding a file `bootstrap` of `size` bytes (python3's zipfile). A stand-in for the
/// function's code: moto stores functions but never runs them, so what is deployed here is
/// the deploy itself (two phases, content-addressed key, update on a code change); the real
/// `bootstrap` runs in lambda/tests/emulator.rs.
fn stand_in_zip(dir: &std::path::Path, name: &str, size: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('bootstrap', b'x' * int(sys.argv[2]))",
        ])
        .arg(&path)
        .arg(size.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// `GetFunction` on moto: the function's configuration as JSON.
fn get_function(name: &str) -> serde_json::Value {
    let reply = ureq::get(&format!("{}/2015-03-31/functions/{name}", endpoint()))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0",
        )
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&reply).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `[aws] detector = "lambda"`: a first deploy creates the stack without the function, uploads
/// the zip to the stack's bucket under its content hash, then adds the function and its
/// mapping; the same zip again changes nothing; another zip updates the function. With the
/// function deployed, `iotaa detect` says where the detector runs and `detector = "app"` is
/// refused (both would score every reading).
#[test]
fn the_detector_function_deploys_from_a_content_addressed_zip_and_updates_with_it() {
    let stack = stack_name("fn");
    let dir = workdir(
        &stack,
        &format!("endpoint_url = \"{}\"\ndetector = \"lambda\"\n", endpoint()),
    );
    let d = dir.path();
    let first = stand_in_zip(d, "first.zip", 1_000);
    let second = stand_in_zip(d, "second.zip", 2_000);
    let key = |zip: &std::path::Path| {
        format!(
            "artifacts/detector/{}.zip",
            sha256_hex(&std::fs::read(zip).unwrap())
        )
    };

    let arg = first.to_str().unwrap();
    let out = iotaa(d, &CREDS, &["stack", "deploy", "--artifact", arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for needle in [
        format!("stack {stack}: creating it without the detector function first"),
        format!("stack {stack}: CREATE_COMPLETE"),
        format!("/{}", key(&first)),
        format!("stack {stack}: updating"),
        format!("stack {stack}: UPDATE_COMPLETE"),
        "DetectorFunctionName".to_string(),
        "DetectorMappingId".to_string(),
    ] {
        assert!(stdout.contains(&needle), "no {needle:?} in:\n{stdout}");
    }
    let function = common::aws::output(d, "DetectorFunctionName");
    assert_eq!(function, format!("{stack}-detector"));
    let f = get_function(&function);
    assert_eq!(
        f["Configuration"]["CodeSize"],
        std::fs::metadata(&first).unwrap().len(),
        "{f}"
    );

    // The same zip: already uploaded, the same key (AWS then finds nothing to update; moto
    // runs an update that changes nothing).
    let out = iotaa(d, &CREDS, &["stack", "deploy", "--artifact", arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("is already uploaded"), "{stdout}");
    assert!(
        stdout.contains("already up to date") || stdout.contains("UPDATE_COMPLETE"),
        "{stdout}"
    );
    assert!(!stdout.contains("creating"), "{stdout}");

    // Another zip: a new key, and the function takes it.
    let out = iotaa(
        d,
        &CREDS,
        &["stack", "deploy", "--artifact", second.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&key(&second)), "{stdout}");
    assert!(stdout.contains("UPDATE_COMPLETE"), "{stdout}");
    let f = get_function(&function);
    assert_eq!(
        f["Configuration"]["CodeSize"],
        std::fs::metadata(&second).unwrap().len(),
        "{f}"
    );

    // `stack status` has the function's row: its mapping's state and last result, and its
    // metrics. moto 5.2.5 does not speak CloudWatch's current protocol (Smithy RPC v2 CBOR,
    // which the SDK uses), so here the row says the metrics are unavailable, in one line;
    // `figures_from` is unit-tested on GetMetricData's result shape.
    let out = iotaa(d, &CREDS, &["stack", "status"]);
    let status = text(&out.stdout);
    assert!(out.status.success(), "{status}{}", text(&out.stderr));
    let row = status
        .lines()
        .find(|l| l.trim_start().starts_with("detector "))
        .unwrap_or_else(|| panic!("no detector row:\n{status}"));
    assert!(row.contains("Lambda::Function"), "{row}");
    assert!(row.contains(&format!("{function}, last result:")), "{row}");
    assert!(
        row.contains("0 invocations, 0 errors, 0 throttles in 5 min")
            || row.contains("metrics unavailable: "),
        "{row}"
    );

    // The app does not score when the function does.
    let out = iotaa(d, &CREDS, &["detect"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "the detector runs in the Lambda function {function}"
        )),
        "{err}"
    );
    let app = workdir(
        &stack,
        &format!("endpoint_url = \"{}\"\ndetector = \"app\"\n", endpoint()),
    );
    let out = iotaa(app.path(), &CREDS, &["detect"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("both would score every reading"), "{err}");

    // A file that is not a zip: one line, nothing deployed.
    let bad = d.join("bad.zip");
    std::fs::write(&bad, "not a zip").unwrap();
    let out = iotaa(
        d,
        &CREDS,
        &["stack", "deploy", "--artifact", bad.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a zip file"), "{err}");

    // Without --delete-lake the lake bucket (here: the function's code) outlives the stack.
    let bucket = common::aws::output(d, "BucketName");
    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("bucket {bucket}: kept")),
        "{stdout}"
    );
    let head = ureq::head(&format!("{}/{bucket}", endpoint()))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .call()
        .unwrap();
    assert_eq!(head.status(), 200, "the bucket is still there");
    eprintln!(
        "aws_stack: detector function deployed in two phases, no-op redeploy, code update, delete keeping the lake bucket"
    );
}

/// Kinesis takes at most 1,000 records a second per partition key, and iotaa keys by device:
/// a faster configured device is refused before anything starts, in one line.
#[test]
fn a_device_rate_above_the_partition_key_limit_is_one_line() {
    let dir = workdir(
        &stack_name("rate"),
        &format!(
            "endpoint_url = \"{}\"\n[producer]\nrate = 2000\n",
            endpoint()
        ),
    );
    let out = iotaa(dir.path(), &CREDS, &["produce", "--duration", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("producer.rate is 2000 readings/s per device")
            && err.contains("1,000 records/s per partition key"),
        "{err}"
    );
}

/// `[delivery] format = "parquet"` deploys the stack with LakeFormat=parquet (Firehose converts
/// to Parquet; the template side is checked by check_moto); a config that says "json" against
/// that stack is refused in one line.
#[test]
fn the_lake_format_is_deployed_and_a_mismatch_is_one_line() {
    let stack = stack_name("parquet");
    let config = |format: &str| {
        format!(
            "endpoint_url = \"{}\"\n[delivery]\nformat = \"{format}\"\n",
            endpoint()
        )
    };
    let dir = workdir(&stack, &config("parquet"));
    let d = dir.path();
    let out = iotaa(d, &CREDS, &["stack", "deploy"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = iotaa(d, &CREDS, &["stack", "outputs"]);
    let outputs = text(&out.stdout);
    assert!(
        outputs
            .lines()
            .any(|l| l.contains("LakeFormat") && l.contains("parquet")),
        "{outputs}"
    );
    let cfg = d.join("config.toml");
    let text_of = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text_of.replace("\"parquet\"", "\"json\"")).unwrap();
    let out = iotaa(d, &CREDS, &["produce", "--duration", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("deployed with LakeFormat=parquet but [delivery] format is \"json\""),
        "{err}"
    );
    let out = iotaa(d, &CREDS, &["stack", "delete", "--yes", "--delete-lake"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
