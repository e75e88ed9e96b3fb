#!/usr/bin/env python3
"""Smoke check of infra/iotaa.yaml against a moto server (run by .ci/run after cfn-lint).

What it does, in order:
  1. Static checks that no emulator can make: the Glue table is the table of
     queries/devicedata.sql, the parameter defaults are the app's defaults (config.toml), the
     outputs built from name strings name the same thing as the resources they stand for, and the
     inline alert function compiles and fits CloudFormation's inline-code limit. For the detector:
     its parameter defaults are config.toml's [detector], the function gets every environment
     variable it reads, its role is exactly the least-privilege set of statements, the mapping
     and the Firehose processor are configured as documented, and no lifecycle rule expires
     artifacts/ or detector-state/. For issue 13 (safe on AWS): no named resource needs a
     replacement under the same name when a parameter changes (REPLACEMENT, each type's
     replacement properties), names fit with a 50-character stack name, no IAM resource is
     named, the template fits the TemplateBody limit, the Athena cutoff, the alarms and what lets
     them reach the encrypted topic, the alert failure queue and role, the lake's lifecycle, the
     iotaa:stack tags, Firehose's S3 scope and encryption, and infra/operator-policy.json and
     infra/deploy-policy.json. For issue 14 (LakeFormat json | parquet): Firehose's record
     format conversion (OpenX JSON in, Snappy Parquet out, the Glue table's schema read by the
     delivery role), UNCOMPRESSED and the 64 MiB buffer with it, the delivery role's Glue read
     permissions on the catalog, database and table only, and the table's SerDe per format.
  2. Creates the stack with default parameters, waits for CREATE_COMPLETE (or prints every
     resource's failure reason), checks the outputs and describes every resource moto made.
  3. Runs the alert function's inline code here (moto cannot run Lambda code without Docker)
     against moto's SNS, with the records the event-source filter lets through and some it drops.
  4. Deletes the stack, waits for DELETE_COMPLETE and checks the resources are gone.
  5. Does 2 and 4 again with non-default parameters (provisioned shards, a lake prefix, an email
     subscription, another threshold, an expiry, a cutoff, LakeFormat=parquet), so the
     template's conditions are exercised; the first stack also switches Ingest to firehose and
     back, and LakeFormat to parquet and back, before it is deleted.
  6. The detector's two-phase deploy, once per Ingest: creates the stack without a detector
     (DetectorCodeKey ''), uploads a small zip holding `bootstrap` to
     artifacts/detector/<sha256>.zip, updates the stack with that key (every other parameter
     UsePreviousValue), then checks the function, its environment and role, the event-source
     mapping and failure queue (Ingest=kinesis) or their absence and Firehose's permission to
     invoke it (Ingest=firehose), and the detector outputs; empties the bucket, deletes the stack.
  7. Prints which resource types moto skipped (it lists them as CREATE_COMPLETE without creating
     anything) and which properties it accepted but ignored.

Usage: check_moto.py [--endpoint URL] [--template FILE] [--reset]
  --endpoint  moto server (default: $IOTAA_MOTO_ENDPOINT, else http://127.0.0.1:5000)
  --template  template to check (default: infra/iotaa.yaml)
  --reset     reset the moto server's state at the end (CI does, so later tests start clean)
Only dummy credentials are ever used. Exit status 0 when every check passed, 1 otherwise.
"""

import argparse
import ast
import base64
import contextlib
import copy
import fnmatch
import hashlib
import io
import json
import os
import re
import sys
import time
import tomllib
import types
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "iotaa.yaml"
TABLE_DDL = ROOT / "queries" / "devicedata.sql"
CONFIG = ROOT / "config.toml"
REGION = "us-east-1"
WAIT_SECS = 60

# Every output the app reads. LakePrefix exists only when the Prefix parameter is not empty.
OUTPUTS = [
    "ReadingsStreamName", "AnomalyStreamName", "DeliveryStreamName", "BucketName", "LakePrefix",
    "LakeLocation", "GlueDatabaseName", "GlueTableName", "AthenaWorkGroup",
    "AthenaResultsLocation", "AlertTopicArn", "AlertFunctionName", "AlertThreshold", "Ingest",
    "AthenaBytesScannedCutoff", "AlertFailureQueueUrl", "AlarmNames", "LakeFormat",
]
# Outputs of the detector: the first and last with any DetectorCodeKey, the middle two only with
# Ingest=kinesis (the mapping and its failure queue).
DETECTOR_OUTPUTS = ["DetectorFunctionName", "DetectorMappingId", "DetectorFailureQueueUrl",
                    "DetectorStatePrefix"]
STATE_PREFIX = "detector-state/"

# Detector parameter -> config.toml [detector] key whose default it repeats.
DETECTOR_PARAMS = {
    "DetectorTrees": "trees", "DetectorSampleSize": "sample_size",
    "DetectorTimeDecay": "time_decay", "DetectorShingleSize": "shingle_size",
    "DetectorPerDevice": "per_device", "DetectorExplanation": "explanation",
    "DetectorRandomSeed": "random_seed", "SnapshotIntervalSeconds": "snapshot_interval_secs",
}
# The detector function's environment, exactly: the names it reads and what the template sets.
DETECTOR_ENV = {
    "ANOMALY_STREAM_NAME": {"Ref": "AnomalyStream"}, "STATE_BUCKET": {"Ref": "LakeBucket"},
    "STATE_PREFIX": STATE_PREFIX, "DETECTOR_TREES": {"Ref": "DetectorTrees"},
    "DETECTOR_SAMPLE_SIZE": {"Ref": "DetectorSampleSize"},
    "DETECTOR_TIME_DECAY": {"Ref": "DetectorTimeDecay"},
    "DETECTOR_SHINGLE_SIZE": {"Ref": "DetectorShingleSize"},
    "DETECTOR_PER_DEVICE": {"Ref": "DetectorPerDevice"},
    "DETECTOR_EXPLANATION": {"Ref": "DetectorExplanation"},
    "DETECTOR_RANDOM_SEED": {"Ref": "DetectorRandomSeed"},
    "SNAPSHOT_INTERVAL_SECS": {"Ref": "SnapshotIntervalSeconds"},
}
NO_VALUE = {"Ref": "AWS::NoValue"}
DETECTOR_LOG_ARN = {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                               "log-group:/aws/lambda/${AWS::StackName}-detector:*"}
# The detector role's statements, by Sid: (condition that keeps it, actions, resources, IAM
# condition). Nothing else: no wildcard action, and `*` only inside the two resources that say so.
DETECTOR_STATEMENTS = {
    "ReadReadingsStream": ("StreamDetector", [
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
        "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:SubscribeToShard"],
        [{"Fn::GetAtt": ["ReadingsStream", "Arn"]}], None),
    "WriteAnomalyStream": (None, ["kinesis:PutRecords"],
                           [{"Fn::GetAtt": ["AnomalyStream", "Arn"]}], None),
    "ModelState": (None, ["s3:GetObject", "s3:PutObject"],
                   [{"Fn::Sub": "${LakeBucket.Arn}/" + STATE_PREFIX + "*"}], None),
    "ListModelState": (None, ["s3:ListBucket"], [{"Fn::GetAtt": ["LakeBucket", "Arn"]}],
                       {"StringLike": {"s3:prefix": STATE_PREFIX + "*"}}),
    "RecordFailedBatches": ("StreamDetector", ["sqs:SendMessage"],
                            [{"Fn::GetAtt": ["DetectorFailureQueue", "Arn"]}], None),
    "Log": (None, ["logs:CreateLogStream", "logs:PutLogEvents"], [DETECTOR_LOG_ARN], None),
}
DETECTOR_CONDITIONS = {
    "HasDetector": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DetectorCodeKey"}, ""]}]},
    "StreamDetector": {"Fn::And": [{"Condition": "HasDetector"},
                                   {"Fn::Not": [{"Condition": "DirectPut"}]}]},
    "FirehoseDetector": {"Fn::And": [{"Condition": "HasDetector"}, {"Condition": "DirectPut"}]},
}
# The condition of each detector resource and output.
DETECTOR_RESOURCES = {
    "DetectorLogGroup": "HasDetector", "DetectorFailureQueue": "StreamDetector",
    "DetectorRole": "HasDetector", "DetectorFunction": "HasDetector",
    "DetectorTrigger": "StreamDetector", "DetectorFunctionName@out": "HasDetector",
    "DetectorMappingId@out": "StreamDetector", "DetectorFailureQueueUrl@out": "StreamDetector",
    "DetectorStatePrefix@out": "HasDetector",
}
DETECTOR_TRIGGER = {
    "FunctionName": {"Ref": "DetectorFunction"},
    "EventSourceArn": {"Fn::GetAtt": ["ReadingsStream", "Arn"]},
    "StartingPosition": "LATEST", "BatchSize": {"Ref": "DetectorBatchSize"},
    "MaximumBatchingWindowInSeconds": {"Ref": "DetectorBatchWindowSeconds"},
    "ParallelizationFactor": 1, "BisectBatchOnFunctionError": True, "MaximumRetryAttempts": 10,
    "MaximumRecordAgeInSeconds": 86400, "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "DestinationConfig": {"OnFailure": {"Destination": {
        "Fn::GetAtt": ["DetectorFailureQueue", "Arn"]}}},
    "Tags": [{"Key": "iotaa:stack", "Value": {"Ref": "AWS::StackName"}}],
}
DETECTOR_PROCESSING = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
    {"ParameterName": "LambdaArn", "ParameterValue": {"Fn::GetAtt": ["DetectorFunction", "Arn"]}},
    {"ParameterName": "NumberOfRetries", "ParameterValue": "3"},
    {"ParameterName": "BufferSizeInMBs", "ParameterValue": "1"},
    {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "60"}]}]}

# ----------------------------------------------------------------------------- issue 13 tables
OPERATOR_POLICY = ROOT / "infra" / "operator-policy.json"
DEPLOY_POLICY = ROOT / "infra" / "deploy-policy.json"
README = ROOT / "infra" / "README.md"
TEMPLATE_BODY_LIMIT = 51200  # bytes: CreateStack/UpdateStack TemplateBody (the app sends the body)
STACK_NAME_MAX = 50  # the longest stack name the README allows
TAG = {"Key": "iotaa:stack", "Value": {"Ref": "AWS::StackName"}}

# Per resource type of the template: (the properties that name it, the properties whose change
# means replacement), as paths. From the "Update requires: Replacement" lines of AWS's
# CloudFormation resource reference pages, which are the registry schemas' createOnlyProperties
# (cfn-lint ships those schemas; the check below compares). Glue::Database's CatalogId is
# Replacement on the older reference page and updatable in the schema: kept, to be safe. A
# resource is custom-named when it sets one of its name properties; the bucket and the roles
# are not (generated names), which is what lets CloudFormation replace them.
REPLACEMENT = {
    "AWS::Kinesis::Stream": (["Name"], ["Name"]),
    "AWS::KinesisFirehose::DeliveryStream": (["DeliveryStreamName"], [
        "DeliveryStreamName", "DeliveryStreamType", "KinesisStreamSourceConfiguration",
        "DirectPutSourceConfiguration", "MSKSourceConfiguration", "DatabaseSourceConfiguration",
        "ElasticsearchDestinationConfiguration/VpcConfiguration",
        "AmazonopensearchserviceDestinationConfiguration/VpcConfiguration",
        "AmazonOpenSearchServerlessDestinationConfiguration/VpcConfiguration",
        "IcebergDestinationConfiguration/CatalogConfiguration",
        "SnowflakeDestinationConfiguration/SnowflakeVpcConfiguration"]),
    "AWS::Lambda::Function": (["FunctionName"], ["FunctionName", "PackageType", "TenancyConfig"]),
    "AWS::Lambda::EventSourceMapping": ([], [
        "EventSourceArn", "StartingPosition", "StartingPositionTimestamp",
        "SelfManagedEventSource"]),
    "AWS::SQS::Queue": (["QueueName"], ["QueueName", "FifoQueue"]),
    "AWS::SNS::Topic": (["TopicName"], ["TopicName", "FifoTopic"]),
    "AWS::SNS::TopicPolicy": ([], []),
    "AWS::SNS::Subscription": ([], ["Endpoint", "Protocol", "TopicArn"]),
    "AWS::Logs::LogGroup": (["LogGroupName"], ["LogGroupName"]),
    "AWS::Logs::LogStream": (["LogGroupName", "LogStreamName"], ["LogGroupName", "LogStreamName"]),
    "AWS::Athena::WorkGroup": (["Name"], ["Name"]),
    "AWS::Glue::Database": (["DatabaseInput/Name", "DatabaseName"], ["CatalogId", "DatabaseName"]),
    "AWS::Glue::Table": (["DatabaseName", "TableInput/Name", "Name"], [
        "CatalogId", "DatabaseName", "TableInput/Name", "Name"]),
    "AWS::CloudWatch::Alarm": (["AlarmName"], ["AlarmName"]),
    "AWS::KMS::Key": ([], []),
    "AWS::S3::Bucket": (["BucketName"], ["BucketName", "BucketNamePrefix", "BucketNamespace"]),
    "AWS::S3::BucketPolicy": ([], ["Bucket"]),
    "AWS::IAM::Role": (["RoleName"], ["RoleName", "Path"]),
}
# Longest name each named type allows (AWS's limits), for the longest stack name.
NAME_LIMITS = {
    "AWS::Kinesis::Stream": 128, "AWS::KinesisFirehose::DeliveryStream": 64,
    "AWS::Lambda::Function": 64, "AWS::SQS::Queue": 80, "AWS::SNS::Topic": 256,
    "AWS::Logs::LogGroup": 512, "AWS::Athena::WorkGroup": 128, "AWS::CloudWatch::Alarm": 255,
}
# What Lambda needs to poll a Kinesis stream through an event-source mapping (Lambda developer
# guide, "Process Kinesis Data Streams records with Lambda"). kinesis:ListStreams, in the managed
# policy AWSLambdaKinesisExecutionRole too, cannot be scoped to a stream and is not needed.
LAMBDA_KINESIS_ACTIONS = [
    "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
    "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:SubscribeToShard"]
