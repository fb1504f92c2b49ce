//! The moto side of `cargo xtask terraform`: the Lambda assets the round trip deploys, and the
//! post-apply checks made through the AWS API (boto3, which `moto[server]` installs). The moto
//! server itself is `test_support::Moto`, the provider override `test_support::terraform`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The five values `cargo xtask publish --json` prints (and `examples/basic` takes), plus the
/// architecture when publish reports one.
#[derive(serde::Deserialize, serde::Serialize, Debug, Clone)]
pub struct Assets {
    pub deployment_assets_bucket: String,
    pub ecr_image_filter_lambda_asset_path: String,
    pub soci_index_generator_lambda_asset_path: String,
    pub ecr_image_filter_lambda_source_code_hash: String,
    pub soci_index_generator_lambda_source_code_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

impl Assets {
    /// Parses publish's stdout: the whole output, or else the last line that is a JSON object
    /// (publish may log progress before it).
    pub fn from_publish_output(stdout: &str) -> anyhow::Result<Self> {
        if let Ok(assets) = serde_json::from_str(stdout.trim()) {
            return Ok(assets);
        }
        stdout
            .lines()
            .rev()
            .filter(|l| l.trim_start().starts_with('{'))
            .find_map(|l| serde_json::from_str(l.trim()).ok())
            .with_context(|| {
                format!("`cargo xtask publish --json` printed no JSON object with the five module inputs:\n{stdout}")
            })
    }
}

/// Writes the Python helpers into `dir` and returns (ensure-bucket/stub-assets script, check script).
pub fn write_scripts(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let assets = dir.join("stub_assets.py");
    let check = dir.join("check_deployment.py");
    std::fs::write(&assets, STUB_ASSETS_PY)?;
    std::fs::write(&check, CHECK_PY)?;
    Ok((assets, check))
}

/// `python3 stub_assets.py ENDPOINT BUCKET [--bucket-only]`: creates the bucket; without
/// `--bucket-only` also uploads two small, distinct zips holding a `bootstrap` and prints the
/// same JSON as `cargo xtask publish --json`. Used only when publish is not available.
const STUB_ASSETS_PY: &str = r##"
import base64, hashlib, io, json, sys, zipfile
import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint)
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
if "--bucket-only" in sys.argv:
    sys.exit(0)
