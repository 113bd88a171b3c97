//! The queue consumer and `reprocess` against real servers on 127.0.0.1 (moto: S3, SQS,
//! S3 → SQS notifications, CloudFront): `hlspipe worker` runs as a child process, picks
//! up the notification S3 itself sends, publishes through the S3 store; the title read
//! back from S3 decodes with ffmpeg; a corrupt upload gets a `failed` manifest and the
//! worker goes on; SIGTERM ends it with 0; a re-publish by `reprocess` creates exactly
//! one CloudFront invalidation, of the master.

use crate::support::s3::{bucket_name, S3Server};
use crate::support::{assert_decodes, fixture, repo_root, stderr, stdout};
use hlspipe::pipeline::event::{parse_message_body, RecordKind};
use hlspipe::store::{S3Store, Store};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn media() -> Vec<u8> {
    std::fs::read(fixture("h264_aac_faststart.mp4")).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn sqs(endpoint: &str) -> aws_sdk_sqs::Client {
    let creds = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A queue and its ARN.
async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .cloned()
        .unwrap();
    (url, arn)
}

/// Messages still on the queue, visible or in flight.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// What S3 sends for uploads under `uploads/` of `bucket`: the bucket's notification
/// configuration, as the deployment template sets it.
fn notify_queue(server: &S3Server, bucket: &str, queue_arn: &str) {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let client = server.client();
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value("uploads/")
                        .build(),
                )
                .build(),
        )
        .build();
    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(queue_arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .events(Event::from("s3:ObjectRemoved:*"))
                .filter(filter)
                .build()
                .unwrap(),
        )
        .build();
    runtime()
        .block_on(
            client
                .sdk()
                .put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(config)
                .send(),
        )
        .unwrap();
}

/// A new bucket on the shared server whose uploads S3 announces on a new queue.
struct Notified {
    /// The server lives as long as this.
    _server: std::sync::Arc<S3Server>,
    endpoint: String,
    name: String,
    store: std::sync::Arc<S3Store>,
    rt: tokio::runtime::Runtime,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

fn notified(label: &str) -> Notified {
    let server = S3Server::shared();
    let endpoint = server.endpoint();
    let name = bucket_name(label);
    let store = server.bucket(&name);
    let rt = runtime();
    let sqs = rt.block_on(sqs(&endpoint));
    let (queue_url, queue_arn) = rt.block_on(queue(&sqs, &format!("{name}-uploads")));
    notify_queue(&server, &name, &queue_arn);
    Notified {
        _server: server,
        endpoint,
        name,
        store,
        rt,
        sqs,
        queue_url,
    }
}

fn put(store: &S3Store, key: &str, bytes: Vec<u8>) {
    let obj = hlspipe::media::object::Object {
        key: key.to_string(),
        content_type: "video/mp4",
        cache_control: "no-cache",
        body: hlspipe::media::object::Body::from_bytes(bytes),
    };
    store.put(key, &obj, &[]).unwrap();
}

fn hlspipe(endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = S3Server::hlspipe_for(endpoint);
    cmd.envs(env.iter().copied()).args(args);
    cmd
}

/// The title's `manifest.json`, which must be there.
fn read_manifest(store: &S3Store, title_prefix: &str) -> serde_json::Value {
    let key = format!("{title_prefix}manifest.json");
    serde_json::from_slice(&store.get(&key).unwrap().unwrap()).unwrap()
}

fn manifest_state(store: &S3Store, title_prefix: &str) -> Option<String> {
    let bytes = store.get(&format!("{title_prefix}manifest.json")).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["state"].as_str().map(String::from)
}

/// Copies the title's objects out of the bucket and decodes its master with ffmpeg.
pub(crate) fn assert_title_decodes(store: &S3Store, title_prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let objects = store.list(title_prefix).unwrap();
    assert!(!objects.is_empty());
    for o in &objects {
        let rel = &o.key[title_prefix.len()..];
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, store.get(&o.key).unwrap().unwrap()).unwrap();
    }
    assert_decodes(&dir.path().join("master.m3u8"));
}