# The alarms: logical id -> (condition, namespace, metric, dimension name, dimension value).
ALARMS = {
    "ReadingsIteratorAgeAlarm": ("NoStreamDetector", "AWS/Kinesis",
                                 "GetRecords.IteratorAgeMilliseconds", "StreamName",
                                 {"Ref": "ReadingsStream"}),
    "DetectorIteratorAgeAlarm": ("StreamDetector", "AWS/Lambda", "IteratorAge", "FunctionName",
                                 {"Ref": "DetectorFunction"}),
    "DeliveryFreshnessAlarm": (None, "AWS/Firehose", "DeliveryToS3.DataFreshness",
                               "DeliveryStreamName", "DeliveryStream.DeliveryStreamName"),
    "AlertErrorsAlarm": (None, "AWS/Lambda", "Errors", "FunctionName", {"Ref": "AlertFunction"}),
    "AlertIteratorAgeAlarm": (None, "AWS/Lambda", "IteratorAge", "FunctionName",
                              {"Ref": "AlertFunction"}),
}
# Keys the stack keeps for itself (never lake, never expired but athena-results/ after 7 days).
OWN_KEYS = ["athena-results/q.csv", "artifacts/detector/" + "0a" * 32 + ".zip",
            STATE_PREFIX + "shardId-000000000000.json"]
# The SDK calls the app makes on a deployed stack (src/backend/aws/, as of issue 13), as IAM
# actions: the operator policy must allow each.
APP_CALLS = [
    "kinesis:PutRecords", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards",
    "kinesis:DescribeStreamSummary", "firehose:PutRecordBatch", "firehose:DescribeDeliveryStream",
    "athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
    "athena:StopQueryExecution", "s3:GetObject", "s3:ListBucket",
    "cloudformation:DescribeStacks", "cloudformation:DescribeStackResources",
    "cloudformation:DescribeStackEvents", "lambda:GetEventSourceMapping",
    "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
]
# Placeholders the app substitutes in the policy files (infra/README.md lists them): the
# partition, region and account of the stack, its name (and in lower case, as bucket names
# are), and the stack's outputs by name (an absent output, LakePrefix, is '').
PSEUDO_PLACEHOLDERS = ["Partition", "Region", "Account", "StackName", "StackNameLower"]
OUTPUT_PLACEHOLDERS = ["ReadingsStreamName", "AnomalyStreamName", "DeliveryStreamName",
                       "BucketName", "LakePrefix", "AthenaWorkGroup", "GlueDatabaseName",
                       "GlueTableName"]

# Make sure nothing here can reach a real account, whatever the caller's environment holds.
for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(var, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)

import boto3  # noqa: E402  (after the environment is made safe)
import yaml  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


# ----------------------------------------------------------------------------- reporting

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = {}  # resource type -> why
        self.ignored = {}  # resource type -> [property moto accepted but did not apply]

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what + (f": {detail}" if detail else ""))
            print(f"  FAIL  {what}" + (f": {detail}" if detail else ""))
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, what, f"got {got!r}, want {want!r}")

    def skip(self, rtype, why):
        self.skipped.setdefault(rtype, why)

    def ignore(self, rtype, prop):
        props = self.ignored.setdefault(rtype, [])
        if prop not in props:
            props.append(prop)


def section(title):
    print(f"\n== {title}")


# ----------------------------------------------------------------------------- template

class CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags into their long form."""


def _cfn_tag(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path):
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)


def parse_ddl(text):
    """The parts of queries/devicedata.sql that the Glue table must repeat."""
    text = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    m = re.search(r"CREATE EXTERNAL TABLE IF NOT EXISTS (\w+)\.(\w+)\s*\((.*?)\)\s*PARTITIONED BY"
                  r"\s*\((.*?)\)", text, re.S)
    pairs = lambda s: re.findall(r"'([^']*)'\s*=\s*'([^']*)'", s)  # noqa: E731
    cols = [tuple(c.split()) for c in m.group(3).split(",")]
    parts = [tuple(c.split()) for c in m.group(4).split(",")]
    serde = re.search(r"ROW FORMAT SERDE '([^']+)'", text).group(1)
    serde_props = dict(pairs(re.search(r"SERDEPROPERTIES\s*\((.*?)\)", text, re.S).group(1)))
    location = re.search(r"LOCATION '([^']+)'", text).group(1)
    tbl = dict(pairs(re.search(r"TBLPROPERTIES\s*\((.*?)\);", text, re.S).group(1)))
    return dict(database=m.group(1), table=m.group(2), columns=cols, partitions=parts,
                serde=serde, serde_props=serde_props, location=location, tblprops=tbl)


def sub_text(value, params):
    """A template string or !Sub string, with parameters at their defaults, the bucket as
    <bucket> (the .sql placeholder) and ${!x} literals unescaped."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        return value
    value = value.replace("${LakeBucket}", "<bucket>")
    for name, default in params.items():
        value = value.replace("${" + name + "}", str(default))
    return re.sub(r"\$\{!(\w+)\}", r"${\1}", value)


