//! `deploy/template.yaml` passes cfn-lint, and wires what the worker relies on. Never
//! skipped: without cfn-lint (`bash scripts/install-aws-test-deps.sh`) these tests fail.

use crate::support::repo_root;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn venv_tool(name: &str, env_var: &str) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".test-deps/aws-venv/bin").join(name));
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/install-aws-test-deps.sh` (or set {env_var})",
        path.display()
    );
    path
}

#[test]
fn cfn_lint_passes_the_template() {
    let out = Command::new(venv_tool("cfn-lint", "HLSPIPE_CFN_LINT"))
        .arg(repo_root().join("deploy/template.yaml"))
        .output()
        .expect("cfn-lint runs");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The template as JSON, read by cfn-lint's own decoder (it knows `!Ref`, `!Sub` …).
fn template() -> Value {
    let script = "import json, sys\n\
                  from cfnlint.decode import decode\n\
                  t, errors = decode(sys.argv[1])\n\
                  assert not errors, errors\n\
                  print(json.dumps(t))";
    let out = Command::new(venv_tool("python", "HLSPIPE_CFN_PYTHON"))
        .args(["-c", script])
        .arg(repo_root().join("deploy/template.yaml"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn template_wires_queue_function_and_cdn_as_the_worker_expects() {
    let t = template();
    let r = &t["Resources"];
    let p = &t["Parameters"];

    // S3 validates the notification destination against the queue policy on creation.
    let depends = &r["MediaBucket"]["DependsOn"];
    assert!(
        depends == "UploadQueuePolicy"
            || depends
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == "UploadQueuePolicy")),
        "{depends}"
    );
    let notifications = r["MediaBucket"]["Properties"]["NotificationConfiguration"]
        ["QueueConfigurations"]
        .as_array()
        .unwrap();
    let events: Vec<&str> = notifications
        .iter()
        .map(|n| n["Event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]);
    for n in notifications {
        assert_eq!(n["Filter"]["S3Key"]["Rules"][0]["Name"], "prefix");
        assert_eq!(
            n["Filter"]["S3Key"]["Rules"][0]["Value"]["Ref"],
            "InputPrefix"
        );
    }

    // Visibility timeout ≥ 6 × function timeout ("Using Lambda with Amazon SQS").
    let timeout = p["FunctionTimeoutSeconds"]["Default"].as_f64().unwrap();
    let visibility = p["QueueVisibilityTimeoutSeconds"]["Default"]
        .as_f64()
        .unwrap();
    assert!(timeout <= 900.0 && visibility >= 6.0 * timeout);
    assert!(r["UploadQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"].is_object());

    let f = &r["PackagerFunction"]["Properties"];
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Handler"], "bootstrap");
    let sqs = &f["Events"]["Uploads"]["Properties"];
    assert_eq!(
        sqs["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    // The role: CloudFront may only be asked for invalidations, nothing is `*`.
    let statements = f["Policies"][0]["Statement"].as_array().unwrap();
    let actions: Vec<String> = statements
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            _ => vec![],
        })
        .collect();
    assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
    assert!(actions.contains(&"cloudfront:CreateInvalidation".to_string()));
    // A missing key must be a 404 to the packager (a new title has no manifest yet): its
    // s3:ListBucket carries no prefix condition, which a GET would never satisfy.
    let list = statements
        .iter()
        .find(|s| s["Action"] == "s3:ListBucket")
        .expect("s3:ListBucket");
    assert!(list["Condition"].is_null(), "{list}");
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("cloudfront:"))
            .count(),
        1
    );

    // Every media behaviour needs signed requests; the API's (where viewers get their
    // cookies) cannot, and is never cached.
    let dist = &r["Distribution"]["Properties"]["DistributionConfig"];
    assert!(dist["DefaultCacheBehavior"]["TrustedKeyGroups"].is_array());
    for b in dist["CacheBehaviors"].as_array().unwrap() {
        if b["TargetOriginId"] == "api" {
            assert_eq!(b["PathPattern"], "/v1/*");
            assert!(b["TrustedKeyGroups"].is_null(), "{b}");
            // Managed-CachingDisabled, Managed-AllViewerExceptHostHeader.
            assert_eq!(b["CachePolicyId"], "4135ea2d-6df8-44a3-9df3-4b5a84be39ad");
            assert_eq!(
                b["OriginRequestPolicyId"],
                "b689b0a8-53d0-40ab-baf2-68738e2966ac"
            );
        } else {
            assert!(b["TrustedKeyGroups"].is_array(), "{b}");
        }
    }
    assert!(dist["Origins"][0]["OriginAccessControlId"].is_object());

    // Both functions are built by `sam build` from a literal CodeUri (sam package resolves
    // no !Ref there).
    for (name, binary) in [("PackagerFunction", "bootstrap"), ("ApiFunction", "api")] {
        assert_eq!(
            r[name]["Properties"]["CodeUri"], "../workers/lambda",
            "{name}"
        );
        assert_eq!(
            r[name]["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name}"
        );
        assert_eq!(
            r[name]["Metadata"]["BuildProperties"]["Binary"], binary,
            "{name}"
        );
    }
}

/// The playback API function (the production-API issue): reached through the function URL
/// as the distribution's `/v1/*` origin, its private key named by a secret's ARN (never in
/// its environment), and a role that can read title state, tell a missing title from a
/// refused one, and read its own secrets: nothing else.
#[test]
fn template_wires_the_api_function_with_least_privilege() {
    let t = template();
    let r = &t["Resources"];
    let f = &r["ApiFunction"]["Properties"];
    assert_eq!(f["FunctionUrlConfig"]["AuthType"], "NONE");
    let env = &f["Environment"]["Variables"];
    assert_eq!(
        env["HLSPIPE_PRIVATE_KEY_SECRET"]["Ref"],
        "PrivateKeySecretArn"
    );
    assert_eq!(env["HLSPIPE_KEY_PAIR_ID"]["Ref"], "SigningPublicKey");
    assert_eq!(env["HLSPIPE_CDN_BASE_URL"]["Ref"], "CdnBaseUrl");
    let text = env.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("SigningPublicKeyPem"),
        "{text}"
    );
    assert_eq!(t["Parameters"]["PrivateKeySecretArn"]["Type"], "String");
    assert!(t["Rules"]["BearerNeedsItsToken"].is_object());

    let statements = f["Policies"][0]["Statement"].as_array().unwrap();
    let by_sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no {sid}"))
    };
    assert_eq!(statements.len(), 4, "{statements:?}");
    assert_eq!(by_sid("ReadTitleState")["Action"], "s3:GetObject");
    let resource = by_sid("ReadTitleState")["Resource"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        resource.ends_with("/${OutputPrefix}/*/manifest.json"),
        "{resource}"
    );
    assert_eq!(by_sid("MissingIsNotFound")["Action"], "s3:ListBucket");
    let secrets = by_sid("ReadOwnSecrets");
    assert_eq!(secrets["Action"], "secretsmanager:GetSecretValue");
    assert_eq!(secrets["Resource"][0]["Ref"], "PrivateKeySecretArn");

    let origins = r["Distribution"]["Properties"]["DistributionConfig"]["Origins"]
        .as_array()
        .unwrap();
    let api = origins
        .iter()
        .find(|o| o["Id"] == "api")
        .expect("api origin");
    assert_eq!(
        api["CustomOriginConfig"]["OriginProtocolPolicy"],
        "https-only"
    );
    assert!(
        api["DomainName"]
            .to_string()
            .contains("ApiFunctionUrl.FunctionUrl")
            || api["DomainName"].to_string().contains("\"ApiFunctionUrl\""),
        "{}",
        api["DomainName"]
    );
}

