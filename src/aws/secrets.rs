//! The playback API's secrets (its CloudFront private key, a bearer token) from AWS Secrets
//! Manager or an SSM Parameter Store `SecureString`, read with one SigV4-signed call each
//! (`GetSecretValue`, Secrets Manager API Reference; `GetParameter` with `WithDecryption`,
//! Systems Manager API Reference), never from the function's environment.
//!
//! Both APIs are AWS JSON 1.1: a POST of a JSON document naming the operation in
//! `X-Amz-Target`, answered with a JSON document (`SecretString`, `Parameter.Value`) or an
//! error document whose `__type` names the error.

use crate::aws::signed::{endpoint_from_env, AwsJsonClient};
use crate::error::{Error, Result};

/// Where a secret lives: `secretsmanager:<name or ARN>` or `ssm:<parameter name or ARN>`;
/// a bare ARN says which by its service (`arn:aws:secretsmanager:…`, `arn:aws:ssm:…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    SecretsManager(String),
    SsmParameter(String),
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef> {
        let text = text.trim();
        let bad = || {
            Error::Config(format!(
                "secret {text:?}: expected secretsmanager:NAME, ssm:PARAMETER, or an ARN of either"
            ))
        };
        if let Some(name) = text
            .strip_prefix("secretsmanager:")
            .filter(|n| !n.is_empty())
        {
            return Ok(SecretRef::SecretsManager(name.into()));
        }
        if let Some(name) = text.strip_prefix("ssm:").filter(|n| !n.is_empty()) {
            return Ok(SecretRef::SsmParameter(name.into()));
        }
        match text.split(':').nth(2) {
            Some("secretsmanager") => Ok(SecretRef::SecretsManager(text.into())),
            Some("ssm") => Ok(SecretRef::SsmParameter(text.into())),
            _ => Err(bad()),
        }
    }
}

/// Reads secrets in one region.
pub struct SecretReader {
    client: AwsJsonClient,
    secretsmanager: String,
    ssm: String,
}

impl SecretReader {
    /// `region` must live as long as the reader (a leaked `AWS_REGION` string in the
    /// function, a literal in tests). Endpoints are AWS's own unless
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_SSM` / `AWS_ENDPOINT_URL` say
    /// otherwise (how the tests reach a local server).
    pub async fn from_env() -> Result<SecretReader> {
        let config = crate::aws::load_config("us-east-1").await;
        let client = AwsJsonClient::from_config(&config, "secrets")?;
        let region = client.region();
        let endpoint = config.endpoint_url();
        Ok(SecretReader {
            client,
            secretsmanager: endpoint_from_env(
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                endpoint,
                format!("https://secretsmanager.{region}.amazonaws.com"),
            ),
            ssm: endpoint_from_env(
                "AWS_ENDPOINT_URL_SSM",
                endpoint,
                format!("https://ssm.{region}.amazonaws.com"),
            ),
        })
    }

    /// The secret's text.
    pub async fn read(&self, secret: &SecretRef) -> Result<String> {
        let (service, url, target, body, pointer) = match secret {
            SecretRef::SecretsManager(id) => (
                "secretsmanager",
                &self.secretsmanager,
                "secretsmanager.GetSecretValue",
                serde_json::json!({ "SecretId": id }),
                "/SecretString",
            ),
            SecretRef::SsmParameter(name) => (
                "ssm",
                &self.ssm,
                "AmazonSSM.GetParameter",
                serde_json::json!({ "Name": name, "WithDecryption": true }),
                "/Parameter/Value",
            ),
        };
        let answer = self.client.call(service, url, target, &body).await?;
        answer
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::Config(format!("{secret:?}: the answer has no {pointer}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references() {
        assert_eq!(
            SecretRef::parse("secretsmanager:hlspipe/key").unwrap(),
            SecretRef::SecretsManager("hlspipe/key".into())
        );
        assert_eq!(
            SecretRef::parse("ssm:/hlspipe/key").unwrap(),
            SecretRef::SsmParameter("/hlspipe/key".into())
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf";
        assert_eq!(
            SecretRef::parse(arn).unwrap(),
            SecretRef::SecretsManager(arn.into())
        );
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/hlspipe/key";
        assert_eq!(
            SecretRef::parse(arn).unwrap(),
            SecretRef::SsmParameter(arn.into())
        );
        for bad in ["", "secretsmanager:", "key.pem", "arn:aws:s3:::bucket"] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }
}