def static_checks(tpl, rep):
    section("template: static checks")
    res = tpl["Resources"]
    params = {k: v.get("Default", "") for k, v in tpl["Parameters"].items()}
    cfg = tomllib.loads(CONFIG.read_text())

    # Parameter defaults are the seed's, and the app's where the app has the same setting.
    rep.equal(float(params["AnomalyThreshold"]), float(cfg["alerts"]["threshold"]),
              "AnomalyThreshold default = config.toml [alerts] threshold")
    rep.equal(params["DatabaseName"], cfg["query"]["database"],
              "DatabaseName default = config.toml [query] database")
    rep.equal(params["Prefix"], cfg["delivery"]["prefix"], "Prefix default = config.toml prefix")
    rep.equal(params["ShardCount"], cfg["aws"]["shard_count"],
              "ShardCount default = config.toml [aws] shard_count (on-demand)")
    rep.equal(params["Ingest"], cfg["aws"]["ingest"], "Ingest default = config.toml [aws] ingest")
    rep.equal((params["BufferIntervalSeconds"], params["BufferSizeMiB"], params["Compression"]),
              (60, 1, "GZIP"), "Firehose defaults are the seed's 60 s / 1 MiB / GZIP")
    # [delivery] format is the app's side of issue 14: until config.toml has it, "json".
    rep.equal(params["LakeFormat"], cfg["delivery"].get("format", "json"),
              "LakeFormat default = config.toml [delivery] format (json when absent)")

    # The Glue table (LakeFormat=json, the default) is the table of queries/devicedata.sql.
    ddl = parse_ddl(TABLE_DDL.read_text())
    ti = evaluate(res["LakeTable"]["Properties"]["TableInput"], template_env(tpl, {}),
                  conditions_for(tpl, {}))
    sd = ti["StorageDescriptor"]
    rep.equal((params["DatabaseName"], ti["Name"]), (ddl["database"], ddl["table"]),
              "Glue database.table = devicedata.sql's")
    rep.equal([(c["Name"], c["Type"]) for c in sd["Columns"]], ddl["columns"],
              "Glue columns = devicedata.sql's")
    rep.equal([(c["Name"], c["Type"]) for c in ti["PartitionKeys"]], ddl["partitions"],
              "Glue partition keys = devicedata.sql's")
    rep.equal(sd["SerdeInfo"]["SerializationLibrary"], ddl["serde"], "SerDe = devicedata.sql's")
    rep.equal(sd["SerdeInfo"]["Parameters"], ddl["serde_props"],
              "SerDe properties = devicedata.sql's")
    rep.equal(sub_text(sd["Location"], params), ddl["location"],
              "table location = devicedata.sql's (default prefix)")
    tbl = {k: sub_text(v, params) for k, v in ti["Parameters"].items()}
    missing = {k: v for k, v in ddl["tblprops"].items() if tbl.get(k) != v}
    rep.check(not missing, "table properties include every TBLPROPERTIES of devicedata.sql",
              f"differ: {missing} vs {[(k, tbl.get(k)) for k in missing]}")

    # Outputs that stand for a resource moto skips are name strings, not !Ref: they must name the
    # same thing as the resource's own name property.
    outs = tpl["Outputs"]
    rep.equal(outs["DeliveryStreamName"]["Value"],
              res["DeliveryStream"]["Properties"]["DeliveryStreamName"],
              "output DeliveryStreamName = the Firehose stream's name")
    rep.equal(outs["AthenaWorkGroup"]["Value"], res["QueryWorkGroup"]["Properties"]["Name"],
              "output AthenaWorkGroup = the workgroup's name")
    rep.equal(outs["GlueDatabaseName"]["Value"],
              res["LakeDatabase"]["Properties"]["DatabaseInput"]["Name"],
              "output GlueDatabaseName = the Glue database's name")
    rep.equal(outs["GlueTableName"]["Value"], ti["Name"], "output GlueTableName = the table's name")
    wg_loc = res["QueryWorkGroup"]["Properties"]["WorkGroupConfiguration"][
        "ResultConfiguration"]["OutputLocation"]
    rep.equal(outs["AthenaResultsLocation"]["Value"], wg_loc,
              "output AthenaResultsLocation = the workgroup's result location")
    rules = res["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r.get("Prefix") for r in rules if r.get("ExpirationInDays")]
    rep.check(sub_text(wg_loc, params).endswith("/" + expiring[0]) if expiring else False,
              "a lifecycle rule expires the Athena result prefix", f"rules {rules}")
    rep.equal(sorted(outs), sorted(OUTPUTS + DETECTOR_OUTPUTS),
              "the template has exactly the expected outputs")

    # The inline alert function.
    code = res["AlertFunction"]["Properties"]["Code"]["ZipFile"]
    rep.check(len(code.encode()) <= 4096, f"inline code fits 4096 bytes ({len(code.encode())})")
    try:
        compile(code, "index.py", "exec")
        rep.check(True, "inline code compiles")
    except SyntaxError as e:
        rep.check(False, "inline code compiles", str(e))
    return code


def as_list(value):
    return value if isinstance(value, list) else [value]


def template_statements(role):
    """(condition or None, statement) for each statement of a role's inline policies, with
    `!If [cond, statement, AWS::NoValue]` unwrapped."""
    got = []
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in st and st["Fn::If"][2] == NO_VALUE:
                got.append((st["Fn::If"][0], st["Fn::If"][1]))
            else:
                got.append((None, st))
    return got


def detector_static_checks(tpl, rep):
    section("template: detector (static checks)")
    res = tpl["Resources"]
    params = tpl["Parameters"]
    cfg = tomllib.loads(CONFIG.read_text())["detector"]

    # Parameter defaults are config.toml's [detector] values.
    for name, key in DETECTOR_PARAMS.items():
        default, want = params[name].get("Default"), cfg[key]
        if isinstance(want, bool):
            rep.equal(default, str(want).lower(), f"{name} default = config.toml [detector] {key}")
            rep.equal(sorted(params[name].get("AllowedValues", [])), ["false", "true"],
                      f"{name} allows only true/false")
        else:
            rep.equal(int(default), want, f"{name} default = config.toml [detector] {key}")
    rep.equal([params[n].get("Default") for n in ("DetectorCodeKey", "DetectorMemoryMiB",
                                                   "DetectorBatchSize",
                                                   "DetectorBatchWindowSeconds")],
              ["", 512, 1000, 1], "DetectorCodeKey '' (no function), 512 MiB, 1000 records, 1 s")
    pattern = params["DetectorCodeKey"]["AllowedPattern"]
    good = ["", "artifacts/detector/" + "0a" * 32 + ".zip"]
    bad = ["artifacts/detector/x.zip", "artifacts/detector/" + "0A" * 32 + ".zip",
           "detector-state/" + "0a" * 32 + ".zip", "artifacts/detector/" + "0a" * 32 + ".zipx"]
    rep.check(all(re.fullmatch(pattern, k) for k in good)
              and not any(re.fullmatch(pattern, k) for k in bad),
              "DetectorCodeKey accepts '' and artifacts/detector/<sha256>.zip only")
    groups = {g["Label"]["default"]: g["Parameters"] for g in
              tpl["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]}
    detector_params = sorted(n for n in params if n.startswith("Detector")
                             or n == "SnapshotIntervalSeconds")
    rep.equal(sorted(groups.get("Detector", [])), detector_params,
              "the Detector parameter group lists every detector parameter")

    # Conditions, and which resources and outputs each one keeps.
    rep.equal({k: tpl["Conditions"].get(k) for k in DETECTOR_CONDITIONS}, DETECTOR_CONDITIONS,
              "conditions HasDetector, StreamDetector, FirehoseDetector")
    got = {k: (res if "@" not in k else tpl["Outputs"]).get(k.split("@")[0], {}).get("Condition")
           for k in DETECTOR_RESOURCES}
    rep.equal(got, DETECTOR_RESOURCES, "each detector resource and output has its condition")

    # The function and its environment.
    fn = res["DetectorFunction"]["Properties"]
    rep.equal((fn["Runtime"], fn["Handler"], fn["Architectures"], fn["MemorySize"],
               fn["Timeout"], fn["Code"]),
              ("provided.al2023", "bootstrap", ["arm64"], {"Ref": "DetectorMemoryMiB"}, 60,
               {"S3Bucket": {"Ref": "LakeBucket"}, "S3Key": {"Ref": "DetectorCodeKey"}}),
              "detector function: provided.al2023, bootstrap, arm64, code from DetectorCodeKey")
    env = fn["Environment"]["Variables"]
    rep.equal(sorted(set(DETECTOR_ENV) - set(env)), [],
              "detector function: every environment variable it reads is set")
    rep.equal(env, DETECTOR_ENV, "detector function: environment = the parameters, exactly")
    rep.equal(tpl["Outputs"]["DetectorStatePrefix"]["Value"], env["STATE_PREFIX"],
              "output DetectorStatePrefix = the function's STATE_PREFIX")
    rep.equal(res["DetectorFunction"].get("DependsOn"), "DetectorLogGroup",
              "detector function waits for its log group (so Lambda does not make one)")
    logs = res["DetectorLogGroup"]
    rep.equal((logs["Properties"]["LogGroupName"], logs["Properties"]["RetentionInDays"],
               logs.get("DeletionPolicy")),
              ({"Fn::Sub": "/aws/lambda/${AWS::StackName}-detector"}, 14, "Delete"),
              "detector log group: /aws/lambda/<stack>-detector, 14 days, deleted with the stack")

    # The role: exactly the least-privilege statements.
    role = res["DetectorRole"]["Properties"]
    rep.check("RoleName" not in role and "ManagedPolicyArns" not in role,
              "detector role: generated name, no managed policies")
    rep.equal(role["AssumeRolePolicyDocument"]["Statement"],
              [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}], "detector role: only Lambda assumes it")
    stmts = template_statements(res["DetectorRole"])
    got = {st.get("Sid"): (cond, sorted(as_list(st["Action"])), as_list(st["Resource"]),
                           st.get("Condition")) for cond, st in stmts}
    rep.check(len(got) == len(stmts) and all(st["Effect"] == "Allow" for _, st in stmts),
              "detector role: Allow statements with distinct Sids")
    rep.equal(got, DETECTOR_STATEMENTS, "detector role: exactly the least-privilege statements")
    wild_actions = [a for _, st in stmts for a in as_list(st["Action"]) if "*" in a]
    wild_res = sorted({json.dumps(r) for _, st in stmts for r in as_list(st["Resource"])
                       if "*" in json.dumps(r)})
    rep.check(not wild_actions and wild_res == sorted(
        json.dumps(r) for r in (DETECTOR_STATEMENTS["ModelState"][2][0], DETECTOR_LOG_ARN)),
        "detector role: no * action; * only in detector-state/* and its log group's streams",
        f"actions {wild_actions}, resources {wild_res}")

    # The mapping from the readings stream (Ingest=kinesis) and its failure queue.
    rep.equal(res["DetectorTrigger"]["Properties"], DETECTOR_TRIGGER,
              "detector mapping: LATEST, batch/window parameters, 1 batch per shard, bisect, "
              "10 retries, 1 day, ReportBatchItemFailures, failures to the queue")
    queue = res["DetectorFailureQueue"]["Properties"]
    rep.equal((queue.get("SqsManagedSseEnabled"), queue.get("MessageRetentionPeriod")),
              (True, 1209600), "failure queue: SSE-SQS, 14 days")

    # Ingest=firehose: Firehose calls the function as its record processor.
    dest = res["DeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    rep.equal(dest.get("ProcessingConfiguration"),
              {"Fn::If": ["FirehoseDetector", DETECTOR_PROCESSING, NO_VALUE]},
              "Firehose processor = the detector function, only with FirehoseDetector")
    invoke = [(cond, st) for cond, st in template_statements(res["DeliveryRole"])
              if "lambda" in json.dumps(st)]
    rep.equal(invoke, [("FirehoseDetector", {
        "Sid": "InvokeDetector", "Effect": "Allow",
        "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
        "Resource": {"Fn::GetAtt": ["DetectorFunction", "Arn"]}})],
        "delivery role may invoke the detector function (only with FirehoseDetector)")

    # The bucket keeps the function's code and the model.
    hit = []
    for variant in ({}, {"LakeExpirationDays": 1}):
        rules = evaluate(res["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"],
                         template_env(tpl, variant), conditions_for(tpl, variant))
        expiring = [r for r in rules if any(k.startswith(("Expiration", "NoncurrentVersion"))
                                            for k in r)]
        hit += [r for r in expiring if any(
            key.startswith(r.get("Prefix", r.get("Filter", {}).get("Prefix", "")))
            for key in ("artifacts/detector/x.zip", STATE_PREFIX + "x"))]
    rep.check(not hit, "no lifecycle rule expires artifacts/ or detector-state/", f"{hit}")


# ----------------------------------------------------------------------------- issue 13 (static)

DROPPED = object()  # what AWS::NoValue leaves


def conditions_for(tpl, params):
    """Every condition of the template, evaluated for these parameters (over the defaults)."""
    eff = {k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()}
    eff.update({k: str(v) for k, v in params.items()})
    done = {}

    def value(x):
        return eff[x["Ref"]] if isinstance(x, dict) and "Ref" in x else str(x)

    def ev(c):
        (fn, arg), = c.items()
        if fn == "Condition":
            return named(arg)
        if fn == "Fn::Equals":
            return value(arg[0]) == value(arg[1])
        if fn == "Fn::Not":
            return not ev(arg[0])
        if fn == "Fn::And":
            return all(ev(x) for x in arg)
        if fn == "Fn::Or":
            return any(ev(x) for x in arg)
        raise ValueError(f"condition function {fn}")

    def named(name):
        if name not in done:
            done[name] = ev(tpl["Conditions"][name])
        return done[name]

    for name in tpl["Conditions"]:
        named(name)
    return done


def template_env(tpl, params, stack="s"):
    """Names a template value may refer to, as text: parameters (defaults overridden by params),
    pseudo parameters, and the bucket as <bucket> (the .sql placeholder)."""
    env = {k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()}
    env.update({k: str(v) for k, v in params.items()})
    env.update({"AWS::StackName": stack, "AWS::Partition": "aws", "AWS::Region": REGION,
                "AWS::AccountId": "123456789012", "LakeBucket": "<bucket>",
                "LakeBucket.Arn": "arn:aws:s3:::<bucket>"})
    return env


def evaluate(value, env, conds):
    """A template value with env's names substituted and every !If decided; what AWS::NoValue
    drops is dropped. Whatever cannot be resolved is left as it is."""
    if isinstance(value, list):
        return [v for v in (evaluate(x, env, conds) for x in value) if v is not DROPPED]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return DROPPED if arg == "AWS::NoValue" else env.get(arg, value)
        if fn == "Fn::If":
            return evaluate(arg[1] if conds[arg[0]] else arg[2], env, conds)
        if fn == "Fn::GetAtt":
            return env.get(".".join(arg), value)
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else arg
            local = {k: evaluate(v, env, conds) for k, v in local.items()}

            def one(m):
                name = m.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                got = local.get(name, env.get(name))
                return got if isinstance(got, str) else m.group(0)
            return re.sub(r"\$\{([^}]+)\}", one, text)
        if fn == "Fn::Join":
            parts = evaluate(arg[1], env, conds)
            if all(isinstance(x, str) for x in parts):
                return arg[0].join(parts)
    out = {k: evaluate(v, env, conds) for k, v in value.items()}
    return {k: v for k, v in out.items() if v is not DROPPED}


def at_path(props, path):
    """The value at a/b/c in a resource's properties (None if absent). An !If met on the way is
    returned whole: whatever it depends on, the value does."""
    value = props
    for key in path.split("/"):
        if isinstance(value, dict) and "Fn::If" in value:
            return value
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


class Dependencies:
    """Which parameters a template value changes with: through Ref and !Sub, the conditions of
    its !If, and the identity (name and replacement properties) of the resources it refers to,
    since replacing a resource changes its name or ARN."""

    def __init__(self, tpl):
        self.tpl = tpl
        self.res = tpl["Resources"]
        self.params = set(tpl["Parameters"])
        self.memo = {}

    def of(self, value):
        if isinstance(value, list):
            return set().union(*(self.of(x) for x in value)) if value else set()
        if isinstance(value, str) or not isinstance(value, dict):
            return set()
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.name(arg)
            if fn == "Fn::GetAtt":
                return self.identity(arg[0])
            if fn == "Condition":
                return self.of(self.tpl["Conditions"][arg])
            if fn == "Fn::If":
                return self.of(self.tpl["Conditions"][arg[0]]) | self.of(arg[1:])
            if fn == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else arg
                got = self.of(list(local.values()))
                for ref in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    got |= self.of(local[ref]) if ref in local else self.name(ref.split(".")[0])
                return got
        return self.of(list(value.values()))

    def name(self, ref):
        if ref in self.params:
            return {ref}
        return self.identity(ref) if ref in self.res else set()

    def identity(self, lid):
        if lid not in self.memo:
            self.memo[lid] = set()  # a cycle adds nothing
            r = self.res[lid]
            names, replaced = REPLACEMENT.get(r["Type"], ([], []))
            props = r.get("Properties", {})
            self.memo[lid] = self.of([at_path(props, p) for p in names + replaced])
        return self.memo[lid]


def replacement_faults(tpl):
    """For each custom-named resource, its replacement properties that depend on a parameter its
    name does not depend on: changing that parameter means replacing the resource under the same
    name, which CloudFormation cannot do (the update fails and rolls back)."""
    deps = Dependencies(tpl)
    faults, renamed = [], {}
    for lid, r in tpl["Resources"].items():
        names, replaced = REPLACEMENT.get(r["Type"], ([], []))
        props = r.get("Properties", {})
        present = [p for p in names if at_path(props, p) is not None]
        if not present:
            continue
        by_name = deps.of([at_path(props, p) for p in present])
        if by_name:
            renamed[lid] = sorted(by_name)
        for path in replaced:
            value = at_path(props, path)
            extra = deps.of(value) - by_name if value is not None else set()
            if extra:
                faults.append(f"{lid}.{path} changes with {sorted(extra)}, its name does not")
    return faults, renamed


_SCHEMAS = {}


def registry_schema(rtype):
    """AWS's CloudFormation registry schema of a resource type, as cfn-lint ships it, or None."""
    if rtype not in _SCHEMAS:
        try:
            import cfnlint
            root = Path(cfnlint.__file__).parent / "data" / "schemas"
            ids = json.loads((root / "providers" / "us-east-1.json").read_text())
            _SCHEMAS[rtype] = json.loads((root / "resources" / f"{ids[rtype]}.json").read_text())
        except (ImportError, OSError, KeyError, ValueError):
            _SCHEMAS[rtype] = None
    return _SCHEMAS[rtype]


def unwrap_if(items):
    """(condition or None, item) for a list whose items may be !If [cond, item, AWS::NoValue]."""
    return [(x["Fn::If"][0], x["Fn::If"][1]) if isinstance(x, dict) and "Fn::If" in x
            and x["Fn::If"][2] == NO_VALUE else (None, x) for x in items]


def iam_allows(patterns, action):
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in as_list(patterns))


def aws_static_checks(tpl, rep, path=TEMPLATE):
    """Issue 13: updates CloudFormation can do, cost guards, alarms, failure destinations, the
    lake's lifecycle, tags, least privilege and encryption."""
    section("template: safe to run on AWS (static checks, issue 13)")
    res = tpl["Resources"]
    params = tpl["Parameters"]
    outs = tpl["Outputs"]
    size = path.stat().st_size
    rep.check(size <= TEMPLATE_BODY_LIMIT, f"template is {size} bytes, within CloudFormation's "
              f"TemplateBody limit of {TEMPLATE_BODY_LIMIT} (the app sends the body)")

    # 1. Every parameter change is an update CloudFormation can do.
    types = sorted({r["Type"] for r in res.values()})
    rep.equal([t for t in types if t not in REPLACEMENT], [],
              "every resource type has its replacement properties in REPLACEMENT")
    missing = {}
    for t in types:
        schema = registry_schema(t)
        if schema is None:
            print(f"  note  no registry schema for {t} (cfn-lint not importable?): not compared")
            continue
        create_only = [p.removeprefix("/properties/") for p in
                       schema.get("createOnlyProperties", [])]
        gap = [p for p in create_only if p not in REPLACEMENT.get(t, ([], []))[1]]
        if gap:
            missing[t] = gap
    rep.equal(missing, {}, "REPLACEMENT includes every createOnly property of AWS's registry "
              "schemas (cfn-lint's copy)")
    faults, renamed = replacement_faults(tpl)
    rep.equal(faults, [], "no named resource must be replaced under the same name when a "
              "parameter changes (its replacement properties depend only on parameters its name "
              "depends on); renamed with a parameter: " + ", ".join(
                  f"{k} ({'/'.join(v)})" for k, v in sorted(renamed.items())))
    old = copy.deepcopy(tpl)
    old["Resources"]["DeliveryStream"]["Properties"]["DeliveryStreamName"] = {
        "Fn::Sub": "${AWS::StackName}-devicedata"}
    old_faults, _ = replacement_faults(old)
    rep.check(any(f.startswith("DeliveryStream.DeliveryStreamType changes with ['Ingest']")
                  for f in old_faults),
              "the check finds the fault it was written for (a fixed Firehose name with "
              "DeliveryStreamType on Ingest)", f"{old_faults}")
    iam_named = [lid for lid, r in res.items() if r["Type"].startswith("AWS::IAM::") and any(
        k in r.get("Properties", {}) for k in ("RoleName", "ManagedPolicyName", "UserName",
                                               "GroupName", "InstanceProfileName"))]
    rep.equal(iam_named, [], "no IAM resource is named (CAPABILITY_IAM is enough, no NAMED_IAM)")
    long = []
    for variant in ({}, {"Ingest": "firehose", "DetectorCodeKey": "x"}):
        env = template_env(tpl, variant, stack="s" * STACK_NAME_MAX)
        conds = conditions_for(tpl, variant)
        for lid, r in res.items():
            limit = NAME_LIMITS.get(r["Type"])
            names, _ = REPLACEMENT.get(r["Type"], ([], []))
            for path in names if limit else []:
                name = evaluate(at_path(r.get("Properties", {}), path), env, conds)
                if isinstance(name, str) and len(name) > limit:
                    long.append(f"{lid} {name!r} ({len(name)} > {limit})")
    rep.equal(long, [], f"every name fits its limit with a {STACK_NAME_MAX}-character stack name")

    # 2. Athena's per-query scan limit.
    p = params.get("BytesScannedCutoffPerQuery", {})
    rep.equal((p.get("Type"), p.get("Default"), p.get("MinValue")),
              ("Number", 10737418240, 10000000),
              "BytesScannedCutoffPerQuery: Number, default 10 GiB, at least Athena's 10 MB")
    wg = res["QueryWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    rep.equal((wg.get("BytesScannedCutoffPerQuery"),
               outs.get("AthenaBytesScannedCutoff", {}).get("Value")),
              ({"Ref": "BytesScannedCutoffPerQuery"},) * 2,
              "the workgroup's cutoff and output AthenaBytesScannedCutoff are the parameter")

    # 3. Alarms to the alert topic.
    alarms = {lid: r for lid, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    rep.equal(sorted(alarms), sorted(ALARMS), "alarms: readings (or detector) iterator age, "
              "Firehose data freshness, alert function errors and iterator age")
    wrong = []
    for lid, (cond, ns, metric, dim, dim_value) in ALARMS.items():
        a = alarms.get(lid, {})
        ap = a.get("Properties", {})
        if dim_value == "DeliveryStream.DeliveryStreamName":
            dim_value = res["DeliveryStream"]["Properties"]["DeliveryStreamName"]
        got = (a.get("Condition"), ap.get("Namespace"), ap.get("MetricName"),
               ap.get("Dimensions"), ap.get("AlarmActions"), ap.get("TreatMissingData"),
               str(ap.get("AlarmName", {}).get("Fn::Sub", "")).startswith("${AWS::StackName}-"))
        want = (cond, ns, metric, [{"Name": dim, "Value": dim_value}], [{"Ref": "AlertTopic"}],
                "notBreaching", True)
        if got != want:
            wrong.append(f"{lid}: {got} != {want}")
    rep.equal(wrong, [], "each alarm: its metric and dimension, to the alert topic, missing "
              "data not breaching, named <stack>-…")
    topic = res["AlertTopic"]["Properties"]
    policy = res.get("AlertTopicPolicy", {}).get("Properties", {})
    stmts = policy.get("PolicyDocument", {}).get("Statement", [])
    cw = [st for st in stmts if st.get("Effect") == "Allow" and st.get("Principal") == {
        "Service": "cloudwatch.amazonaws.com"} and st.get("Action") == "sns:Publish"]
    source = cw[0].get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn") if cw else None
    names_ok = []
    for variant in ({}, {"DetectorCodeKey": "x"}, {"DetectorCodeKey": "x", "Ingest": "firehose"}):
        env, conds = template_env(tpl, variant), conditions_for(tpl, variant)
        names = [evaluate(r["Properties"]["AlarmName"], env, conds) for r in alarms.values()
                 if conds.get(r.get("Condition"), True)]
        listed = evaluate(outs.get("AlarmNames", {}).get("Value"), env, conds)
        pattern = evaluate(source, env, conds) if source else ""
        names_ok.append(isinstance(listed, str) and sorted(listed.split(",")) == sorted(names)
                        and all(fnmatch.fnmatchcase(f"arn:aws:cloudwatch:{REGION}:123456789012"
                                                    f":alarm:{n}", pattern) for n in names))
    rep.check(all(names_ok) and len(names_ok) == 3, "output AlarmNames lists exactly the alarms "
              "the stack has (with and without the detector, either Ingest), and the topic "
              "policy lets CloudWatch publish for each of them (aws:SourceArn)", f"{names_ok}")
    key_ref = topic.get("KmsMasterKeyId")
    key = res.get(key_ref.get("Ref", ""), {}) if isinstance(key_ref, dict) else {}
    key_stmts = key.get("Properties", {}).get("KeyPolicy", {}).get("Statement", [])
    rep.check(key.get("Type") == "AWS::KMS::Key" and any(
        st.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and st["Effect"] == "Allow"
        and sorted(as_list(st["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
        for st in key_stmts), "the topic is encrypted with its own customer-managed key, which "
        "CloudWatch may use to publish (the AWS-managed alias/aws/sns would not let it)")
    rep.check(policy.get("Topics") == [{"Ref": "AlertTopic"}] and any(
        st.get("Effect") == "Deny" and st.get("Principal") == "*" and st.get("Action") ==
        "sns:Publish" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for st in stmts), "topic policy denies publishing without TLS (aws:SecureTransport)")

    # 4. The alert function's failure destination and its role.
    q = res.get("AlertFailureQueue", {}).get("Properties", {})
    rep.equal((q.get("QueueName"), q.get("SqsManagedSseEnabled"), q.get("MessageRetentionPeriod"),
               res["AlertTrigger"]["Properties"].get("DestinationConfig"),
               outs.get("AlertFailureQueueUrl", {}).get("Value")),
              ({"Fn::Sub": "${AWS::StackName}-alert-failures"}, True, 1209600,
               {"OnFailure": {"Destination": {"Fn::GetAtt": ["AlertFailureQueue", "Arn"]}}},
               {"Ref": "AlertFailureQueue"}),
              "alert mapping's on-failure destination: queue <stack>-alert-failures, SSE-SQS, "
              "14 days, output AlertFailureQueueUrl")
    alert = {st.get("Sid"): st for _, st in template_statements(res["AlertFunctionRole"])}
    got = {sid: (sorted(as_list(alert.get(sid, {}).get("Action", []))),
                 alert.get(sid, {}).get("Resource")) for sid in
           ("ReadAnomalyStream", "PublishAlerts", "EncryptAlerts", "RecordFailedAlerts")}
    rep.equal(got, {
        "ReadAnomalyStream": (sorted(LAMBDA_KINESIS_ACTIONS),
                              {"Fn::GetAtt": ["AnomalyStream", "Arn"]}),
        "PublishAlerts": (["sns:Publish"], {"Ref": "AlertTopic"}),
        "EncryptAlerts": (["kms:Decrypt", "kms:GenerateDataKey"],
                          {"Fn::GetAtt": ["AlertTopicKey", "Arn"]}),
        "RecordFailedAlerts": (["sqs:SendMessage"], {"Fn::GetAtt": ["AlertFailureQueue", "Arn"]})},
        "alert role: Lambda's documented Kinesis actions on the anomaly stream, publish (with "
        "the topic's key), send to its failure queue; each scoped to that resource")
    detector = {st.get("Sid"): st for _, st in template_statements(res["DetectorRole"])}
    rep.check(set(LAMBDA_KINESIS_ACTIONS) <= set(as_list(detector.get(
        "ReadReadingsStream", {}).get("Action", []))),
        "detector role: Lambda's documented Kinesis actions on the readings stream")

    # 5. The lake: optional expiry that never touches the stack's own keys; tags.
    p = params.get("LakeExpirationDays", {})
    rep.equal((p.get("Type"), p.get("Default"), p.get("MinValue")), ("Number", 0, 0),
              "LakeExpirationDays: Number, default 0 (never)")
    pattern = params["Prefix"]["AllowedPattern"]
    good, bad = ["", "lake/", "a/b/"], ["athena-results/", "artifacts/", "detector-state/",
                                        "artifacts/x/", "lake"]
    rep.check(all(re.fullmatch(pattern, x) for x in good)
              and not any(re.fullmatch(pattern, x) for x in bad),
              "Prefix may not be one of the stack's own prefixes")
    faults = []
    for prefix in ("", "lake/"):
        for days in (0, 30):
            variant = {"Prefix": prefix, "LakeExpirationDays": days}
            env, conds = template_env(tpl, variant), conditions_for(tpl, variant)
            rules = evaluate(res["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"],
                             env, conds)
            lake_key = f"{prefix}2026/11/30/05/s-devicedata-1-2026-11-30-05-00-00-ab.gz"
            expiring = [r for r in rules if any(k.startswith(("Expiration", "Noncurrent"))
                                                for k in r)]

            def gone(key, rules=expiring):
                return [r.get("Id") for r in rules if key.startswith(
                    r.get("Prefix", r.get("Filter", {}).get("Prefix", "")))]
            own = {k: gone(k) for k in OWN_KEYS}
            if own != {OWN_KEYS[0]: ["expire-athena-results"], OWN_KEYS[1]: [], OWN_KEYS[2]: []}:
                faults.append(f"{variant}: own keys expired by {own}")
            lake = [r for r in expiring if r.get("Id") in gone(lake_key)]
            if [str(r.get("ExpirationInDays")) for r in lake] != ([str(days)] if days else []):
                faults.append(f"{variant}: lake key expired by {lake}")
    rep.equal(faults, [], "lifecycle: with LakeExpirationDays N the lake (and only the lake) "
              "expires after N days, with 0 never; athena-results/ after 7 days; artifacts/ and "
              "detector-state/ never (Prefix '' and lake/)")
    untagged, unknown = [], []
    for lid, r in res.items():
        schema = registry_schema(r["Type"])
        if schema is None:
            unknown.append(r["Type"])
        elif r["Type"] == "AWS::KMS::Key":
            # Tagged through the stack's own tags (iotaa deploy passes iotaa:stack, which
            # CloudFormation propagates): moto's CloudFormation fails on a KMS key's Tags.
            continue
        elif "Tags" in schema.get("properties", {}) and TAG not in r.get("Properties", {}).get(
                "Tags", []):
            untagged.append(lid)
    rep.equal(untagged, [], "every resource whose type takes Tags has iotaa:stack=<stack name>"
              + (f" (types without a schema: {sorted(set(unknown))})" if unknown else ""))

    # 6. Firehose writes only the lake and its error prefix; DirectPut is encrypted.
    faults = []
    stream = res["DeliveryStream"]["Properties"]
    for prefix in ("", "lake/"):
        env, conds = template_env(tpl, {"Prefix": prefix}), conditions_for(tpl, {"Prefix": prefix})
        objects = [r.removeprefix("arn:aws:s3:::<bucket>/") for _, st in
                   template_statements(res["DeliveryRole"]) if st["Effect"] == "Allow"
                   for r in as_list(evaluate(st["Resource"], env, conds))
                   if isinstance(r, str) and r.startswith("arn:aws:s3:::<bucket>/")]
        errors = evaluate(stream["ExtendedS3DestinationConfiguration"].get("ErrorOutputPrefix"),
                          env, conds)
        wanted = [f"{prefix}2026/11/30/05/s-devicedata-1-2026-11-30-05-00-00-ab.gz",
                  f"{prefix}2026/11/30/05/s-devicedata-1-2026-11-30-05-00-00-ab.parquet"] + [
                  f"{errors}{kind}/2026/11/30/05/x" if isinstance(errors, str)
                  else "(no ErrorOutputPrefix)"
                  for kind in ("processing-failed", "format-conversion-failed")]
        for key in wanted:
            if not any(fnmatch.fnmatchcase(key, o) for o in objects):
                faults.append(f"Prefix {prefix!r}: {key} not writable ({objects})")
        for key in OWN_KEYS:
            if any(fnmatch.fnmatchcase(key, o) for o in objects):
                faults.append(f"Prefix {prefix!r}: {key} writable ({objects})")
    rep.equal(faults, [], "Firehose's role writes the lake's keys (.gz, .parquet) and its error "
              "prefix (processing and format conversion failures), and none of athena-results/, "
              "artifacts/, detector-state/ (Prefix '' and lake/)")
    rep.equal(stream.get("DeliveryStreamEncryptionConfigurationInput"),
              {"Fn::If": ["DirectPut", {"KeyType": "AWS_OWNED_CMK"}, NO_VALUE]},
              "the DirectPut Firehose stream is encrypted (AWS_OWNED_CMK), only DirectPut")


# ----------------------------------------------------------------------------- issue 14 (static)

# The table's storage per LakeFormat: InputFormat, OutputFormat, SerDe (and its properties),
# classification. json is the table of queries/devicedata.sql.
TABLE_STORAGE = {
    "json": ("org.apache.hadoop.mapred.TextInputFormat",
             "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
             {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
              "Parameters": {"ignore.malformed.json": "true"}}, "json"),
    "parquet": ("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde."
                                         "ParquetHiveSerDe"}, "parquet"),
}
DELIVERY_ROLE_ARN = "arn:aws:iam::123456789012:role/s-DeliveryRole-X"
# Firehose's record format conversion with LakeFormat=parquet (Firehose developer guide, "Convert
# input data format"): the OpenX JSON SerDe reads the records (keys lower-cased, as the table's
# SerDe does; it parses `yyyy-[M]M-[d]d HH:mm:ss[.S]`, our readingTimestamp), Snappy Parquet out,
# the schema from the stack's own Glue table, read with the delivery role. <db> is DatabaseName.
CONVERSION = {
    "Enabled": True,
    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"CaseInsensitive": True}}},
    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
    "SchemaConfiguration": {"CatalogId": "123456789012", "DatabaseName": "<db>",
                            "TableName": "devicedata", "Region": REGION,
                            "RoleARN": DELIVERY_ROLE_ARN, "VersionId": "LATEST"}}
