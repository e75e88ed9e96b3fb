//! Helpers for the tests that run the binary against moto (`./.ci/run` starts it and sets
//! `IOTAA_MOTO_ENDPOINT`), and a fault-injecting proxy to put in front of it.

use std::path::Path;
use std::process::{Command, Output};

pub fn endpoint() -> String {
    std::env::var("IOTAA_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "IOTAA_MOTO_ENDPOINT is not set: run the tests through ./.ci/run, which starts moto, \
             or start .ci/venv/bin/moto_server and set IOTAA_MOTO_ENDPOINT=http://127.0.0.1:5000"
        )
    })
}

/// A folder with a config for the aws backend on `endpoint` and a stack name of its own. The
/// detector runs in the app unless `aws_extra` sets `detector`: moto stores Lambda functions but
/// cannot run them, so only the in-app detector scores there.
pub fn workdir(stack: &str, aws_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // Right after stack_name: `aws_extra` may go on with other sections.
    let detector = if aws_extra.contains("detector =") {
        ""
    } else {
        "detector = \"app\"\n"
    };
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "backend = \"aws\"\ndata_dir = \"data\"\n[aws]\nstack_name = \"{stack}\"\n{detector}{aws_extra}"
        ),
    )
    .unwrap();
    dir
}

/// `iotaa <args>` in `dir` with a clean AWS environment plus `env`.
pub fn iotaa(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env, args).output().unwrap()
}

/// The `iotaa <args>` command of [`iotaa`], to spawn.
pub fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iotaa"));
    c.current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IOTAA_STACK_POLL_MS", "100");
    for k in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "RUST_LOG",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub const CREDS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stack_name(test: &str) -> String {
    format!("iotaa-{test}-{}", std::process::id())
}

/// The stack's output `key`, from `iotaa stack outputs`.
pub fn output(dir: &Path, key: &str) -> String {
    let out = iotaa(dir, &CREDS, &["stack", "outputs"]);
    text(&out.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no output {key}"))
        .to_string()
}

/// Queues a result in moto for the next Athena query: the header row, then `n` rows.
pub fn queue_athena_result(moto: &str, n: usize) {
    let cell = |v: String| serde_json::json!({ "VarCharValue": v });
    let mut rows = vec![serde_json::json!({"Data": [cell("deviceid".into()), cell("n".into())]})];
    rows.extend(
        (0..n)
            .map(|i| serde_json::json!({"Data": [cell(format!("d{i:04}")), cell(i.to_string())]})),
    );
    let body = serde_json::json!({
        "region": "us-east-1",
        "results": [{
            "rows": rows,
            "column_info": [
                {"Name": "deviceid", "Type": "varchar"},
                {"Name": "n", "Type": "bigint"}
            ]
        }]
    });
    let reply = ureq::post(&format!("{moto}/moto-api/static/athena/query-results"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(reply.status(), 201);
}

/// A client of the AWS SDK crate `$sdk` (`aws_sdk_kinesis`, …) on moto at `$endpoint`, with
/// moto's test credentials, over plain HTTP.
#[macro_export]
macro_rules! moto_client {
    ($sdk:ident, $endpoint:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .region($sdk::config::Region::new("us-east-1"))
                .endpoint_url($endpoint)
                .credentials_provider($sdk::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .build(),
        )
    };
}

/// Creates Athena workgroup `name` on moto (which does not create the template's).
pub fn create_workgroup(moto: &str, name: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        crate::moto_client!(aws_sdk_athena, moto)
            .create_work_group()
            .name(name)
            .send()
            .await
            .unwrap();
    });
}

#[allow(unused_imports)] // not every test binary uses the proxy
pub use super::proxy::*;