/// Uploads from the site (`UploadOrigin`): the API function may start, complete and abort
/// multipart uploads under the input prefix and nothing more, the bucket lets that origin PUT
/// parts and read their ETag, abandoned uploads are aborted, and bearer auth is required.
#[test]
fn template_wires_uploads_from_the_site() {
    let t = template();
    let r = &t["Resources"];
    let f = &r["ApiFunction"]["Properties"];
    let env = &f["Environment"]["Variables"];
    assert_eq!(
        env["HLSPIPE_UPLOADS"]["Fn::If"],
        serde_json::json!(["HasUploads", "on", "off"])
    );
    assert_eq!(env["HLSPIPE_INPUT_PREFIX"]["Ref"], "InputPrefix");

    let statements = f["Policies"][0]["Statement"].as_array().unwrap();
    let upload = statements
        .iter()
        .find_map(|s| s["Fn::If"].as_array().filter(|i| i[0] == "HasUploads"))
        .expect("a statement only with uploads");
    assert_eq!(upload[2]["Ref"], "AWS::NoValue");
    let write = &upload[1];
    assert_eq!(write["Sid"], "WriteUploads");
    assert_eq!(
        write["Action"],
        serde_json::json!(["s3:PutObject", "s3:AbortMultipartUpload"])
    );
    let resource = write["Resource"]["Fn::Sub"].as_str().unwrap();
    assert!(
        resource.ends_with(":s3:::${BucketName}/${InputPrefix}*"),
        "{resource}"
    );

    let bucket = &r["MediaBucket"]["Properties"];
    let cors = &bucket["CorsConfiguration"]["Fn::If"];
    assert_eq!(cors[0], "HasUploads");
    let rule = &cors[1]["CorsRules"][0];
    assert_eq!(rule["AllowedMethods"], serde_json::json!(["PUT"]));
    assert_eq!(rule["AllowedOrigins"][0]["Ref"], "UploadOrigin");
    assert_eq!(rule["ExposedHeaders"], serde_json::json!(["ETag"]));
    let lifecycle = &bucket["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(lifecycle["Prefix"]["Ref"], "InputPrefix");
    assert!(lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_number());

    let rule = &t["Rules"]["UploadsNeedBearer"];
    assert_eq!(rule["Assertions"][0]["Assert"]["Fn::Equals"][1], "bearer");
}