# What conversion needs of Glue (the developer guide's policy for an S3 destination), on the
# catalog, the database and the table only.
GLUE_READ = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
PARQUET_MIN_BUFFER_MIB = 64  # Firehose refuses less with conversion (InvalidArgumentException)


def lake_format_checks(tpl, rep):
    """Issue 14: LakeFormat=parquet turns on Firehose's record format conversion with the Glue
    table's schema and declares the table Parquet; LakeFormat=json leaves both as before."""
    section("template: LakeFormat json | parquet (static checks, issue 14)")
    res = tpl["Resources"]
    p = tpl["Parameters"].get("LakeFormat", {})
    rep.equal((p.get("Type"), p.get("Default"), p.get("AllowedValues")),
              ("String", "json", ["json", "parquet"]), "LakeFormat: json (default) or parquet")
    groups = {g["Label"]["default"]: g["Parameters"] for g in
              tpl["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]}
    rep.check("LakeFormat" in groups.get("Delivery to the lake", []),
              "LakeFormat is in the 'Delivery to the lake' parameter group")
    rep.equal(tpl["Outputs"].get("LakeFormat", {}).get("Value"), {"Ref": "LakeFormat"},
              "output LakeFormat = the parameter")
    rep.check("| `LakeFormat` |" in README.read_text(), "infra/README.md lists LakeFormat")
    deps = Dependencies(tpl)
    rep.equal([lid for lid in ("DeliveryStream", "LakeTable", "LakeDatabase")
               if "LakeFormat" in deps.identity(lid)], [],
              "a LakeFormat switch replaces nothing (no name or replacement property of the "
              "Firehose stream, table or database depends on it): both update in place")

    ddl = parse_ddl(TABLE_DDL.read_text())
    conv, table, role = [], [], []
    base_table = None
    for fmt in ("json", "parquet"):
        for db, size, comp in (("analyticsdemo", 1, "GZIP"), ("otherdb", 128, "UNCOMPRESSED")):
            variant = {"LakeFormat": fmt, "DatabaseName": db, "BufferSizeMiB": size,
                       "Compression": comp}
            env, conds = template_env(tpl, variant), conditions_for(tpl, variant)
            env.update({"LakeDatabase": db, "LakeTable": "devicedata",
                        "DeliveryRole.Arn": DELIVERY_ROLE_ARN})
            tag = f"{fmt}/{db}/{size} MiB/{comp}"
            dest = evaluate(res["DeliveryStream"]["Properties"][
                "ExtendedS3DestinationConfiguration"], env, conds)
            want_conv = {"Enabled": False}
            if fmt == "parquet":
                want_conv = copy.deepcopy(CONVERSION)
                want_conv["SchemaConfiguration"]["DatabaseName"] = db
            got = (dest.get("DataFormatConversionConfiguration"), dest.get("CompressionFormat"),
                   str(dest.get("BufferingHints", {}).get("SizeInMBs")),
                   dest.get("FileExtension", "(default)"))
            want = (want_conv, "UNCOMPRESSED" if fmt == "parquet" else comp,
                    str(PARQUET_MIN_BUFFER_MIB if fmt == "parquet" else size), "(default)")
            if got != want:
                conv.append(f"{tag}: {got} != {want}")

            ti = evaluate(res["LakeTable"]["Properties"]["TableInput"], env, conds)
            sd = ti["StorageDescriptor"]
            got = (sd.get("InputFormat"), sd.get("OutputFormat"), sd.get("SerdeInfo"),
                   ti["Parameters"].get("classification"))
            if got != TABLE_STORAGE[fmt]:
                table.append(f"{tag}: {got} != {TABLE_STORAGE[fmt]}")
            rest = ([(c["Name"], c["Type"]) for c in sd["Columns"]],
                    [(c["Name"], c["Type"]) for c in ti["PartitionKeys"]], sd.get("Location"),
                    {k: v for k, v in ti["Parameters"].items() if k != "classification"})
            if (fmt, size) == ("json", 1):
                base_table = rest
            elif size == 1 and rest != base_table:
                table.append(f"{tag}: columns, partitions, location or projection differ from "
                             f"json's: {rest} != {base_table}")
            if rest[0] != ddl["columns"]:
                table.append(f"{tag}: columns {rest[0]} != devicedata.sql's {ddl['columns']}")

            glue = [evaluate(st, env, conds) for _, st in template_statements(res["DeliveryRole"])
                    if any(a.startswith("glue:") for a in as_list(st["Action"]))]
            arn = f"arn:aws:glue:{REGION}:123456789012:"
            want = [{"Sid": "ReadSchema", "Effect": "Allow", "Action": GLUE_READ, "Resource": [
                arn + "catalog", arn + f"database/{db}", arn + f"table/{db}/devicedata"]}]
            if glue != want:
                role.append(f"{tag}: {glue} != {want}")
    rep.equal(conv, [], "Firehose: parquet converts with the OpenX JSON SerDe (case-insensitive "
              "keys) to Snappy Parquet with the stack's table as schema (its database, "
              "devicedata, LATEST, the delivery role), UNCOMPRESSED, 64 MiB whatever "
              "BufferSizeMiB; json: conversion Enabled false (an update merges, so it must say "
              "so), Compression and BufferSizeMiB as given; no FileExtension (Firehose's "
              "defaults: .parquet, .gz)")
    rep.equal(table, [], "Glue table: parquet has the Parquet input/output formats, "
              "ParquetHiveSerDe and classification parquet, json the OpenX JSON SerDe of "
              "devicedata.sql; the same columns, partition key, location and projection")
    rep.equal(role, [], "delivery role: glue:GetTable, GetTableVersion, GetTableVersions on "
              "the catalog, the database and devicedata only (with json too, so a switch back "
              "never leaves a converting stream without it)")


def policy_file_checks(tpl, rep):
    """Issue 13: the IAM policies a person needs to run the dashboard, and to deploy."""
    section("infra/operator-policy.json, infra/deploy-policy.json (static checks)")
    readme = README.read_text()
    documented = PSEUDO_PLACEHOLDERS + OUTPUT_PLACEHOLDERS
    rep.equal([k for k in OUTPUT_PLACEHOLDERS if k not in tpl["Outputs"]], [],
              "every output placeholder names an output of the template")
    docs = {}
    for path in (OPERATOR_POLICY, DEPLOY_POLICY):
        try:
            text = path.read_text()
            doc = json.loads(text)
        except (OSError, ValueError) as e:
            rep.check(False, f"{path.name} is JSON", str(e))
            continue
        docs[path] = doc
        stmts = doc.get("Statement") if isinstance(doc, dict) else None
        ok = doc.get("Version") == "2012-10-17" and isinstance(stmts, list) and stmts and all(
            isinstance(st, dict) and st.get("Effect") in ("Allow", "Deny") and st.get("Action")
            and st.get("Resource") for st in stmts)
        rep.check(ok, f"{path.name}: an IAM policy (Version 2012-10-17, each statement with "
                  "Effect, Action and Resource)")
        if not ok:
            continue
        sids = [st.get("Sid") for st in stmts]
        rep.check(all(sids) and len(set(sids)) == len(sids), f"{path.name}: distinct Sids")
        actions = [a for st in stmts for a in as_list(st["Action"])]
        rep.equal([a for a in actions if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z*]+", a)], [],
                  f"{path.name}: every action is service:Action (no bare *)")
        used = sorted(set(re.findall(r"\$\{([^}]*)\}", text)))
        rep.equal([u for u in used if u not in documented], [],
                  f"{path.name}: only the documented placeholders ({', '.join(used)})")
    rep.equal([k for k in documented if f"${{{k}}}" not in readme], [],
              "infra/README.md documents every placeholder")

    doc = docs.get(OPERATOR_POLICY)
    if doc:
        allow = [st for st in doc["Statement"] if st["Effect"] == "Allow"]
        rep.equal([a for a in APP_CALLS if not any(iam_allows(st["Action"], a) for st in allow)],
                  [], "operator policy allows every SDK call the app makes")
        rep.equal([a for st in allow for a in as_list(st["Action"]) if a.endswith(":*")], [],
                  "operator policy: no service:* action")
        writes = [r for st in allow if any(iam_allows(st["Action"], a) for a in (
            "s3:PutObject", "s3:DeleteObject")) for r in as_list(st["Resource"])]
        rep.check(writes and all(r.endswith("/athena-results/*") for r in writes),
                  "operator policy writes objects only under athena-results/", f"{writes}")
    doc = docs.get(DEPLOY_POLICY)
    if doc:
        allow = [st for st in doc["Statement"] if st["Effect"] == "Allow"]
        needed = ["cloudformation:CreateStack", "cloudformation:UpdateStack",
                  "cloudformation:DeleteStack", "iam:CreateRole", "iam:PutRolePolicy",
                  "iam:DeleteRole", "iam:PassRole", "kinesis:CreateStream", "firehose:"
                  "CreateDeliveryStream", "s3:CreateBucket", "s3:PutObject", "s3:DeleteObject",
                  "lambda:CreateFunction", "lambda:CreateEventSourceMapping", "sqs:CreateQueue",
                  "sns:CreateTopic", "glue:CreateTable", "athena:CreateWorkGroup",
                  "logs:CreateLogGroup", "cloudwatch:PutMetricAlarm", "kms:CreateKey"]
        rep.equal([a for a in needed if not any(iam_allows(st["Action"], a) for st in allow)], [],
                  "deploy policy allows creating, updating and deleting each kind of resource "
                  "(and emptying the bucket, uploading the detector)")
        passes = [st for st in allow if iam_allows(st["Action"], "iam:PassRole") and
                  "firehose.amazonaws.com" in as_list(st.get("Condition", {}).get(
                      "StringEquals", {}).get("iam:PassedToService", []))]
        rep.check(any(fnmatch.fnmatchcase("arn:${Partition}:iam::${Account}:role/${StackName}-"
                                          "DeliveryRole-AB12", r) for st in passes
                      for r in as_list(st["Resource"])),
                  "deploy policy passes the stack's roles to Firehose (the delivery role, also "
                  "the role of the Parquet conversion's schema)")


def detector_zip():
    """A small zip holding an executable `bootstrap` (moto never runs it) and its key in the
    bucket, artifacts/detector/<sha256 hex of the zip>.zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho 'check_moto placeholder' >&2\nexit 1\n")
    data = buf.getvalue()
    return data, f"artifacts/detector/{hashlib.sha256(data).hexdigest()}.zip"


# ----------------------------------------------------------------------------- moto helpers

def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
              aws_secret_access_key="testing")
    names = ["cloudformation", "kinesis", "s3", "firehose", "glue", "athena", "sns", "sqs",
             "lambda", "iam", "logs", "kms"]
    return types.SimpleNamespace(**{n: boto3.client(n, **kw) for n in names})


def error_code(e):
    return e.response.get("Error", {}).get("Code", "")


def wait_stack(cf, stack_id):
    deadline = time.monotonic() + WAIT_SECS
    while True:
        stack = cf.describe_stacks(StackName=stack_id)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def print_failure(cf, stack_id):
    print("  stack events (newest first):")
    for e in cf.describe_stack_events(StackName=stack_id)["StackEvents"]:
        print(f"    {e['LogicalResourceId']:<22} {e['ResourceStatus']:<18} "
              f"{e.get('ResourceStatusReason', '')}")
    print("  resources:")
    for r in cf.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]:
        print(f"    {r['LogicalResourceId'] or '(no id)':<22} {r['ResourceType']:<38} "
              f"{r['ResourceStatus']} {r.get('ResourceStatusReason', '')}")


def settled(c, rep, stack_id, want):
    """Waits for the stack; checks it reached `want`. Returns it, or None after printing why
    it did not (the stack's reason and each resource's failure)."""
    stack = wait_stack(c.cloudformation, stack_id)
    if rep.equal(stack["StackStatus"], want, f"stack reaches {want}"):
        return stack
    print(f"  reason: {stack.get('StackStatusReason')}")
    print_failure(c.cloudformation, stack_id)
    return None


def outputs_of(stack):
    """A described stack's outputs, key → value."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_conditions(tpl, params):
    """The template's conditions, evaluated for these parameters (over the defaults)."""
    return conditions_for(tpl, params)


def active_resources(tpl, params):
    """Logical id -> type of the resources a stack with these parameters has."""
    conditions = stack_conditions(tpl, params)
    return {lid: r["Type"] for lid, r in tpl["Resources"].items()
            if conditions.get(r.get("Condition"), True)}


def role_statements(c, rep, role, keep_null=False):
    """The statements of an IAM role's inline policies, as moto stored them."""
    stmts = []
    for n in c.iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = c.iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
        if isinstance(doc, str):  # moto keeps a role's inline policy as a Python repr
            try:
                doc = json.loads(doc)
            except ValueError:
                doc = ast.literal_eval(doc)
        stmts += doc["Statement"]
    if None in stmts:
        rep.ignore("AWS::IAM::Role", "!If [cond, statement, AWS::NoValue] in a Statement list "
                   "(moto keeps a null statement where AWS drops it)")
    return stmts if keep_null else [st for st in stmts if st is not None]


def check_role_scoped(c, rep, lid, role):
    """Every Allow of the role names resources, no wildcards, every ARN resolved."""
    stmts = role_statements(c, rep, role)
    wild = [st for st in stmts if st["Effect"] == "Allow" and (
        "*" in json.dumps(st.get("Action")) or st.get("Resource") in ("*", ["*"]))]
    rep.check(stmts and not wild, f"{lid}: inline policy scoped to named resources",
              f"wildcards in {wild}")
    unresolved = [st for st in stmts if "${" in json.dumps(st) or "None" in json.dumps(st)
                  or "AWS::NoValue" in json.dumps(st)]
    rep.check(not unresolved, f"{lid}: every resource ARN resolved", f"{unresolved}")
    return stmts


def filter_matches(pattern, record):
    """Lambda event filtering for the one pattern shape the template uses:
    {"data": {FIELD: [{"numeric": [op, value, ...]}]}}."""
    ops = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
           "=": float.__eq__}
    (field, rules), = pattern["data"].items()
    value = record.get(field)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    for rule in rules:
        numeric = rule["numeric"]
        if all(ops[numeric[i]](float(value), float(numeric[i + 1]))
               for i in range(0, len(numeric), 2)):
            return True
    return False


def scored(device, reading, score, explanation=None):
    rec = {"deviceId": device, "sensorReading": reading,
           "readingTimestamp": "2026-11-30 05:00:01.123", "ANOMALY_SCORE": score}
    if explanation:
        rec["ANOMALY_EXPLANATION"] = explanation
    return rec


def moto_body(tpl, rep):
    """The template as moto takes it: JSON, with long-form intrinsics. (The KMS key has no Tags
    in the template, which moto's CloudFormation fails on; the app tags the stack instead.)"""
    return json.dumps(copy.deepcopy(tpl))


def delivery_name(stack, ingest):
    return f"{stack}-devicedata" + ("-dp" if ingest == "firehose" else "")


def alarm_names(stack, detector_mapping):
    lag = "detector" if detector_mapping else "readings"
    return [f"{stack}-{lag}-iterator-age", f"{stack}-delivery-freshness", f"{stack}-alert-errors",
            f"{stack}-alert-iterator-age"]


# ----------------------------------------------------------------------------- the stack checks

def create_stack(c, body, stack_name, params):
    section(f"stack {stack_name}: create with {params or 'default parameters'}")
    return c.cloudformation.create_stack(
        StackName=stack_name, TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"])["StackId"]


def check_stack(c, tpl, code, rep, stack_id, params, endpoint):
    defaults = {k: v.get("Default", "") for k, v in tpl["Parameters"].items()}
    eff = {**defaults, **params}
    stack = settled(c, rep, stack_id, "CREATE_COMPLETE")
    if stack is None:
        return
    stack_name = stack["StackName"]

    # Outputs.
    out = outputs_of(stack)
    want = [k for k in OUTPUTS if k != "LakePrefix" or eff["Prefix"]]
    rep.check(set(want) <= set(out), "every output the app needs is there",
              f"missing {sorted(set(want) - set(out))}")
    rep.check(all(out.get(k) for k in want), "no output is empty")
    if not eff["DetectorCodeKey"]:
        rep.equal(sorted(set(DETECTOR_OUTPUTS) & set(out)), [],
                  "no detector outputs without DetectorCodeKey")
    if eff["Prefix"]:
        rep.equal(out.get("LakePrefix"), eff["Prefix"], "LakePrefix = the Prefix parameter")
    else:
        rep.check("LakePrefix" not in out, "no LakePrefix output without a prefix")
    s = stack_name
    rep.equal([out.get(k) for k in ("ReadingsStreamName", "AnomalyStreamName",
                                    "DeliveryStreamName", "AthenaWorkGroup",
                                    "AlertFunctionName")],
              [f"{s}-readings", f"{s}-anomalies", delivery_name(s, eff["Ingest"]), f"{s}-queries",
               f"{s}-alert"], "resource names come from the stack name (and Firehose's from "
              "Ingest)")
    bucket = out.get("BucketName", "")
    rep.check(bucket.startswith(s.lower() + "-"), f"bucket name is generated from the stack name "
              f"({bucket})")
    rep.equal(out.get("LakeLocation"), f"s3://{bucket}/{eff['Prefix']}", "LakeLocation")
    rep.equal(out.get("AthenaResultsLocation"), f"s3://{bucket}/athena-results/",
              "AthenaResultsLocation")
    rep.equal(float(out.get("AlertThreshold", "nan")), float(eff["AnomalyThreshold"]),
              "AlertThreshold = the AnomalyThreshold parameter")
    rep.equal(out.get("Ingest"), eff["Ingest"], "Ingest = the Ingest parameter")
    rep.equal(out.get("LakeFormat"), eff["LakeFormat"], "LakeFormat = the LakeFormat parameter")

    # Which resources moto created, and which it only lists.
    active = active_resources(tpl, params)
    listed = c.cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
    made = {r["LogicalResourceId"]: r for r in listed if r["LogicalResourceId"]}
    for lid, rtype in active.items():
        if lid not in made:
            rep.skip(rtype, "not created (moto lists it as CREATE_COMPLETE without a logical id)")
    print(f"  moto created {len(made)} of {len(active)} resources: {', '.join(sorted(made))}")

    # Kinesis streams.
    shards = 0 if int(eff["ShardCount"]) == 0 else int(eff["ShardCount"])
    for key in ("ReadingsStreamName", "AnomalyStreamName"):
        d = c.kinesis.describe_stream_summary(StreamName=out[key])["StreamDescriptionSummary"]
        rep.equal(d["StreamStatus"], "ACTIVE", f"{out[key]} is ACTIVE")
        mode = d.get("StreamModeDetails", {}).get("StreamMode")
        if shards == 0 and mode != "ON_DEMAND":
            rep.ignore("AWS::Kinesis::Stream", f"StreamModeDetails ON_DEMAND (moto made {mode} "
                       f"with {d['OpenShardCount']} shard)")
        if shards:
            rep.equal(d["OpenShardCount"], shards, f"{out[key]} has {shards} shards")
        if d.get("EncryptionType") != "KMS":
            rep.ignore("AWS::Kinesis::Stream", "StreamEncryption (KMS, alias/aws/kinesis)")
    # Both streams carry records; a put on the anomaly stream also makes moto try the mapped
    # function, which it cannot run without Docker: the put must still succeed.
    for key, rec in (("ReadingsStreamName", scored("aaaa", 3, 0.8)),
                     ("AnomalyStreamName", scored("bbbb", 450, 5.5))):
        name = out[key]
        data = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        put = c.kinesis.put_records(StreamName=name,
                                    Records=[{"Data": data, "PartitionKey": rec["deviceId"]}])
        rep.equal(put["FailedRecordCount"], 0, f"PutRecords on {name}")
        shard = put["Records"][0]["ShardId"]
        it = c.kinesis.get_shard_iterator(StreamName=name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = [r["Data"] for r in c.kinesis.get_records(ShardIterator=it)["Records"]]
        rep.check(data in got, f"GetRecords on {name} returns the record")

    # S3 bucket.
    c.s3.head_bucket(Bucket=bucket)
    rep.check(True, f"bucket {bucket} exists")
    enc = c.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    rep.equal(enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256",
              "bucket default encryption is SSE-S3")
    for call, prop, missing in (
            ("get_public_access_block", "PublicAccessBlockConfiguration",
             "NoSuchPublicAccessBlockConfiguration"),
            ("get_bucket_lifecycle_configuration", "LifecycleConfiguration",
             "NoSuchLifecycleConfiguration"),
            ("get_bucket_ownership_controls", "OwnershipControls",
             "OwnershipControlsNotFoundError")):
        try:
            got = getattr(c.s3, call)(Bucket=bucket)
            if prop == "PublicAccessBlockConfiguration":
                rep.check(all(got[prop].values()), "public access is blocked")
            elif prop == "LifecycleConfiguration":
                rep.check(any(r.get("Expiration", {}).get("Days") == 7 for r in got["Rules"]),
                          "Athena results expire after 7 days")
            else:
                rep.check(True, "bucket ownership controls set")
        except ClientError as e:
            if error_code(e) != missing:
                raise
            rep.ignore("AWS::S3::Bucket", prop)
    try:
        policy = json.loads(c.s3.get_bucket_policy(Bucket=bucket)["Policy"])
        rep.check(any(st["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(st)
                      for st in policy["Statement"]), "bucket policy denies plain HTTP")
    except ClientError as e:
        if error_code(e) != "NoSuchBucketPolicy":
            raise
        rep.skip("AWS::S3::BucketPolicy", "not created")

    # Firehose, Glue, Athena: checked in full if moto ever creates them, reported if not.
    try:
        d = c.firehose.describe_delivery_stream(
            DeliveryStreamName=out["DeliveryStreamName"])["DeliveryStreamDescription"]
        dest = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        rep.equal(d["DeliveryStreamType"], {"kinesis": "KinesisStreamAsSource", "firehose":
                                            "DirectPut"}[eff["Ingest"]], "Firehose source type")
        parquet = eff["LakeFormat"] == "parquet"
        rep.equal((dest["BufferingHints"]["IntervalInSeconds"],
                   dest["BufferingHints"]["SizeInMBs"], dest["CompressionFormat"],
                   dest.get("DataFormatConversionConfiguration", {}).get("Enabled", False)),
                  (int(eff["BufferIntervalSeconds"]),
                   PARQUET_MIN_BUFFER_MIB if parquet else int(eff["BufferSizeMiB"]),
                   "UNCOMPRESSED" if parquet else eff["Compression"], parquet),
                  "Firehose buffering, compression and format conversion")
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise
        rep.skip("AWS::KinesisFirehose::DeliveryStream", "not created (its buffering, "
                 "compression and Parquet conversion are checked statically above)")
    try:
        c.glue.get_database(Name=out["GlueDatabaseName"])
        t = c.glue.get_table(DatabaseName=out["GlueDatabaseName"],
                             Name=out["GlueTableName"])["Table"]
        p = t.get("Parameters", {})
        rep.equal(p.get("projection.enabled"), "true", "Glue table has partition projection")
        rep.equal(p.get("storage.location.template"),
                  f"s3://{bucket}/{eff['Prefix']}" + "${datehour}/",
                  "projection's storage.location.template")
        rep.equal(t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
                  TABLE_STORAGE[eff["LakeFormat"]][2]["SerializationLibrary"],
                  f"Glue table's SerDe for LakeFormat={eff['LakeFormat']}")
    except ClientError as e:
        if error_code(e) != "EntityNotFoundException":
            raise
        rep.skip("AWS::Glue::Database", "not created")
        rep.skip("AWS::Glue::Table", "not created (its projection and its SerDe per LakeFormat "
                 "are checked statically above)")
    names = [w["Name"] for w in c.athena.list_work_groups()["WorkGroups"]]
    if out["AthenaWorkGroup"] in names:
        wg = c.athena.get_work_group(WorkGroup=out["AthenaWorkGroup"])["WorkGroup"]
        rep.equal(wg["Configuration"]["ResultConfiguration"]["OutputLocation"],
                  out["AthenaResultsLocation"], "workgroup result location")
    else:
        rep.skip("AWS::Athena::WorkGroup", "not created")
    if "AlertSubscription" in active:
        subs = c.sns.list_subscriptions_by_topic(TopicArn=out["AlertTopicArn"])["Subscriptions"]
        if any(sub["Protocol"] == "email" for sub in subs):
            rep.check(True, "email subscription exists")
        else:
            rep.skip("AWS::SNS::Subscription", "not created")

    # SNS topic, log groups.
    attrs = c.sns.get_topic_attributes(TopicArn=out["AlertTopicArn"])["Attributes"]
    rep.equal(attrs["TopicArn"], out["AlertTopicArn"], "alert topic exists")
    groups = {g["logGroupName"]: g for g in c.logs.describe_log_groups()["logGroups"]}
    for g in (f"/aws/lambda/{s}-alert", f"/aws/kinesisfirehose/{s}-devicedata"):
        rep.equal(groups.get(g, {}).get("retentionInDays"), 14, f"log group {g}, 14 days")

    # The alert function and its trigger.
    fn = getattr(c, "lambda").get_function(FunctionName=out["AlertFunctionName"])["Configuration"]
    rep.equal((fn["Runtime"], fn["Handler"]), ("python3.13", "index.handler"),
              "alert function runtime and handler")
    env = fn.get("Environment", {}).get("Variables", {})
    rep.equal(env.get("ALERT_TOPIC_ARN"), out["AlertTopicArn"], "function env ALERT_TOPIC_ARN")
    rep.equal(float(env.get("ANOMALY_THRESHOLD", "nan")), float(eff["AnomalyThreshold"]),
              "function env ANOMALY_THRESHOLD")
    maps = getattr(c, "lambda").list_event_source_mappings(
        FunctionName=out["AlertFunctionName"])["EventSourceMappings"]
    anomaly_arn = c.kinesis.describe_stream_summary(
        StreamName=out["AnomalyStreamName"])["StreamDescriptionSummary"]["StreamARN"]
    rep.equal([m["EventSourceArn"] for m in maps], [anomaly_arn],
              "one event-source mapping, on the anomaly stream")
    if maps:
        pattern = json.loads(maps[0]["FilterCriteria"]["Filters"][0]["Pattern"])
        threshold = float(eff["AnomalyThreshold"])
        rep.equal(pattern, {"data": {"ANOMALY_SCORE": [{"numeric": [">", threshold]}]}},
                  "filter pattern is ANOMALY_SCORE > threshold")
        cases = [(threshold + 0.01, True), (threshold, False), (threshold - 1, False), (0, False)]
        rep.check(all(filter_matches(pattern, scored("aaaa", 1, x)) == want
                       for x, want in cases), "filter passes only scores above the threshold")
        rep.ignore("AWS::Lambda::EventSourceMapping",
                   "FilterCriteria (stored, not applied: moto tries to run the function via "
                   "Docker for every record put on the anomaly stream)")

    # IAM: every Allow names resources, no wildcards.
    for lid in ("DeliveryRole", "AlertFunctionRole"):
        check_role_scoped(c, rep, lid, made[lid]["PhysicalResourceId"])

    check_operations(c, rep, out, eff, made, s)
    run_alert_code(c, code, rep, out, eff, endpoint)


def check_operations(c, rep, out, eff, made, s):
    """Issue 13 on moto: the cutoff and alarm outputs, the alert function's failure queue and
    role, the topic's key, the tags."""
    rep.equal(out.get("AthenaBytesScannedCutoff"), str(eff["BytesScannedCutoffPerQuery"]),
              "AthenaBytesScannedCutoff = the BytesScannedCutoffPerQuery parameter")
    rep.equal(out.get("AlarmNames", "").split(","), alarm_names(s, False),
              "AlarmNames: readings iterator age, delivery freshness, alert errors and age")
    lam = getattr(c, "lambda")
    queue = f"{s}-alert-failures"
    url = c.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    rep.equal(out.get("AlertFailureQueueUrl", "").rsplit("/", 1)[-1], queue,
              f"AlertFailureQueueUrl names the queue {queue}")
    attrs = c.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    field(rep, "AWS::SQS::Queue", attrs, "MessageRetentionPeriod", "1209600",
          "alert failure queue keeps 14 days")
    field(rep, "AWS::SQS::Queue", attrs, "SqsManagedSseEnabled", "true",
          "alert failure queue encrypted (SSE-SQS)")
    maps = lam.list_event_source_mappings(FunctionName=out["AlertFunctionName"])[
        "EventSourceMappings"]
    if maps:
        field(rep, "AWS::Lambda::EventSourceMapping", maps[0].get("DestinationConfig", {}).get(
            "OnFailure", {}), "Destination", attrs["QueueArn"],
            "alert mapping's on-failure destination is its queue")
    stmts = {st.get("Sid"): st for st in role_statements(
        c, rep, made["AlertFunctionRole"]["PhysicalResourceId"])}
    anomaly_arn = c.kinesis.describe_stream_summary(
        StreamName=out["AnomalyStreamName"])["StreamDescriptionSummary"]["StreamARN"]
    rep.equal((sorted(stmts.get("ReadAnomalyStream", {}).get("Action", [])),
               stmts.get("ReadAnomalyStream", {}).get("Resource"),
               stmts.get("RecordFailedAlerts", {}).get("Resource")),
              (sorted(LAMBDA_KINESIS_ACTIONS), anomaly_arn, attrs["QueueArn"]),
              "alert role: Lambda's Kinesis actions on the anomaly stream; send to its queue")
    # moto keeps the key policy of a CloudFormation key as an object, on which its DescribeKey
    # fails: the key is found by its id.
    key_id = made.get("AlertTopicKey", {}).get("PhysicalResourceId", "")
    keys = {k["KeyId"]: k["KeyArn"] for k in c.kms.list_keys()["Keys"]}
    rep.ignore("AWS::KMS::Key", "KeyPolicy (moto keeps it as an object and DescribeKey fails on "
               "it; checked statically)")
    rep.equal(stmts.get("EncryptAlerts", {}).get("Resource"), keys.get(key_id, "(no key)"),
              "the topic has its own key; the alert role may use it, that key only")
    topic = c.sns.get_topic_attributes(TopicArn=out["AlertTopicArn"])["Attributes"]
    if topic.get("KmsMasterKeyId"):
        rep.check(topic["KmsMasterKeyId"] in (key_id, keys.get(key_id)),
                  "alert topic is encrypted with that key", topic["KmsMasterKeyId"])
    else:
        rep.ignore("AWS::SNS::Topic", "KmsMasterKeyId (not returned)")
    policy = json.loads(topic.get("Policy", "{}"))
    if any("aws:SecureTransport" in json.dumps(st) for st in policy.get("Statement", [])):
        rep.check(True, "topic policy denies plain HTTP")
    else:
        rep.skip("AWS::SNS::TopicPolicy", "not applied (the topic keeps SNS's default policy)")
    # Tags, where moto keeps them.
    tag = {"iotaa:stack": s}
    kin = {t["Key"]: t["Value"] for t in c.kinesis.list_tags_for_stream(
        StreamName=out["ReadingsStreamName"])["Tags"]}
    found = {"readings stream": kin,
             "alert failure queue": c.sqs.list_queue_tags(QueueUrl=url).get("Tags", {}),
             "alert function": lam.list_tags(Resource=lam.get_function(
                 FunctionName=out["AlertFunctionName"])["Configuration"]["FunctionArn"])["Tags"],
             "alert topic": {t["Key"]: t["Value"] for t in c.sns.list_tags_for_resource(
                 ResourceArn=out["AlertTopicArn"])["Tags"]},
             "alert role": {t["Key"]: t["Value"] for t in c.iam.list_role_tags(
                 RoleName=made["AlertFunctionRole"]["PhysicalResourceId"])["Tags"]}}
    try:
        found["bucket"] = {t["Key"]: t["Value"] for t in c.s3.get_bucket_tagging(
            Bucket=out["BucketName"])["TagSet"]}
    except ClientError:
        found["bucket"] = {}
    kinds = {"readings stream": "AWS::Kinesis::Stream", "alert failure queue": "AWS::SQS::Queue",
             "alert function": "AWS::Lambda::Function", "alert topic": "AWS::SNS::Topic",
             "alert role": "AWS::IAM::Role", "bucket": "AWS::S3::Bucket"}
    for k, v in list(found.items()):
        if not v:
            rep.ignore(kinds[k], "Tags (not applied; checked statically)")
            del found[k]
    wrong = [k for k, v in found.items() if v.get("iotaa:stack") != s]
    rep.equal(wrong, [], f"tagged {tag}: " + ", ".join(k for k in found if k not in wrong))


def switch_format(c, body, rep, stack_id, fmt):
    """Redeploy with another LakeFormat ([delivery] format): the Firehose stream and the table
    update in place (moto creates neither; this shows the update completes)."""
    section(f"stack {stack_id.split('/')[1]}: update to LakeFormat={fmt}")
    c.cloudformation.update_stack(
        StackName=stack_id, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "LakeFormat", "ParameterValue": fmt}])
    stack = settled(c, rep, stack_id, "UPDATE_COMPLETE")
    if stack is not None:
        out = outputs_of(stack)
        rep.equal((out.get("LakeFormat"), out.get("DeliveryStreamName")),
                  (fmt, delivery_name(stack["StackName"], "kinesis")),
                  f"LakeFormat={fmt}, the same Firehose stream (updated in place)")


def switch_ingest(c, body, rep, stack_id, ingest):
    """Redeploy with another Ingest, as `iotaa stack deploy` does after config.toml changed."""
    section(f"stack {stack_id.split('/')[1]}: update to Ingest={ingest}")
    c.cloudformation.update_stack(
        StackName=stack_id, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "Ingest", "ParameterValue": ingest}])
    stack = settled(c, rep, stack_id, "UPDATE_COMPLETE")
    if stack is None:
        return
    out = outputs_of(stack)
    name = delivery_name(stack["StackName"], ingest)
    rep.equal((out.get("Ingest"), out.get("DeliveryStreamName")), (ingest, name),
              f"Ingest={ingest}: the Firehose stream is {name} (a new name: replaceable)")


