//! The playback API's secrets read the way the function reads them (one SigV4-signed call
//! each), against moto's Secrets Manager and SSM on 127.0.0.1: a private key stored as a
//! secret and as a SecureString parameter comes back byte for byte and signs; a rotation is
//! seen by the next read; a missing secret is a clear error.

use crate::support::s3::S3Server;
use hlspipe::aws::secrets::{SecretReader, SecretRef};
use hlspipe::aws::signed::AwsJsonClient;
use hlspipe::delivery::sign::PrivateKey;

fn pem(name: &str) -> String {
    std::fs::read_to_string(crate::support::repo_root().join("fixtures/keys").join(name)).unwrap()
}

#[test]
fn private_keys_come_back_from_secrets_manager_and_ssm_and_rotate() {
    let s3 = S3Server::shared();
    for (k, v) in S3Server::child_env(&s3.endpoint()) {
        // This test process only (nextest runs each test in its own).
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reader = SecretReader::from_env().await.unwrap();
        // Setting secrets up goes through the same signed JSON client.
        let config = hlspipe::aws::load_config("us-east-1").await;
        let aws = AwsJsonClient::from_config(&config, "test").unwrap();
        let endpoint = s3.endpoint();
        let first = pem("rsa2048.pkcs1.pem");
        let name = format!("hlspipe/key-{}", std::process::id());
        aws.call(
            "secretsmanager",
            &endpoint,
            "secretsmanager.CreateSecret",
            &serde_json::json!({ "Name": name, "SecretString": first }),
        )
        .await
        .unwrap();
        let secret = SecretRef::parse(&format!("secretsmanager:{name}")).unwrap();
        let read = reader.read(&secret).await.unwrap();
        assert_eq!(read, first);
        assert!(PrivateKey::from_pem(&read).is_ok());

        // A rotation (a new version of the secret) is what the next read returns.
        let second = pem("rsa2048-second.pkcs1.pem");
        aws.call(
            "secretsmanager",
            &endpoint,
            "secretsmanager.PutSecretValue",
            &serde_json::json!({ "SecretId": name, "SecretString": second }),
        )
        .await
        .unwrap();
        assert_eq!(reader.read(&secret).await.unwrap(), second);

        let parameter = format!("/hlspipe/key-{}", std::process::id());
        aws.call(
            "ssm",
            &endpoint,
            "AmazonSSM.PutParameter",
            &serde_json::json!({ "Name": parameter, "Value": first, "Type": "SecureString" }),
        )
        .await
        .unwrap();
        let from_ssm = reader
            .read(&SecretRef::parse(&format!("ssm:{parameter}")).unwrap())
            .await
            .unwrap();
        assert_eq!(from_ssm, first);

        let missing = reader
            .read(&SecretRef::parse("secretsmanager:hlspipe/never-made").unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("ResourceNotFound"), "{missing}");
    });
}