out = {"deployment_assets_bucket": bucket}
for name, key in [("ecr_image_filter", "stub/x86_64/ecr-image-filter.zip"),
                  ("soci_index_generator", "stub/x86_64/soci-index-generator.zip")]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap", (1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        z.writestr(info, f"#!/bin/sh\necho stub {name}\n")
    data = buf.getvalue()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    out[f"{name}_lambda_asset_path"] = key
    out[f"{name}_lambda_source_code_hash"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
print(json.dumps(out))
"##;

/// `python3 check_deployment.py ENDPOINT EXPECT_JSON`: reads back, through the AWS API, what
/// `terraform apply` of examples/basic created and compares it with what the module promises.
/// `python3 check_deployment.py ENDPOINT EXPECT_JSON --gone` checks that destroy removed it all.
const CHECK_PY: &str = r##"
import json
import sys

import boto3

endpoint, expect = sys.argv[1], json.loads(sys.argv[2])
prefix = expect["resource_prefix"]
session = boto3.session.Session(
    aws_access_key_id="test", aws_secret_access_key="test", region_name=expect["region"]
)
lam = session.client("lambda", endpoint_url=endpoint)
iam = session.client("iam", endpoint_url=endpoint)
events = session.client("events", endpoint_url=endpoint)
logs = session.client("logs", endpoint_url=endpoint)
failures = []

roles = {
    f"{prefix}-ECRImageActionEventFilter": f"{prefix}-ECRImageEventFilterLambdaRole",
    f"{prefix}-SociIndexGenerator": f"{prefix}-SociIndexGeneratorLambdaRole",
}

if "--gone" in sys.argv:
    names = list(roles)
    left = [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"] in names]
    left += [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"] in roles.values()]
    left += [r["Name"] for r in events.list_rules(NamePrefix=prefix)["Rules"]]
    left += [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}-")["logGroups"]]
    if left:
        print(f"  FAIL left after destroy: {left}")
        sys.exit(1)
    print("  ok   functions, roles, rule and log groups are gone")
    sys.exit(0)


def check(what, got, want):
    status = "ok  " if got == want else "FAIL"
    print(f"  {status} {what}: {got!r}" + ("" if got == want else f" (want {want!r})"))
    if got != want:
        failures.append(what)


account = expect["account_id"]
region = expect["region"]
generator_name = f"{prefix}-SociIndexGenerator"
filter_name = f"{prefix}-ECRImageActionEventFilter"
generator_arn = f"arn:aws:lambda:{region}:{account}:function:{generator_name}"
common = {"soci_index_version": "V2", "index_tag_suffix": "-soci"}
functions = {
    filter_name: {
        "key": expect["ecr_image_filter_lambda_asset_path"],
        "hash": expect["ecr_image_filter_lambda_source_code_hash"],
        "memory": 128,
        "timeout": 30,
        "env": {**common, "soci_repository_image_tag_filters": "*:*", "soci_index_generator_lambda_arn": generator_arn},
    },
    generator_name: {
        "key": expect["soci_index_generator_lambda_asset_path"],
        "hash": expect["soci_index_generator_lambda_source_code_hash"],
        "memory": 1024,
        "timeout": 900,
        "ephemeral": 512,
        "env": {**common, "span_size": "4194304", "min_layer_size": "10485760"},
    },
}

for name, want in functions.items():
    print(f"function {name}")
    cfg = lam.get_function(FunctionName=name)["Configuration"]
    check("Runtime", cfg.get("Runtime"), "provided.al2023")
    check("Handler", cfg.get("Handler"), "bootstrap")
    check("Architectures", cfg.get("Architectures"), [expect["architecture"]])
    check("MemorySize", cfg.get("MemorySize"), want["memory"])
    check("Timeout", cfg.get("Timeout"), want["timeout"])
    if "ephemeral" in want:
        check("EphemeralStorage", cfg.get("EphemeralStorage", {}).get("Size"), want["ephemeral"])
    check("Environment", cfg.get("Environment", {}).get("Variables"), want["env"])
    check("Role", cfg.get("Role"), f"arn:aws:iam::{account}:role/{roles[name]}")
    if want["hash"]:
        check("CodeSha256 (= source_code_hash input)", cfg.get("CodeSha256"), want["hash"])

    print(f"role {roles[name]}")
    role = iam.get_role(RoleName=roles[name])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    check("trusts lambda.amazonaws.com", trust["Statement"][0]["Principal"], {"Service": "lambda.amazonaws.com"})
    check("inline policies", iam.list_role_policies(RoleName=roles[name])["PolicyNames"], [f"{name}-policy"])
    doc = iam.get_role_policy(RoleName=roles[name], PolicyName=f"{name}-policy")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    actions = sorted(a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    if name == generator_name:
        want_actions = sorted([
            "logs:CreateLogStream", "logs:PutLogEvents", "ecr:GetAuthorizationToken",
            "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
        ])
    else:
        want_actions = sorted(["logs:CreateLogStream", "logs:PutLogEvents", "lambda:InvokeFunction"])
    check("policy actions", actions, want_actions)

    print(f"log group /aws/lambda/{name}")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    check("retentionInDays", [g.get("retentionInDays") for g in groups], [14])

rule_name = f"{prefix}-ECRImageActionEventBridgeRule"
print(f"rule {rule_name}")
rule = events.describe_rule(Name=rule_name)
check(
    "EventPattern",
    json.loads(rule["EventPattern"]),
    {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "account": [account],
        "region": [region],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]},
    },
)
check("State", rule.get("State"), "ENABLED")
filter_arn = lam.get_function(FunctionName=filter_name)["Configuration"]["FunctionArn"]
targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
check("targets", [t["Arn"] for t in targets], [filter_arn])

print(f"invoke permission on {filter_name}")
policy = json.loads(lam.get_policy(FunctionName=filter_name)["Policy"])
stmts = policy["Statement"]
check("principals", [s["Principal"] for s in stmts], [{"Service": "events.amazonaws.com"}])
check("source arn", [s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") for s in stmts], [rule["Arn"]])

if failures:
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("all deployment checks passed")
"##;
