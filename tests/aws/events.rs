//! Title announcements on EventBridge (deployment issue, item 14), against moto on
//! 127.0.0.1: a rule on the default bus that matches hlspipe's `Title Published` events
//! delivers the event, detail and all, to an SQS queue, as a site's rule would.

use crate::support::s3::S3Server;
use hlspipe::aws::events::EventBridgeNotifier;
use hlspipe::aws::signed::AwsJsonClient;
use hlspipe::pipeline::notify::{Notifier, TitleChange, TitleEvent};

#[test]
fn a_published_title_reaches_a_sites_rule() {
    let server = S3Server::shared();
    for (k, v) in S3Server::child_env(&server.endpoint()) {
        // This test process only (nextest runs each test in its own).
        std::env::set_var(k, v);
    }
    let endpoint = server.endpoint();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let suffix = std::process::id();
    let queue_url = rt.block_on(async {
        let config = hlspipe::aws::load_config("us-east-1").await;
        let aws = AwsJsonClient::from_config(&config, "test").unwrap();
        let sqs = |target: &'static str, body: serde_json::Value| {
            let aws = &aws;
            let endpoint = &endpoint;
            async move {
                aws.call("sqs", endpoint, &format!("AmazonSQS.{target}"), &body)
                    .await
                    .unwrap()
            }
        };
        let queue = sqs(
            "CreateQueue",
            serde_json::json!({"QueueName": format!("titles-{suffix}")}),
        )
        .await;
        let url = queue["QueueUrl"].as_str().unwrap().to_owned();
        let attrs = sqs(
            "GetQueueAttributes",
            serde_json::json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
        )
        .await;
        let arn = attrs["Attributes"]["QueueArn"].as_str().unwrap().to_owned();
        let rule = format!("published-{suffix}");
        let pattern = serde_json::json!({
            "source": ["hlspipe"],
            "detail-type": ["Title Published"],
        });
        aws.call(
            "events",
            &endpoint,
            "AWSEvents.PutRule",
            &serde_json::json!({"Name": rule, "EventPattern": pattern.to_string()}),
        )
        .await
        .unwrap();
        aws.call(
            "events",
            &endpoint,
            "AWSEvents.PutTargets",
            &serde_json::json!({"Rule": rule, "Targets": [{"Id": "queue", "Arn": arn}]}),
        )
        .await
        .unwrap();
        url
    });

    let notifier = rt
        .block_on(EventBridgeNotifier::from_env("default"))
        .unwrap();
    let event = TitleEvent {
        change: TitleChange::Published,
        bucket: "my-media".into(),
        title: "shows/Happy Faceé".into(),
        source: "uploads/shows/Happy Faceé.mp4".into(),
        version: Some("0123456789ab".into()),
        master: Some("hls/shows/Happy Faceé.hls/master.m3u8".into()),
        error: None,
    };
    // Notifier::notify blocks on the runtime, as the job's blocking thread does.
    let handle = rt.handle().clone();
    let sent = std::thread::spawn(move || {
        let _guard = handle.enter();
        notifier.notify(&event)
    })
    .join()
    .unwrap();
    sent.unwrap();

    let message = rt.block_on(async {
        let config = hlspipe::aws::load_config("us-east-1").await;
        let aws = AwsJsonClient::from_config(&config, "test").unwrap();
        aws.call(
            "sqs",
            &endpoint,
            "AmazonSQS.ReceiveMessage",
            &serde_json::json!({"QueueUrl": queue_url, "WaitTimeSeconds": 5}),
        )
        .await
        .unwrap()
    });
    let body = message["Messages"][0]["Body"].as_str().expect("an event");
    let delivered: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(delivered["source"], "hlspipe");
    assert_eq!(delivered["detail-type"], "Title Published");
    assert_eq!(delivered["detail"]["title"], "shows/Happy Faceé");
    assert_eq!(delivered["detail"]["change"], "published");
    assert_eq!(delivered["detail"]["version"], "0123456789ab");
}
