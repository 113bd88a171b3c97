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
pub(crate) fn template() -> Value {
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

    // Visibility timeout ≥ 6 × function timeout ("Using Lambda with Amazon SQS"), derived
    // from it for every allowed timeout, so the event source mapping can always be created.
    let timeouts = p["FunctionTimeoutSeconds"]["AllowedValues"]
        .as_array()
        .unwrap();
    for timeout in timeouts {
        let key = timeout.to_string();
        let row = &t["Mappings"]["Timeouts"][key.trim_matches('"')];
        let seconds: f64 = key.trim_matches('"').parse().unwrap();
        assert!(seconds <= 900.0);
        assert!(
            row["VisibilityTimeout"].as_f64().unwrap() >= 6.0 * seconds,
            "{row}"
        );
        assert_eq!(
            row["DurationAlarmMs"].as_f64().unwrap(),
            seconds * 800.0,
            "{row}"
        );
    }
    assert_eq!(
        r["UploadQueue"]["Properties"]["VisibilityTimeout"]["Fn::FindInMap"][1]["Ref"],
        "FunctionTimeoutSeconds"
    );
    // Alarms: dead letters, errors, throttles, durations near the timeout, a backlog.
    for alarm in [
        "DeadLetterAlarm",
        "OldestUploadAlarm",
        "PackagerErrorsAlarm",
        "PackagerThrottlesAlarm",
        "PackagerDurationAlarm",
    ] {
        let a = &r[alarm]["Properties"];
        assert_eq!(a["AlarmActions"]["Fn::If"][0], "HasAlarmTopic", "{alarm}");
        assert_eq!(a["TreatMissingData"], "notBreaching", "{alarm}");
    }
    assert_eq!(
        r["ApiFunction"]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"],
        "ApiLogGroup"
    );
    assert!(r["UploadQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"].is_object());

    let f = &r["PackagerFunction"]["Properties"];
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Handler"], "bootstrap");
    let sqs = &f["Events"]["Uploads"]["Properties"];
    assert_eq!(
        sqs["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    assert_eq!(
        sqs["ScalingConfig"]["MaximumConcurrency"]["Ref"],
        "MaximumConcurrency"
    );
    assert_eq!(f["LoggingConfig"]["SystemLogLevel"], "INFO");
    assert_eq!(f["LoggingConfig"]["LogGroup"]["Ref"], "PackagerLogGroup");
    // Its own role (SAM would attach AWSLambdaSQSQueueExecutionRole, `Resource: *`, for an
    // SQS event): CloudFront may only be asked for invalidations, nothing is `*`.
    assert_eq!(
        f["Role"]["Fn::GetAtt"],
        serde_json::json!(["PackagerRole", "Arn"])
    );
    assert!(f["Policies"].is_null());
    let role = &r["PackagerRole"]["Properties"];
    assert!(role["ManagedPolicyArns"].is_null());
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let write = statements
        .iter()
        .find(|s| s["Sid"] == "WriteTitles")
        .unwrap();
    assert!(write["Action"]
        .to_string()
        .contains("s3:AbortMultipartUpload"));
    // Title events: PutEvents on the one bus, and the bus named to the function.
    let announce = statements
        .iter()
        .find_map(|s| s["Fn::If"].as_array().filter(|i| i[0] == "HasTitleEvents"))
        .expect("an AnnounceTitles statement");
    assert_eq!(announce[1]["Action"], "events:PutEvents");
    assert!(announce[1]["Resource"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .ends_with(":event-bus/${TitleEventBus}"));
    assert_eq!(
        f["Environment"]["Variables"]["HLSPIPE_EVENT_BUS"]["Fn::If"][1]["Ref"],
        "TitleEventBus"
    );
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
    assert_eq!(
        env["HLSPIPE_KEY_PAIR_ID"]["Fn::If"],
        serde_json::json!(["HasFirstKey", {"Ref": "SigningPublicKey"}, {"Ref": "SecondSigningPublicKey"}])
    );
    let cdn = &env["HLSPIPE_CDN_BASE_URL"]["Fn::If"];
    assert_eq!(cdn[0], "HasAlternateDomain");
    assert_eq!(cdn[1]["Fn::Sub"], "https://${AlternateDomainName}");
    assert_eq!(cdn[2]["Ref"], "CdnBaseUrl");
    let text = env.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("SigningPublicKeyPem"),
        "{text}"
    );
    assert_eq!(t["Parameters"]["PrivateKeySecretArn"]["Type"], "String");
    assert!(t["Rules"]["BearerNeedsItsToken"].is_object());
    assert!(t["Rules"]["JwtNeedsItsKeys"].is_object());
    // Each optional setting reaches the function only when given (an empty variable would
    // be read as "set"), and the JWT ones only with ApiAuth jwt.
    for (var, condition, parameter) in [
        (
            "HLSPIPE_API_TOKEN_SECRET",
            "HasApiToken",
            "ApiTokenSecretArn",
        ),
        ("HLSPIPE_JWT_JWKS_URL", "IsJwt", "JwtJwksUrl"),
        ("HLSPIPE_JWT_ISSUER", "HasJwtIssuer", "JwtIssuer"),
        ("HLSPIPE_JWT_AUDIENCE", "HasJwtAudience", "JwtAudience"),
        (
            "HLSPIPE_JWT_TITLES_CLAIM",
            "HasJwtTitlesClaim",
            "JwtTitlesClaim",
        ),
        (
            "HLSPIPE_ALLOW_ORIGIN",
            "HasAllowedOrigins",
            "AllowedOrigins",
        ),
        ("HLSPIPE_COOKIE_DOMAIN", "HasCookieDomain", "CookieDomain"),
    ] {
        let when = &env[var]["Fn::If"];
        assert_eq!(when[0], condition, "{var}");
        assert_eq!(when[1]["Ref"], parameter, "{var}");
        assert_eq!(when[2]["Ref"], "AWS::NoValue", "{var}");
        assert!(t["Conditions"][condition].is_object(), "{condition}");
    }
    let auth = t["Parameters"]["ApiAuth"]["AllowedValues"].to_string();
    assert!(auth.contains("jwt") && auth.contains("bearer") && auth.contains("none"));

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

/// The parameters of the deploy command printed in `workers/lambda/README.md`, split as the
/// shell and then `sam deploy --parameter-overrides` split them (the SAM CLI re-splits the
/// overrides at spaces, aws-sam-cli #2018): `(key, value as written)`.
fn readme_overrides() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("workers/lambda/README.md")).unwrap();
    let start = readme
        .find("sam deploy --stack-name")
        .expect("a sam deploy command");
    let mut command = String::new();
    for line in readme[start..].lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(continued) => command.push_str(continued),
            None => {
                command.push_str(line);
                break;
            }
        }
    }
    let overrides = command
        .split_once("--parameter-overrides")
        .expect("--parameter-overrides")
        .1;
    overrides
        .split_whitespace()
        .take_while(|w| !w.starts_with("--"))
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("{w:?} is not KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Regression (deployment issue, item 5): the documented command passed the PEM as
/// `SigningPublicKeyPem="$(cat signing.pub.pem)"`, which the SAM CLI cut at the first space.
/// Every override is now one word: a literal without quotes or spaces, or one quoted
/// variable holding an ARN. And every parameter without a default is given.
#[test]
fn readme_deploy_command_passes_every_parameter_in_one_word_regression_pem_cut_at_space() {
    let t = template();
    let overrides = readme_overrides();
    assert!(overrides.len() >= 8, "{overrides:?}");
    for (key, value) in &overrides {
        assert!(t["Parameters"][key].is_object(), "{key} is not a parameter");
        let variable = value
            .strip_prefix("\"$")
            .and_then(|v| v.strip_suffix('"'))
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        let literal = !value.is_empty() && !value.contains(['"', '\'', '$', '(', '`']);
        assert!(variable || literal, "{key}={value} could split at a space");
    }
    let given: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
    for (name, p) in t["Parameters"].as_object().unwrap() {
        if p["Default"].is_null() {
            assert!(
                given.contains(&name.as_str()),
                "{name} has no default and is not given"
            );
        }
    }
    // The variables are set, from commands printing one ARN, earlier in the same block.
    let readme = std::fs::read_to_string(repo_root().join("workers/lambda/README.md")).unwrap();
    for (_, value) in overrides.iter().filter(|(_, v)| v.starts_with('"')) {
        let name = value.trim_matches(['"', '$']);
        assert!(
            readme.contains(&format!("{name}=$(aws ")) && readme.contains("--query"),
            "{name} is never set"
        );
    }
}

/// What `sam package` + `sam deploy` would do, without an account: the SAM transform
/// (aws-sam-translator) over the template with the README's parameters, then cfn-lint over
/// what it produced. Catches what the transform rejects (a CodeUri it cannot package, an
/// event it cannot wire) and what SAM adds behind our back (a managed policy with `*`).
/// The README's deploy parameters, its variables given example values.
fn readme_parameters() -> Vec<(String, String)> {
    readme_overrides()
        .into_iter()
        .map(|(key, value)| {
            let value = match value.trim_matches('"') {
                "$CERT_ARN" => "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f".into(),
                "$KEY_ARN" => {
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hlspipe/signing-key-AbCdEf"
                        .into()
                }
                "$TOKEN_ARN" => {
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hlspipe/api-token-AbCdEf"
                        .into()
                }
                v => v.to_owned(),
            };
            assert!(!value.starts_with('$'), "{key}: unknown variable {value}");
            (key, value)
        })
        .collect()
}

/// `sam package` + the SAM transform over `template` with `parameters`, then cfn-lint over
/// what it produced: the transformed template, or the refusal's message.
fn sam_transform(
    template: &std::path::Path,
    parameters: &[(String, String)],
) -> Result<Value, String> {
    let mut cmd = Command::new(venv_tool("python", "HLSPIPE_CFN_PYTHON"));
    cmd.arg(repo_root().join("tests/aws/sam_transform.py"))
        .arg(template);
    for (key, value) in parameters {
        cmd.arg(format!("{key}={value}"));
    }
    let out = cmd.output().expect("python runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transformed.json");
    std::fs::write(&path, &out.stdout).unwrap();
    let lint = Command::new(venv_tool("cfn-lint", "HLSPIPE_CFN_LINT"))
        .arg(&path)
        .output()
        .expect("cfn-lint runs");
    assert!(
        lint.status.success() && lint.stdout.is_empty(),
        "cfn-lint on the transformed template:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_sam_transform_accepts_the_template_and_its_output_lints_clean() {
    let transformed = sam_transform(
        &repo_root().join("deploy/template.yaml"),
        &readme_parameters(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let resources = transformed["Resources"].as_object().unwrap();
    assert!(transformed.get("Transform").is_none());
    for (name, r) in resources {
        let managed = r["Properties"]["ManagedPolicyArns"].to_string();
        assert!(
            !managed.contains("SQSQueueExecutionRole"),
            "{name}: {managed}"
        );
    }
    assert_eq!(
        resources["PackagerFunction"]["Type"],
        "AWS::Lambda::Function"
    );
    assert!(
        resources.contains_key("PackagerFunctionUploads"),
        "the SQS event source mapping"
    );
    assert!(resources.contains_key("ApiFunctionUrl"));

    let dir = tempfile::tempdir().unwrap();
    // A CodeUri that `sam package` cannot upload is refused, as it would be there.
    let bad = std::fs::read_to_string(repo_root().join("deploy/template.yaml"))
        .unwrap()
        .replace("CodeUri: ../workers/lambda", "CodeUri: !Ref AWS::StackName");
    let bad_path = dir.path().join("bad.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let refused = sam_transform(&bad_path, &[]).expect_err("refused");
    assert!(refused.contains("CodeUri"), "{refused}");
}

/// The distribution as a site uses it (deployment issue, items 3, 4, 10-13): its alternate
/// domain and certificate, credentialed CORS on the media, compressed playlists, two key
/// slots, names that include the region, a bucket that outlives the stack and drops
/// abandoned multipart parts, and no viewer reading `manifest.json`.
#[test]
fn template_wires_the_domain_cors_keys_and_bucket_for_production() {
    let t = template();
    let r = &t["Resources"];
    let dist = &r["Distribution"]["Properties"]["DistributionConfig"];
    assert_eq!(dist["Aliases"]["Fn::If"][0], "HasAlternateDomain");
    assert_eq!(
        dist["Aliases"]["Fn::If"][1][0]["Ref"],
        "AlternateDomainName"
    );
    let cert = &dist["ViewerCertificate"]["Fn::If"];
    assert_eq!(cert[0], "HasAlternateDomain");
    assert_eq!(cert[1]["AcmCertificateArn"]["Ref"], "CertificateArn");
    assert_eq!(cert[1]["SslSupportMethod"], "sni-only");
    assert_eq!(cert[2]["CloudFrontDefaultCertificate"], true);
    let pattern = t["Parameters"]["CertificateArn"]["AllowedPattern"]
        .as_str()
        .unwrap();
    assert!(pattern.contains("us-east-1"), "{pattern}");
    assert!(t["Rules"]["ViewersNeedAnAddress"].is_object());
    assert!(t["Rules"]["SomeKeySigns"].is_object());

    let cors = &r["MediaCorsPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"];
    assert_eq!(r["MediaCorsPolicy"]["Condition"], "HasAllowedOrigins");
    assert_eq!(cors["AccessControlAllowCredentials"], true);
    assert_eq!(cors["OriginOverride"], true);
    assert_eq!(
        cors["AccessControlAllowOrigins"]["Items"]["Fn::Split"][1]["Ref"],
        "AllowedOrigins"
    );
    assert!(!cors.to_string().contains("\"*\""), "{cors}");
    assert!(cors["AccessControlExposeHeaders"]
        .to_string()
        .contains("Content-Range"));
    let mut media = vec![&dist["DefaultCacheBehavior"]];
    media.extend(
        dist["CacheBehaviors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["TargetOriginId"] == "media"),
    );
    assert_eq!(media.len(), 3);
    for b in media {
        assert_eq!(b["Compress"], true, "{b}");
        assert_eq!(
            b["ResponseHeadersPolicyId"]["Fn::If"][1]["Ref"],
            "MediaCorsPolicy"
        );
    }
    let versioned = &r["VersionedCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!(
        versioned["ParametersInCacheKeyAndForwardedToOrigin"]["EnableAcceptEncodingGzip"],
        true
    );
    // The origin's Cache-Control decides under v/: a year for segments and VOD playlists, a
    // second for a growing event.m3u8 (a MinTTL above it would freeze it at the edge).
    assert_eq!(versioned["MinTTL"], 0, "{versioned}");
    assert_eq!(versioned["DefaultTTL"], 31536000);
    assert_eq!(versioned["MaxTTL"], 31536000);

    let items = &r["SigningKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"];
    assert_eq!(items[0]["Fn::If"][1]["Ref"], "SigningPublicKey");
    assert_eq!(items[1]["Fn::If"][1]["Ref"], "SecondSigningPublicKey");
    for key in ["SigningPublicKey", "SecondSigningPublicKey"] {
        let encoded = r[key]["Properties"]["PublicKeyConfig"]["EncodedKey"]["Fn::Sub"]
            .as_str()
            .unwrap();
        assert!(encoded.starts_with("{{resolve:ssm:${"), "{key}: {encoded}");
    }
    for (name, path) in [
        ("SigningPublicKey", "/PublicKeyConfig/Name"),
        ("SigningKeyGroup", "/KeyGroupConfig/Name"),
        (
            "MediaOriginAccessControl",
            "/OriginAccessControlConfig/Name",
        ),
        ("MasterCachePolicy", "/CachePolicyConfig/Name"),
        ("VersionedCachePolicy", "/CachePolicyConfig/Name"),
    ] {
        let value = r[name]["Properties"].pointer(path).unwrap().to_string();
        assert!(value.contains("${AWS::Region}"), "{name}: {value}");
    }

    let bucket = &r["MediaBucket"];
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    let rule = &bucket["Properties"]["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(
        rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
        1
    );
    let statements = r["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a deny");
    assert!(
        deny["Resource"].to_string().contains("manifest.json"),
        "{deny}"
    );
    assert_eq!(deny["Principal"]["Service"], "cloudfront.amazonaws.com");
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
    let lifecycle = &bucket["LifecycleConfiguration"]["Rules"][1];
    assert_eq!(lifecycle["Prefix"]["Ref"], "InputPrefix");
    assert!(lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].is_number());

    let rule = &t["Rules"]["UploadsNeedAnAuthoriser"];
    assert_eq!(
        rule["Assertions"][0]["Assert"]["Fn::Not"][0]["Fn::Equals"][1],
        "none"
    );
}

/// Deployment issue, items 7 and 14: long titles go to an optional ECS Fargate fleet of
/// `hlspipe worker`, fed by a queue of its own, scaling from zero on that queue's depth and
/// draining on SIGTERM within the task's stop timeout.
#[test]
fn template_runs_long_titles_on_a_fleet_that_scales_from_zero_on_its_queue() {
    let t = template();
    let r = &t["Resources"];
    let fleet: Vec<&str> = r
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("Fleet"))
        .map(|(name, res)| {
            assert_eq!(
                res["Condition"], "HasFleet",
                "{name} exists without a fleet"
            );
            name.as_str()
        })
        .collect();
    assert!(fleet.len() >= 12, "{fleet:?}");
    assert_eq!(
        t["Conditions"]["HasFleet"].to_string(),
        r#"{"Fn::Not":[{"Fn::Equals":[{"Ref":"FleetImageUri"},""]}]}"#
    );

    // The packager hands long titles over: the queue and threshold in its environment, the
    // right to send and nothing more on that queue.
    let env = &r["PackagerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["HLSPIPE_FLEET_QUEUE_URL"]["Fn::If"][1]["Ref"],
        "FleetQueue"
    );
    assert_eq!(
        env["HLSPIPE_FLEET_MIN_BYTES"]["Fn::If"][1]["Ref"],
        "FleetMinBytes"
    );
    let packager =
        r["PackagerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].to_string();
    assert!(packager.contains(r#""Action":"sqs:SendMessage","Effect":"Allow","Resource":{"Fn::GetAtt":["FleetQueue","Arn"]}"#), "{packager}");

    // The task: the worker on the fleet's queue, stopping within ECS's stop timeout.
    let task = &r["FleetTaskDefinition"]["Properties"];
    let container = &task["ContainerDefinitions"][0];
    let command = container["Command"].as_array().unwrap();
    assert_eq!(command[0], "worker");
    let flag = |name: &str| {
        let at = command
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name}"));
        command[at + 1].clone()
    };
    assert_eq!(flag("--queue-url")["Ref"], "FleetQueue");
    let grace: u64 = flag("--grace-seconds").as_str().unwrap().parse().unwrap();
    let stop = container["StopTimeout"].as_u64().unwrap();
    assert!(
        stop <= 120 && grace + 10 <= stop,
        "grace {grace} s, stop timeout {stop} s"
    );
    let visibility: u64 = flag("--visibility-seconds")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        r["FleetQueue"]["Properties"]["VisibilityTimeout"],
        visibility
    );
    assert_eq!(container["ReadonlyRootFilesystem"], true);
    assert_eq!(task["RequiresCompatibilities"][0], "FARGATE");
    let names: Vec<&str> = container["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    for var in [
        "HLSPIPE_INPUT_PREFIX",
        "HLSPIPE_OUTPUT_PREFIX",
        "HLSPIPE_DISTRIBUTION_ID",
    ] {
        assert!(names.contains(&var), "{var} not in {names:?}");
    }
    // The transcoding stage: the same ladder for the function (ffmpeg from the layer) and
    // the fleet (ffmpeg in its image), and a rule that a ladder has an ffmpeg somewhere.
    assert!(names.contains(&"HLSPIPE_LADDER"), "{names:?}");
    assert_eq!(env["HLSPIPE_LADDER"]["Ref"], "Ladder");
    assert_eq!(env["HLSPIPE_FFMPEG"]["Fn::If"][1], "/opt/bin/ffmpeg");
    let layers = r["PackagerFunction"]["Properties"]["Layers"].to_string();
    assert!(layers.contains("FfmpegLayerArn"), "{layers}");
    assert!(t["Rules"]["LadderNeedsFfmpeg"].is_object());
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/worker.Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(" ffmpeg"),
        "the fleet's image has ffmpeg"
    );
    // The task role reads uploads, writes titles, consumes only its own queue.
    let role = r["FleetTaskRole"]["Properties"]["Policies"][0]["PolicyDocument"].to_string();
    assert!(!role.contains(r#""Resource":"*""#), "{role}");
    assert!(
        role.contains(r#"{"Fn::GetAtt":["FleetQueue","Arn"]}"#),
        "{role}"
    );
    assert!(!role.contains("UploadQueue"), "{role}");

    // Zero tasks at rest; the depth of waiting messages scales out; nothing waiting or in
    // flight (titles being packaged) scales in.
    assert_eq!(r["FleetService"]["Properties"]["DesiredCount"], 0);
    let target = &r["FleetScalableTarget"]["Properties"];
    assert_eq!(target["MinCapacity"], 0);
    assert_eq!(target["MaxCapacity"]["Ref"], "FleetMaxTasks");
    let out = &r["FleetBacklogAlarm"]["Properties"];
    assert_eq!(out["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(out["AlarmActions"][0]["Ref"], "FleetScaleOutPolicy");
    let idle = r["FleetIdleAlarm"]["Properties"].to_string();
    for metric in [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
    ] {
        assert!(idle.contains(metric), "{idle}");
    }
    assert!(idle.contains("FleetScaleInPolicy"), "{idle}");
    let steps = r["FleetScaleInPolicy"]["Properties"]["StepScalingPolicyConfiguration"].to_string();
    assert!(steps.contains(r#""ScalingAdjustment":0"#), "{steps}");
    // A dead letter of the fleet is paged like the function's.
    assert_eq!(
        r["FleetDeadLetterAlarm"]["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        "FleetDeadLetterQueue"
    );
}

/// A tool of the scanners' virtualenv (`scripts/install-aws-test-deps.sh`).
fn scan_tool(name: &str) -> PathBuf {
    let path = repo_root().join(".test-deps/scan-venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/install-aws-test-deps.sh`",
        path.display()
    );
    path
}

/// Deployment issue, checks: an IaC scanner over the template, every finding fixed or
/// suppressed in the template with its reason (`Metadata: checkov: skip:`).
#[test]
fn checkov_finds_nothing_that_is_not_fixed_or_explained() {
    let out = Command::new(scan_tool("checkov"))
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "-f",
        ])
        .arg(repo_root().join("deploy/template.yaml"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's report: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let results = &report["results"];
    let failed: Vec<String> = results["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov findings:\n{}",
        failed.join("\n")
    );
    let passed = report["summary"]["passed"].as_u64().unwrap();
    assert!(
        passed >= 30,
        "only {passed} checks passed: did checkov read the template?"
    );
    let skipped = results["skipped_checks"].as_array().unwrap();
    for check in skipped {
        let reason = check["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(
            reason.len() >= 30,
            "{} on {}: no reason given",
            check["check_id"],
            check["resource"]
        );
    }
    eprintln!(
        "checkov: {passed} passed, 0 failed, {} suppressed with reasons",
        skipped.len()
    );
}

fn parliament(template: &Value) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.json");
    std::fs::write(&path, template.to_string()).unwrap();
    let mut cmd = Command::new(scan_tool("python"));
    cmd.arg(repo_root().join("tests/aws/iam_lint.py"))
        .arg(&path);
    for (key, value) in readme_parameters() {
        cmd.arg(format!("{key}={value}"));
    }
    cmd.output().expect("python runs")
}

/// Deployment issue, checks: the IAM policy documents linted (parliament) as CloudFormation
/// would create them, after the SAM transform (which writes the API function's role).
#[test]
fn parliament_finds_nothing_in_the_stack_s_iam_policies() {
    let transformed = sam_transform(
        &repo_root().join("deploy/template.yaml"),
        &readme_parameters(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = parliament(&transformed);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "parliament:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let linted: usize = report.split_whitespace().next().unwrap().parse().unwrap();
    assert!(linted >= 5, "{report}");

    // The linter sees a policy that does not fit: an object action on the bucket's ARN.
    let mut bad = transformed.clone();
    let statements = bad["Resources"]["PackagerRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.push(serde_json::json!({
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}
    }));
    let out = parliament(&bad);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && report.contains("RESOURCE_MISMATCH"),
        "{report}"
    );
}
