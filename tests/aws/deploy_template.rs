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
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("cloudfront:"))
            .count(),
        1
    );

    // Every cache behaviour needs signed requests.
    let dist = &r["Distribution"]["Properties"]["DistributionConfig"];
    assert!(dist["DefaultCacheBehavior"]["TrustedKeyGroups"].is_array());
    for b in dist["CacheBehaviors"].as_array().unwrap() {
        assert!(b["TrustedKeyGroups"].is_array(), "{b}");
    }
    assert!(dist["Origins"][0]["OriginAccessControlId"].is_object());
}