def call_handler(module, event):
    """The handler's result; what it printed (its CloudWatch log in Lambda) shown indented."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        result = module.handler(event, None)
    for line in log.getvalue().splitlines():
        print(f"  log   {line}")
    return result


def alert_module(code, env):
    """Import the inline function's code as its own module, with these environment variables
    set while it loads (it reads them and makes its SNS client at import, as in Lambda)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        module = types.ModuleType("index")
        exec(compile(code, "index.py", "exec"), module.__dict__)  # noqa: S102 (our own code)
        return module
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kinesis_event(records):
    return {"Records": [
        {"kinesis": {"sequenceNumber": str(i), "data": base64.b64encode(
            r if isinstance(r, bytes) else (json.dumps(r) + "\n").encode()).decode()}}
        for i, r in enumerate(records)]}


def run_alert_code(c, code, rep, out, eff, endpoint):
    """Run the inline function here, against moto's SNS, and read what it published through an
    SQS queue subscribed to the topic."""
    threshold = float(eff["AnomalyThreshold"])
    queue = c.sqs.create_queue(QueueName=f"check-{out['AlertFunctionName']}")["QueueUrl"]
    qarn = c.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sub = c.sns.subscribe(TopicArn=out["AlertTopicArn"], Protocol="sqs", Endpoint=qarn)
    expl = {"sensorReading": {"ATTRIBUTION_SCORE": 5.1, "STRENGTH": 448.0, "DIRECTION": "HIGH"}}
    # What the filter lets through, plus what it would drop (the function checks again).
    event = kinesis_event([scored("aaaa", 3, 0.9), scored("bbbb", 471, threshold + 1.5, expl),
                           scored("cccc", -430, threshold), b"not json",
                           scored("dddd", -455, threshold + 0.2)])
    env = dict(ALERT_TOPIC_ARN=out["AlertTopicArn"], ANOMALY_THRESHOLD=str(threshold),
               AWS_ENDPOINT_URL=endpoint)
    result = call_handler(alert_module(code, env), event)
    rep.equal(result, {"batchItemFailures": []}, "alert code: handler reports no failures")
    msgs = []
    deadline = time.monotonic() + 10
    while len(msgs) < 2 and time.monotonic() < deadline:
        got = c.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=1).get("Messages", [])
        msgs += [json.loads(m["Body"]) for m in got]
    rep.equal(sorted(m["Subject"] for m in msgs), ["Anomaly Detected!"] * 2,
              "alert code: one 'Anomaly Detected!' per record above the threshold")
    bodies = sorted(m["Message"] for m in msgs)
    rep.check(len(bodies) == 2 and bodies[0].startswith("Device bbbb sent an anomalous reading")
              and "HIGH" in bodies[0] and bodies[1].startswith("Device dddd"),
              "alert code: readable message with device, reading, score and explanation",
              repr(bodies))
    if bodies:
        alert = json.loads(bodies[0].rsplit("\n", 1)[1])
        rep.equal((alert["deviceId"], alert["threshold"], "alertTime" in alert),
                  ("bbbb", threshold, True), "alert code: message ends with the alert as JSON")
        print("  message as sent:\n" + "\n".join("    | " + line for line in
                                                   bodies[0].splitlines()))
    # A failed publish reports the first unsent anomaly, so Lambda resumes from it.
    env["ALERT_TOPIC_ARN"] = out["AlertTopicArn"] + "-missing"
    result = call_handler(alert_module(code, env), event)
    rep.equal(result, {"batchItemFailures": [{"itemIdentifier": "1"}]},
              "alert code: a failed publish reports that record to retry from")
    c.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    c.sqs.delete_queue(QueueUrl=queue)