struct Pipeline {
    child: Child,
    log: PathBuf,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pipeline {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as ECS or a terminal sends it: the worker must exit 0 within `limit`; how
    /// long it took.
    fn stop_with_sigterm(&mut self, limit: Duration) -> Duration {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < limit,
                "still running {limit:?} after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0), "{}", self.log());
        started.elapsed()
    }
}

fn wait_for(what: &str, worker: &Pipeline, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "timed out waiting for {what}; worker log:\n{}",
        worker.log()
    );
}

#[test]
fn worker_consumes_s3_notifications_and_stops_on_sigterm() {
    let Notified {
        _server,
        endpoint,
        store,
        rt,
        sqs,
        queue_url,
        ..
    } = notified("worker-notifications");

    // The corrupt upload first: the worker must go on to the next message.
    put(
        &store,
        "uploads/shows/broken clip.mp4",
        b"not an mp4 at all".to_vec(),
    );
    let key = "uploads/shows/Épisode 1 — première.mp4";
    put(&store, key, media());

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let child = hlspipe(
        &endpoint,
        &[
            "worker",
            "--queue-url",
            &queue_url,
            "--wait-seconds",
            "1",
            "--visibility-seconds",
            "30",
            "--grace-seconds",
            "5",
        ],
        &[],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let worker = Pipeline { child, log };

    let good = "hls/shows/Épisode 1 — première.hls/";
    let bad = "hls/shows/broken clip.hls/";
    wait_for("both titles", &worker, Duration::from_secs(120), || {
        manifest_state(&store, good).as_deref() == Some("complete")
            && manifest_state(&store, bad).as_deref() == Some("failed")
    });
    assert_title_decodes(&store, good);
    assert!(store.head(&format!("{bad}master.m3u8")).unwrap().is_none());
    // Every message was deleted: the permanent failure too (no retry storm).
    wait_for("an empty queue", &worker, Duration::from_secs(30), || {
        rt.block_on(queue_depth(&sqs, &queue_url)) == 0
    });
    let log_text = worker.log();
    let job_lines: Vec<serde_json::Value> = log_text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "hlspipe::job")
        .collect();
    assert!(
        job_lines
            .iter()
            .any(|v| v["outcome"] == "processed" && v["key"] == key && v["elapsed_ms"].is_u64()),
        "{log_text}"
    );
    assert!(
        job_lines
            .iter()
            .any(|v| v["outcome"] == "failed" && v["retryable"] == false),
        "{log_text}"
    );

    // SIGTERM: exits 0, promptly.
    let mut worker = worker;
    worker.stop_with_sigterm(Duration::from_secs(10));
    assert!(worker.log().contains("worker stopped"), "{}", worker.log());
}