def deploy_detector(c, tpl, body, rep, stack_id, params):
    """The first deploy with a detector, as the app does it: the stack was created without one
    (DetectorCodeKey ''); upload the zip to its bucket, update the stack with the zip's key."""
    stack = settled(c, rep, stack_id, "CREATE_COMPLETE")
    if stack is None:
        return
    stack_name = stack["StackName"]
    out = outputs_of(stack)
    rep.equal(sorted(set(DETECTOR_OUTPUTS) & set(out)), [],
              "phase 1 (DetectorCodeKey ''): no detector outputs")
    fns = [f["FunctionName"] for f in getattr(c, "lambda").list_functions()["Functions"]]
    rep.check(f"{stack_name}-detector" not in fns, "phase 1: no detector function")

    data, key = detector_zip()
    c.s3.put_object(Bucket=out["BucketName"], Key=key, Body=data)
    rep.check(True, f"uploaded {len(data)} bytes to s3://{out['BucketName']}/{key}")
    section(f"stack {stack_name}: update with DetectorCodeKey (other parameters: previous values)")
    # moto keeps only the parameters given to CreateStack: UsePreviousValue on one left at its
    # default is a 500 (KeyError) there. So only those given keep their previous value; the rest
    # are left out, which means their default, the value they had.
    c.cloudformation.update_stack(
        StackName=stack_id, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "UsePreviousValue": True} for k in params]
        + [{"ParameterKey": "DetectorCodeKey", "ParameterValue": key}])
    rep.ignore("AWS::CloudFormation::Stack", "UpdateStack UsePreviousValue of a parameter left "
               "at its default (moto answers 500; such parameters are left out here)")
    stack = settled(c, rep, stack_id, "UPDATE_COMPLETE")
    if stack is None:
        return
    got = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    rep.equal({k: got.get(k) for k in [*params, "DetectorCodeKey"]},
              {**{k: str(v) for k, v in params.items()}, "DetectorCodeKey": key},
              "update kept the other parameters and set DetectorCodeKey")
    check_detector(c, tpl, rep, stack, {**params, "DetectorCodeKey": key}, data)


def field(rep, rtype, got, key, want, what):
    """Check one field of a moto answer, or record it as ignored if moto did not return it."""
    if got.get(key) is None:
        rep.ignore(rtype, f"{key} (not returned)")
        return
    rep.equal(got[key], want, what)


def check_detector(c, tpl, rep, stack, params, code):
    """The detector's resources on a stack updated with DetectorCodeKey."""
    cfg = tomllib.loads(CONFIG.read_text())["detector"]
    cond = stack_conditions(tpl, params)
    streaming = cond["StreamDetector"]
    s = stack["StackName"]
    out = outputs_of(stack)
    listed = c.cloudformation.list_stack_resources(StackName=stack["StackId"])[
        "StackResourceSummaries"]
    made = {r["LogicalResourceId"]: r for r in listed if r["LogicalResourceId"]}
    want = [k for k in DETECTOR_OUTPUTS if streaming or k in ("DetectorFunctionName",
                                                               "DetectorStatePrefix")]
    rep.equal(sorted(set(DETECTOR_OUTPUTS) & set(out)), sorted(want),
              "detector outputs" + ("" if streaming else " (no mapping, no queue with firehose)"))
    rep.equal((out.get("DetectorFunctionName"), out.get("DetectorStatePrefix")),
              (f"{s}-detector", STATE_PREFIX), "DetectorFunctionName, DetectorStatePrefix")
    rep.equal(out.get("AlarmNames", "").split(","), alarm_names(s, streaming),
              "AlarmNames: " + ("the detector's iterator age instead of the readings stream's"
                                if streaming else "still the readings stream's iterator age"))
    bucket = out["BucketName"]

    # The function.
    lam = getattr(c, "lambda")
    fn = lam.get_function(FunctionName=out.get("DetectorFunctionName", f"{s}-detector"))[
        "Configuration"]
    rtype = "AWS::Lambda::Function"
    field(rep, rtype, fn, "Runtime", "provided.al2023", "detector runtime provided.al2023")
    field(rep, rtype, fn, "Handler", "bootstrap", "detector handler bootstrap")
    if fn.get("Architectures") == ["x86_64"]:  # Lambda's default
        rep.ignore(rtype, "Architectures (moto's CloudFormation drops it: x86_64)")
    else:
        field(rep, rtype, fn, "Architectures", ["arm64"], "detector architecture arm64")
    field(rep, rtype, fn, "MemorySize", 512, "detector memory 512 MiB")
    field(rep, rtype, fn, "Timeout", 60, "detector timeout 60 s")
    field(rep, rtype, fn, "CodeSha256",
          base64.b64encode(hashlib.sha256(code).digest()).decode(),
          "detector code is the uploaded zip (CodeSha256)")
    role = made.get("DetectorRole", {}).get("PhysicalResourceId", "")
    rep.check(fn.get("Role", "").endswith(f":role/{role}") and role,
              f"detector runs as DetectorRole ({role})", fn.get("Role"))
    env = fn.get("Environment", {}).get("Variables", {})
    if not all(isinstance(v, str) for v in env.values()):
        rep.ignore(rtype, "Environment values of Number parameters as strings (moto keeps "
                   "numbers; compared as text here)")
    fmt = lambda v: str(v).lower() if isinstance(v, bool) else str(v)  # noqa: E731
    rep.equal({k: fmt(v) for k, v in env.items()}, {
        "ANOMALY_STREAM_NAME": out["AnomalyStreamName"], "STATE_BUCKET": bucket,
        "STATE_PREFIX": STATE_PREFIX, "DETECTOR_TREES": fmt(cfg["trees"]),
        "DETECTOR_SAMPLE_SIZE": fmt(cfg["sample_size"]),
        "DETECTOR_TIME_DECAY": fmt(cfg["time_decay"]),
        "DETECTOR_SHINGLE_SIZE": fmt(cfg["shingle_size"]),
        "DETECTOR_PER_DEVICE": fmt(cfg["per_device"]),
        "DETECTOR_EXPLANATION": fmt(cfg["explanation"]),
        "DETECTOR_RANDOM_SEED": fmt(cfg["random_seed"]),
        "SNAPSHOT_INTERVAL_SECS": fmt(cfg["snapshot_interval_secs"])},
        "detector environment (config.toml's [detector] values, the stream, the bucket)")
    groups = {g["logGroupName"]: g for g in c.logs.describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{s}-")["logGroups"]}
    rep.equal(groups.get(f"/aws/lambda/{s}-detector", {}).get("retentionInDays"), 14,
              f"log group /aws/lambda/{s}-detector, 14 days")

    # The roles, as moto resolved their !If statements.
    readings_arn = c.kinesis.describe_stream_summary(
        StreamName=out["ReadingsStreamName"])["StreamDescriptionSummary"]["StreamARN"]
    queue_name = f"{s}-detector-failures"
    stmts = {st.get("Sid"): st for st in check_role_scoped(c, rep, "DetectorRole", role)}
    want_sids = [sid for sid, (c_, *_rest) in DETECTOR_STATEMENTS.items()
                 if c_ is None or cond[c_]]
    rep.equal(sorted(stmts), sorted(want_sids), "DetectorRole: the statements for this Ingest")
    rep.equal(stmts.get("ModelState", {}).get("Resource"),
              f"arn:aws:s3:::{bucket}/{STATE_PREFIX}*", "DetectorRole: objects under "
              f"{STATE_PREFIX} only")
    if streaming:
        rep.equal(stmts.get("ReadReadingsStream", {}).get("Resource"), readings_arn,
                  "DetectorRole: reads the readings stream")
    raw = role_statements(c, rep, made["DeliveryRole"]["PhysicalResourceId"], keep_null=True)
    delivery = {st.get("Sid"): st for st in raw if st}
    if streaming:
        rep.check("InvokeDetector" not in delivery,
                  "delivery role may not invoke the detector (Ingest=kinesis)")
    elif "InvokeDetector" not in delivery and None in raw:
        rep.ignore("AWS::CloudFormation::Stack", "UpdateStack of a resource whose text and "
                   "parameters are unchanged but whose !If condition changed (moto keeps the "
                   "DeliveryRole's phase-1 policy without InvokeDetector; checked statically)")
    else:
        rep.equal(delivery.get("InvokeDetector", {}).get("Resource"), fn["FunctionArn"],
                  "delivery role may invoke the detector function, that one only")

    # The mapping and its failure queue (Ingest=kinesis), or neither (Ingest=firehose).
    maps = lam.list_event_source_mappings(FunctionName=fn["FunctionName"])["EventSourceMappings"]
    if not streaming:
        rep.equal(maps, [], "no event-source mapping with Ingest=firehose")
        try:
            c.sqs.get_queue_url(QueueName=queue_name)
            rep.check(False, "no failure queue with Ingest=firehose")
        except ClientError:
            rep.check(True, "no failure queue with Ingest=firehose")
        try:
            d = c.firehose.describe_delivery_stream(
                DeliveryStreamName=out["DeliveryStreamName"])["DeliveryStreamDescription"]
            procs = d["Destinations"][0]["ExtendedS3DestinationDescription"].get(
                "ProcessingConfiguration", {}).get("Processors", [])
            arns = [p["ParameterValue"] for pr in procs for p in pr["Parameters"]
                    if p["ParameterName"] == "LambdaArn"]
            rep.equal(arns, [fn["FunctionArn"]], "Firehose processor is the detector function")
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            rep.skip("AWS::KinesisFirehose::DeliveryStream", "not created")
        return
    rep.equal([m["EventSourceArn"] for m in maps], [readings_arn],
              "one event-source mapping, on the readings stream")
    if not maps:
        return
    m = maps[0]
    rep.equal(m["UUID"], out.get("DetectorMappingId"), "DetectorMappingId = the mapping's UUID")
    rtype = "AWS::Lambda::EventSourceMapping"
    for key, want_value in (("StartingPosition", "LATEST"), ("BatchSize", 1000),
                            ("MaximumBatchingWindowInSeconds", 1), ("ParallelizationFactor", 1),
                            ("BisectBatchOnFunctionError", True), ("MaximumRetryAttempts", 10),
                            ("MaximumRecordAgeInSeconds", 86400),
                            ("FunctionResponseTypes", ["ReportBatchItemFailures"])):
        field(rep, rtype, m, key, want_value, f"mapping {key} = {want_value}")
    url = c.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    rep.equal(out.get("DetectorFailureQueueUrl", "").rsplit("/", 1)[-1], queue_name,
              f"DetectorFailureQueueUrl names the queue {queue_name}")
    attrs = c.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    rtype = "AWS::SQS::Queue"
    field(rep, rtype, attrs, "MessageRetentionPeriod", "1209600", "failure queue keeps 14 days")
    field(rep, rtype, attrs, "SqsManagedSseEnabled", "true", "failure queue encrypted (SSE-SQS)")
    field(rep, "AWS::Lambda::EventSourceMapping", m.get("DestinationConfig", {}).get(
        "OnFailure", {}), "Destination", attrs["QueueArn"], "mapping's on-failure destination "
        "is the failure queue")
    rep.equal(stmts.get("RecordFailedBatches", {}).get("Resource"), attrs["QueueArn"],
              "DetectorRole: may send to the failure queue, that one only")


def empty_bucket(c, bucket):
    """Delete every object, as `iotaa stack delete` does before it deletes the stack."""
    for page in c.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            c.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def delete_and_check(c, rep, stack_name, stack_id):
    section(f"stack {stack_name}: delete")
    out = outputs_of(c.cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0])
    if out.get("BucketName"):
        empty_bucket(c, out["BucketName"])
    c.cloudformation.delete_stack(StackName=stack_id)
    stack = wait_stack(c.cloudformation, stack_id)
    if not rep.equal(stack["StackStatus"], "DELETE_COMPLETE", "stack reaches DELETE_COMPLETE"):
        print_failure(c.cloudformation, stack_id)
        return
    streams = c.kinesis.list_streams()["StreamNames"]
    rep.check(not {out.get("ReadingsStreamName"), out.get("AnomalyStreamName")} & set(streams),
              "streams are gone")
    # DeletionPolicy Retain: the lake bucket outlives the stack; `stack delete --delete-lake`
    # deletes it afterwards, as this does.
    buckets = [b["Name"] for b in c.s3.list_buckets()["Buckets"]]
    if rep.check(out.get("BucketName") in buckets, "bucket is kept (DeletionPolicy Retain)"):
        empty_bucket(c, out["BucketName"])
        c.s3.delete_bucket(Bucket=out["BucketName"])
    fns = [f["FunctionName"] for f in getattr(c, "lambda").list_functions()["Functions"]]
    rep.check(out.get("AlertFunctionName") not in fns, "function is gone")
    topics = [t["TopicArn"] for t in c.sns.list_topics()["Topics"]]
    rep.check(out.get("AlertTopicArn") not in topics, "topic is gone")
    if out.get("DetectorFunctionName"):
        rep.check(out["DetectorFunctionName"] not in fns, "detector function is gone")
    if out.get("DetectorMappingId"):
        try:
            getattr(c, "lambda").get_event_source_mapping(UUID=out["DetectorMappingId"])
            rep.check(False, "detector mapping is gone")
        except ClientError as e:
            rep.check(error_code(e) == "ResourceNotFoundException", "detector mapping is gone",
                      error_code(e))
    if out.get("DetectorFailureQueueUrl"):
        queues = c.sqs.list_queues(QueueNamePrefix=f"{stack_name}-detector").get("QueueUrls", [])
        rep.equal(queues, [], "failure queue is gone")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", default=os.environ.get("IOTAA_MOTO_ENDPOINT",
                                                         "http://127.0.0.1:5000"))
    ap.add_argument("--template", type=Path, default=TEMPLATE, help="template to check")
    ap.add_argument("--reset", action="store_true", help="reset moto's state at the end")
    args = ap.parse_args()
    rep = Report()
    started = time.monotonic()

    tpl = load_template(args.template)
    code = static_checks(tpl, rep)
    detector_static_checks(tpl, rep)
    aws_static_checks(tpl, rep, args.template)
    lake_format_checks(tpl, rep)
    policy_file_checks(tpl, rep)
    c = clients(args.endpoint)
    body = moto_body(tpl, rep)
    runs = [("iotaa-check", {}),
            ("iotaa-check-params", {"ShardCount": 2, "Ingest": "firehose", "Prefix": "lake/",
                                    "Compression": "UNCOMPRESSED", "AnomalyThreshold": 5.5,
                                    "AlertEmail": "alerts@example.com", "LakeExpirationDays": 30,
                                    "BytesScannedCutoffPerQuery": 20000000,
                                    "LakeFormat": "parquet"})]
    for name, params in runs:
        # An unexpected emulator answer is a failed check, not a traceback, and the stack is
        # deleted whatever happened.
        try:
            stack_id = create_stack(c, body, name, params)
        except Exception as e:
            rep.check(False, f"stack {name}: create", f"{type(e).__name__}: {str(e)[:300]} "
                      "(moto makes the resources within CreateStack: its log has the traceback)")
            continue
        try:
            check_stack(c, tpl, code, rep, stack_id, params, args.endpoint)
            if not params:  # kinesis -> firehose -> kinesis, json -> parquet -> json
                for ingest in ("firehose", "kinesis"):
                    switch_ingest(c, body, rep, stack_id, ingest)
                for fmt in ("parquet", "json"):
                    switch_format(c, body, rep, stack_id, fmt)
        except Exception as e:
            rep.check(False, f"stack {name}", f"{type(e).__name__}: {e}")
        try:
            delete_and_check(c, rep, name, stack_id)
        except Exception as e:
            rep.check(False, f"stack {name}: delete", f"{type(e).__name__}: {e}")
    # The detector's two-phase deploy, once per Ingest.
    for name, params in [("iotaa-check-detector", {}),
                         ("iotaa-check-detector-fh", {"Ingest": "firehose"})]:
        try:
            stack_id = create_stack(c, body, name, params)
        except Exception as e:
            rep.check(False, f"stack {name}: create", f"{type(e).__name__}: {str(e)[:300]}")
            continue
        try:
            deploy_detector(c, tpl, body, rep, stack_id, params)
        except Exception as e:
            rep.check(False, f"stack {name}: detector", f"{type(e).__name__}: {e}")
        try:
            delete_and_check(c, rep, name, stack_id)
        except Exception as e:
            rep.check(False, f"stack {name}: delete", f"{type(e).__name__}: {e}")

    if args.reset:
        urllib.request.urlopen(urllib.request.Request(f"{args.endpoint}/moto-api/reset",
                                                      method="POST"), timeout=10).read()

    section("what moto did not do (real AWS does; cfn-lint and the static checks cover these)")
    for rtype, why in sorted(rep.skipped.items()):
        print(f"  skipped  {rtype:<38} {why}")
    for rtype, props in sorted(rep.ignored.items()):
        for prop in props:
            print(f"  ignored  {rtype:<38} {prop}")
    secs = time.monotonic() - started
    if rep.failed:
        print(f"\ncheck_moto: FAILED, {len(rep.failed)} of {rep.passed + len(rep.failed)} "
              f"checks ({secs:.1f} s):")
        for f in rep.failed:
            print(f"  - {f}")
        return 1
    print(f"\ncheck_moto: OK, all {rep.passed} checks ({secs:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