/// CloudFront in moto: a distribution to invalidate, and what was asked of it. Through
/// the moto virtualenv's boto3 (the distribution config is long to build by hand).
fn cloudfront(endpoint: &str, script: &str, arg: &str) -> String {
    let python = repo_root().join(".test-deps/s3-venv/bin/python");
    let prelude = format!(
        "import boto3, json, sys\n\
         cf = boto3.client('cloudfront', endpoint_url='{endpoint}', region_name='us-east-1', \
         aws_access_key_id='test', aws_secret_access_key='test')\n"
    );
    let out = Command::new(python)
        .args(["-c", &format!("{prelude}{script}"), arg])
        .output()
        .expect("the moto virtualenv's python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const CREATE_DISTRIBUTION: &str = "d = cf.create_distribution(DistributionConfig={\
    'CallerReference': sys.argv[1], 'Comment': '', 'Enabled': True,\
    'Origins': {'Quantity': 1, 'Items': [{'Id': 'media', 'DomainName': 'media.s3.amazonaws.com',\
      'S3OriginConfig': {'OriginAccessIdentity': ''}}]},\
    'DefaultCacheBehavior': {'TargetOriginId': 'media', 'ViewerProtocolPolicy': 'https-only',\
      'CachePolicyId': '658327ea-f89d-4fab-a63d-7e88639e58f6'}})\n\
print(d['Distribution']['Id'])";

const LIST_INVALIDATIONS: &str = "items = cf.list_invalidations(DistributionId=sys.argv[1])['InvalidationList'].get('Items', [])\n\
    batches = [cf.get_invalidation(DistributionId=sys.argv[1], Id=s['Id'])['Invalidation']['InvalidationBatch'] for s in items]\n\
    print(json.dumps([{'paths': b['Paths'].get('Items', []), 'ref': b['CallerReference']} for b in batches]))";

fn output(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

#[test]
fn reprocess_republishes_and_invalidates_only_the_master() {
    let server = S3Server::shared();
    let endpoint = server.endpoint();
    let name = bucket_name("reprocess-invalidation");
    let store = server.bucket(&name);
    let key = "uploads/films/Café crème (2024).mp4";
    put(&store, key, media());
    put(&store, "uploads/films/notes.txt", b"not media".to_vec());
    let distribution = cloudfront(&endpoint, CREATE_DISTRIBUTION, &name);
    let prefix = format!("s3://{name}/uploads/films/");

    let first = hlspipe(
        &endpoint,
        &["reprocess", "--prefix", &prefix, "--json"],
        &[],
    )
    .output()
    .unwrap();
    assert!(first.status.success(), "{}", output(&first));
    let results: Vec<serde_json::Value> = stdout(&first)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("result").is_some())
        .collect();
    assert_eq!(results.len(), 1, "{}", stdout(&first));
    assert_eq!(results[0]["result"]["outcome"], "processed");

    // New settings: a new version; the master flips, and `--invalidate` invalidates it,
    // once, at the end (a reprocess sends none title by title); the run after finds the
    // title up to date and has nothing to invalidate.
    let env = [
        ("HLSPIPE_SEGMENT_DURATION", "2"),
        ("HLSPIPE_DISTRIBUTION_ID", distribution.as_str()),
    ];
    for _ in 0..2 {
        let again = hlspipe(
            &endpoint,
            &["reprocess", "--prefix", &prefix, "--json", "--invalidate"],
            &env,
        )
        .output()
        .unwrap();
        assert!(again.status.success(), "{}", output(&again));
    }
    let invalidations: serde_json::Value =
        serde_json::from_str(&cloudfront(&endpoint, LIST_INVALIDATIONS, &distribution)).unwrap();
    assert_eq!(
        invalidations.as_array().unwrap().len(),
        1,
        "the second run found the title up to date: {invalidations}"
    );
    assert_eq!(
        invalidations[0]["paths"],
        serde_json::json!(["/hls/films/Caf%C3%A9%20cr%C3%A8me%20(2024).hls/master.m3u8"])
    );
    assert!(invalidations[0]["ref"]
        .as_str()
        .unwrap()
        .starts_with("hlspipe-reprocess-"));
    assert_title_decodes(&store, "hls/films/Café crème (2024).hls/");
}

#[test]
fn reprocess_enqueue_sends_the_events_s3_would() {
    let server = S3Server::shared();
    let endpoint = server.endpoint();
    let name = bucket_name("reprocess-enqueue");
    let store = server.bucket(&name);
    let keys = ["uploads/a/one + two.mp4", "uploads/a/Ünïcode ✓.mov"];
    for k in keys {
        put(&store, k, media());
    }
    let rt = runtime();
    let sqs = rt.block_on(sqs(&endpoint));
    let (queue_url, _) = rt.block_on(queue(&sqs, &format!("{name}-q")));
    let out = hlspipe(
        &endpoint,
        &[
            "reprocess",
            "--bucket",
            &name,
            "--prefix",
            "uploads/",
            "--enqueue",
            "--queue-url",
            &queue_url,
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", output(&out));
    let received = rt
        .block_on(
            sqs.receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .send(),
        )
        .unwrap();
    let mut got: Vec<(String, Option<String>)> = received
        .messages
        .unwrap_or_default()
        .iter()
        .flat_map(|m| parse_message_body(m.body().unwrap(), m.message_id()))
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.kind, RecordKind::Created);
            (r.job.key, r.job.etag)
        })
        .collect();
    got.sort();
    let etag = store.head(keys[0]).unwrap().unwrap().etag;
    assert_eq!(
        got,
        [
            (keys[0].to_string(), Some(etag.clone())),
            (keys[1].to_string(), Some(etag)),
        ]
    );
}

/// The Lambda function's early retry (`SqsRedelivery`, deployment issue item 7) against
/// moto's SQS: a message received with a 10-minute visibility is back within seconds.
#[test]
fn a_retried_message_is_visible_again_after_its_delay() {
    use hlspipe::aws::sqs::{Redelivery, SqsRedelivery};
    let server = S3Server::shared();
    let rt = runtime();
    let sqs = rt.block_on(sqs(&server.endpoint()));
    let (url, _) = rt.block_on(queue(&sqs, &bucket_name("redelivery")));
    rt.block_on(async {
        sqs.send_message()
            .queue_url(&url)
            .message_body("{}")
            .send()
            .await
            .unwrap();
        let receive = || {
            sqs.receive_message()
                .queue_url(&url)
                .visibility_timeout(600)
                .wait_time_seconds(1)
                .send()
        };
        let first = receive().await.unwrap().messages.unwrap_or_default();
        assert_eq!(first.len(), 1);
        assert!(receive()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
            .is_empty());
        let receipt = first[0].receipt_handle.clone().unwrap();
        SqsRedelivery(sqs.clone())
            .delay(&url, &receipt, 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let again = receive().await.unwrap().messages.unwrap_or_default();
        assert_eq!(again.len(), 1, "the message did not come back after 1 s");
        assert_eq!(again[0].message_id, first[0].message_id);
    });
}

#[test]
fn a_job_handed_to_the_fleet_queue_reads_back_as_the_same_job() {
    use hlspipe::aws::sqs::{QueueSender, SqsSender};
    use hlspipe::pipeline::event::{s3_created_event, Job};
    let server = S3Server::shared();
    let rt = runtime();
    let sqs = rt.block_on(sqs(&server.endpoint()));
    let (url, _) = rt.block_on(queue(&sqs, &bucket_name("fleet")));
    let job = Job {
        bucket: "media".into(),
        key: "uploads/Long Film (4K) é+1.mov".into(),
        etag: Some("3858f62230ac3c915f300c664312c11f-120".into()),
        size: Some(12_884_901_888),
        sequencer: Some("0062F1A3B4C5D6EB07".into()),
    };
    rt.block_on(async {
        let sender = SqsSender(sqs.clone());
        sender
            .send(&url, s3_created_event(&job, 1_700_000_000))
            .await
            .unwrap();
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        assert_eq!(got.len(), 1);
        let body = got[0].body.as_deref().unwrap();
        let records = parse_message_body(body, got[0].message_id.as_deref());
        let [Ok(record)] = records.as_slice() else {
            panic!("{records:?}");
        };
        assert_eq!(record.kind, RecordKind::Created);
        assert_eq!(
            record.job, job,
            "a 12 GiB upload keeps its size, key and sequencer"
        );
        let missing = sender.send(&format!("{url}-missing"), "{}".into()).await;
        assert!(missing.is_err(), "a send to a missing queue is an error");
    });
}

/// The fleet's task runs `hlspipe` with the command the template gives it
/// (`deploy/template.yaml`, FleetTaskDefinition): those flags start a worker, and SIGTERM,
/// as ECS sends it, ends it with 0 well within the task's StopTimeout, even in the middle of
/// a 20-second long poll.
#[test]
fn the_fleet_task_s_command_starts_a_worker_that_drains_within_the_stop_timeout() {
    let t = crate::deploy_template::template();
    let container = &t["Resources"]["FleetTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    let stop_timeout = Duration::from_secs(container["StopTimeout"].as_u64().unwrap());
    let server = S3Server::shared();
    let endpoint = server.endpoint();
    let rt = runtime();
    let sqs = rt.block_on(sqs(&endpoint));
    let (queue_url, _) = rt.block_on(queue(&sqs, &bucket_name("fleet-task")));
    let args: Vec<String> = container["Command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a {
            serde_json::Value::String(s) => s.clone(),
            r if r["Ref"] == "FleetQueue" => queue_url.clone(),
            other => panic!("a command argument the test cannot stand in for: {other}"),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let child = hlspipe(&endpoint, &args, &[])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut worker = Pipeline { child, log };
    wait_for(
        "the worker to start",
        &worker,
        Duration::from_secs(30),
        || worker.log().contains("worker started"),
    );
    std::thread::sleep(Duration::from_secs(2)); // into its first long poll
    let took = worker.stop_with_sigterm(stop_timeout);
    eprintln!(
        "the worker stopped {took:?} after SIGTERM (ECS would SIGKILL it after {stop_timeout:?})"
    );
}

/// Starts `hlspipe worker` on `queue_url`, one message at a time, logging to `log`.
fn start_worker(endpoint: &str, queue_url: &str, env: &[(&str, &str)], log: PathBuf) -> Pipeline {
    let child = hlspipe(
        endpoint,
        &[
            "worker",
            "--queue-url",
            queue_url,
            "--concurrency",
            "1",
            "--wait-seconds",
            "1",
            "--visibility-seconds",
            "60",
            "--grace-seconds",
            "5",
        ],
        env,
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    Pipeline { child, log }
}

/// The JSON log lines of a worker whose message is `message`.
fn log_lines(worker: &Pipeline, message: &str) -> Vec<serde_json::Value> {
    worker
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message || v["fields"]["message"] == message)
        .collect()
}

#[test]
fn two_workers_share_a_ladder_s_chunks_and_publish_one_title() {
    let Notified {
        _server,
        endpoint,
        name,
        store,
        rt,
        sqs,
        queue_url,
    } = notified("ladder-fan-out");
    let source = crate::support::ladder_source_720p_16s();
    put(
        &store,
        "uploads/fan/clip.mp4",
        std::fs::read(source).unwrap(),
    );

    let env = [
        ("HLSPIPE_LADDER", "360p:500k,234p:200k"),
        ("HLSPIPE_CHUNK_SECONDS", "4"),
        ("HLSPIPE_SEGMENT_DURATION", "2"),
        // The title's 7 MB of segments go out in shares too.
        ("HLSPIPE_PUBLISH_SHARE_MIB", "1"),
        ("HLSPIPE_LOG_LEVEL", "info"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let workers = [
        start_worker(&endpoint, &queue_url, &env, dir.path().join("a.log")),
        start_worker(&endpoint, &queue_url, &env, dir.path().join("b.log")),
    ];
    let title = "hls/fan/clip.hls/";
    wait_for("the title", &workers[0], Duration::from_secs(240), || {
        manifest_state(&store, title).as_deref() == Some("complete")
    });
    // Each worker encoded some of the parts; together every part, each once.
    let parts: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            log_lines(w, "ladder part encoded")
                .iter()
                .map(|v| v["part"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    let logs = || format!("{}\n---\n{}", workers[0].log(), workers[1].log());
    assert!(
        parts.iter().all(|p| !p.is_empty()),
        "each worker does some parts: {parts:?}\n{}",
        logs()
    );
    let mut all: Vec<String> = parts.concat();
    all.sort();
    assert_eq!(
        all,
        [
            "chunk-00000",
            "chunk-00001",
            "chunk-00002",
            "chunk-00003",
            // The source is kept, with its own AAC sound: no `sound` part.
            "previews",
        ],
        "{}",
        logs()
    );
    // The segments were written in shares, each share once, by whichever worker took it.
    let mut shares: Vec<String> = workers
        .iter()
        .flat_map(|w| log_lines(w, "share of the segments written"))
        .map(|v| v["part"].as_str().unwrap_or_default().to_owned())
        .collect();
    shares.sort();
    let expected: Vec<String> = (0..shares.len())
        .map(|i| format!("publish-{i:05}"))
        .collect();
    assert!(shares.len() >= 3, "{shares:?}\n{}", logs());
    assert_eq!(shares, expected, "{}", logs());
    // One title, from the parts: four chunks, the rungs decode whole; no work left behind.
    let manifest = read_manifest(&store, title);
    assert_eq!(manifest["transcode"]["chunks"], 4, "{manifest}");
    let version = manifest["version"].as_str().unwrap().to_owned();
    // The worker that published removes the work folder after the manifest says complete.
    wait_for(
        "the work folder removed",
        &workers[0],
        Duration::from_secs(30),
        || store.list(&format!("{title}work/")).unwrap().is_empty(),
    );
    assert_title_decodes(&store, title);
    let rung = tempfile::tempdir().unwrap();
    let folder = format!("{title}v/{version}/video_360p/");
    let mut joined = Vec::new();
    let mut keys: Vec<String> = store
        .list(&folder)
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".m4s"))
        .collect();
    keys.sort();
    joined.extend(store.get(&format!("{folder}init.mp4")).unwrap().unwrap());
    for k in keys {
        joined.extend(store.get(&k).unwrap().unwrap());
    }
    let file = rung.path().join("360p.mp4");
    std::fs::write(&file, joined).unwrap();
    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&frames.stdout).trim(), "480");

    // A duplicate part message, after the title is out: harmless, and deleted.
    let duplicate = serde_json::json!({
        "hlspipe": "ladder-part",
        "bucket": name,
        "key": "uploads/fan/clip.mp4",
        "etag": store.head("uploads/fan/clip.mp4").unwrap().unwrap().etag,
        "version": version,
        "part": "chunk-00001",
    });
    rt.block_on(
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(duplicate.to_string())
            .send(),
    )
    .unwrap();
    wait_for(
        "the duplicate handled",
        &workers[0],
        Duration::from_secs(60),
        || {
            workers.iter().any(|w| {
                w.log()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .any(|v| v["outcome"] == "stale" && v["key"] == "uploads/fan/clip.mp4")
            }) && rt.block_on(queue_depth(&sqs, &queue_url)) == 0
        },
    );
    let after = read_manifest(&store, title);
    assert_eq!(after["state"], "complete");
    assert_eq!(after["version"], version.as_str());
}

/// `reprocess --enqueue` sends exactly the titles its plan selects (outdated by a settings
/// change; an up-to-date one is left), marked as a reprocess; two `hlspipe worker`
/// processes drain the queue, each title is published once with the new settings, and no
/// invalidation is sent title by title (the distribution has none). After the drain,
/// `--invalidate-changed-since` invalidates exactly the three masters that switched, in
/// batches of the limit (2 here), and `--wait` returns once CloudFront says completed.
#[test]
fn reprocess_enqueue_sends_the_plan_and_two_workers_drain_it_without_invalidating() {
    let server = S3Server::shared();
    let endpoint = server.endpoint();
    let name = bucket_name("reprocess-enqueue-drain");
    let store = server.bucket(&name);
    let distribution = cloudfront(&endpoint, CREATE_DISTRIBUTION, &name);
    let prefix = format!("s3://{name}/uploads/q/");
    let two = [("HLSPIPE_SEGMENT_DURATION", "2")];
    for k in ["t0", "t1", "t2"] {
        put(&store, &format!("uploads/q/{k}.mp4"), media());
    }
    let first = hlspipe(&endpoint, &["reprocess", "--prefix", &prefix], &[])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", output(&first));
    put(&store, "uploads/q/keep.mp4", media());
    let kept = hlspipe(
        &endpoint,
        &["reprocess", "--prefix", &prefix, "--only", "*keep*"],
        &two,
    )
    .output()
    .unwrap();
    assert!(kept.status.success(), "{}", output(&kept));
    let live = |t: &str| read_manifest(&store, &format!("hls/q/{t}.hls/"))["version"].clone();
    let before: Vec<serde_json::Value> = ["t0", "t1", "t2"].iter().map(|t| live(t)).collect();

    let rt = runtime();
    let sqs = rt.block_on(sqs(&endpoint));
    let (queue_url, _) = rt.block_on(queue(&sqs, &format!("{name}-q")));
    let enqueued_at = hlspipe::clock::unix_now().to_string();
    let args = [
        "reprocess",
        "--prefix",
        &prefix,
        "--enqueue",
        "--queue-url",
        &queue_url,
        "--json",
    ];
    let sent = hlspipe(&endpoint, &args, &two).output().unwrap();
    assert!(sent.status.success(), "{}", output(&sent));
    let lines: Vec<serde_json::Value> = stdout(&sent)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut enqueued: Vec<&str> = lines
        .iter()
        .filter(|v| v["enqueued"] == true)
        .map(|v| v["planned"]["title"].as_str().unwrap())
        .collect();
    enqueued.sort();
    assert_eq!(enqueued, ["q/t0", "q/t1", "q/t2"], "{}", stdout(&sent));
    assert_eq!(lines.last().unwrap()["summary"]["enqueued"], 3);
    assert_eq!(rt.block_on(queue_depth(&sqs, &queue_url)), 3);

    let env = [
        ("HLSPIPE_SEGMENT_DURATION", "2"),
        ("HLSPIPE_DISTRIBUTION_ID", distribution.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let workers = [
        start_worker(&endpoint, &queue_url, &env, dir.path().join("a.log")),
        start_worker(&endpoint, &queue_url, &env, dir.path().join("b.log")),
    ];
    wait_for("the titles", &workers[0], Duration::from_secs(120), || {
        ["t0", "t1", "t2"].iter().zip(&before).all(|(t, old)| {
            live(t) != *old
                && manifest_state(&store, &format!("hls/q/{t}.hls/")).as_deref() == Some("complete")
        })
    });
    wait_for(
        "the queue drained",
        &workers[0],
        Duration::from_secs(30),
        || rt.block_on(queue_depth(&sqs, &queue_url)) == 0,
    );
    let invalidations: serde_json::Value =
        serde_json::from_str(&cloudfront(&endpoint, LIST_INVALIDATIONS, &distribution)).unwrap();
    assert_eq!(
        invalidations,
        serde_json::json!([]),
        "marked: none title by title"
    );
    assert_title_decodes(&store, "hls/q/t1.hls/");

    let masters: Vec<String> = ["t0", "t1", "t2"]
        .iter()
        .map(|t| format!("/hls/q/{t}.hls/master.m3u8"))
        .collect();
    let since = [
        "reprocess",
        "--prefix",
        &prefix,
        "--invalidate-changed-since",
        &enqueued_at,
        "--invalidation-batch",
        "2",
    ];
    let listed = hlspipe(&endpoint, &[&since[..], &["--dry-run"]].concat(), &env)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", output(&listed));
    let listed = stdout(&listed);
    let changed: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("changed        "))
        .collect();
    assert_eq!(changed, masters, "{listed}");
    let none: serde_json::Value =
        serde_json::from_str(&cloudfront(&endpoint, LIST_INVALIDATIONS, &distribution)).unwrap();
    assert_eq!(none, serde_json::json!([]), "a dry run invalidates nothing");

    let sent = hlspipe(
        &endpoint,
        &[&since[..], &["--wait", "--json"]].concat(),
        &env,
    )
    .output()
    .unwrap();
    assert!(sent.status.success(), "{}", output(&sent));
    let lines: Vec<serde_json::Value> = stdout(&sent)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().filter_map(|v| v["id"].as_str()).collect();
    let completed: Vec<&str> = lines
        .iter()
        .filter_map(|v| v["completed"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{}", stdout(&sent));
    assert_eq!(completed, ids, "--wait waited for each");
    assert_eq!(lines.last().unwrap()["summary"]["invalidated"], 3);
    let invalidations: serde_json::Value =
        serde_json::from_str(&cloudfront(&endpoint, LIST_INVALIDATIONS, &distribution)).unwrap();
    let mut batches: Vec<Vec<String>> = invalidations
        .as_array()
        .unwrap()
        .iter()
        .map(|i| serde_json::from_value(i["paths"].clone()).unwrap())
        .collect();
    batches.sort();
    assert_eq!(
        batches,
        [masters[..2].to_vec(), masters[2..].to_vec()],
        "exactly the masters that switched (not keep's), two a request"
    );
}
