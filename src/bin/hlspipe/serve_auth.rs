//! `hlspipe serve`'s authoriser flags: `--auth none|bearer|jwt` and what each needs, turned
//! into a [`hlspipe::delivery::api::Auth`]. `--token` alone means `--auth bearer` and
//! `--no-auth` means `--auth none` (the flags `serve` had first).

use anyhow::Context;
use hlspipe::delivery::api::Auth;
use hlspipe::delivery::auth::{Jwks, JwksSettings, JwtAuthoriser, JwtKeys, JwtSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum AuthMode {
    /// Anyone may watch every title (a public catalogue).
    None,
    /// One shared token (--token or --token-file).
    Bearer,
    /// The site's login token (--jwt-jwks-url, --jwt-public-key or --jwt-hs256-secret-file).
    Jwt,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("jwt_key").multiple(false).args(["jwt_jwks_url", "jwt_public_key", "jwt_hs256_secret_file"])))]
// Choosing nobody is a usage error (exit 2), as it was when `--token | --no-auth` was required.
#[command(group(clap::ArgGroup::new("who").required(true).multiple(true).args(["auth", "token", "token_file", "no_auth"])))]
pub struct AuthArgs {
    /// Who may ask for cookies (default: bearer with --token, none with --no-auth).
    #[arg(long, env = "HLSPIPE_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Bearer token callers of the API must send (at least 16 characters).
    #[arg(
        long,
        env = "HLSPIPE_TOKEN",
        hide_env_values = true,
        value_name = "T",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// A file holding the bearer token (one line), kept off the command line.
    #[arg(long, env = "HLSPIPE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Let anyone ask for cookies, on loopback only (local development); `--auth none` is the
    /// public catalogue.
    #[arg(long, env = "HLSPIPE_NO_AUTH")]
    pub no_auth: bool,
    /// JWT: the provider's JWKS URL (https, or http to a loopback address).
    #[arg(long, env = "HLSPIPE_JWT_JWKS_URL", value_name = "URL")]
    pub jwt_jwks_url: Option<String>,
    /// JWT: a PEM public key (RSA for RS256, EC P-256 for ES256).
    #[arg(long, env = "HLSPIPE_JWT_PUBLIC_KEY", value_name = "PEM")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWT: a file holding the HS256 secret (at least 32 bytes; a final newline is dropped).
    #[arg(long, env = "HLSPIPE_JWT_HS256_SECRET_FILE", value_name = "FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// JWT: the `iss` tokens must carry.
    #[arg(long, env = "HLSPIPE_JWT_ISSUER", value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// JWT: the `aud` tokens must carry (or contain).
    #[arg(long, env = "HLSPIPE_JWT_AUDIENCE", value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// JWT: seconds of clock skew allowed on `exp` and `nbf` (at most 300).
    #[arg(
        long,
        env = "HLSPIPE_JWT_LEEWAY",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub jwt_leeway: u64,
    /// JWT: the claim listing the title prefixes a viewer may watch (absent claim: none).
    #[arg(long, env = "HLSPIPE_JWT_TITLES_CLAIM", value_name = "NAME")]
    pub jwt_titles_claim: Option<String>,
    /// JWT: an unknown key id refetches the JWKS at most this often.
    #[arg(
        long,
        env = "HLSPIPE_JWT_JWKS_MIN_REFRESH",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub jwt_jwks_min_refresh: u64,
}

impl AuthArgs {
    /// The mode the flags ask for; contradictions are refused rather than guessed.
    pub fn mode(&self) -> anyhow::Result<AuthMode> {
        let has_token = self.token.is_some() || self.token_file.is_some();
        let has_jwt = self.jwt_jwks_url.is_some()
            || self.jwt_public_key.is_some()
            || self.jwt_hs256_secret_file.is_some();
        let mode = match (self.auth, self.no_auth, has_token) {
            (Some(AuthMode::None) | None, true, false) => AuthMode::None,
            (Some(mode), false, _) => mode,
            (None, false, true) => AuthMode::Bearer,
            (None, false, false) => anyhow::bail!(
                "choose who may watch: --auth none|bearer|jwt (or --token T, or --no-auth on loopback)"
            ),
            _ => anyhow::bail!("--no-auth goes with no other --auth or --token"),
        };
        if has_token && mode != AuthMode::Bearer {
            anyhow::bail!("--token goes with --auth bearer only");
        }
        if has_jwt != (mode == AuthMode::Jwt) {
            anyhow::bail!(
                "--auth jwt needs one of --jwt-jwks-url, --jwt-public-key, --jwt-hs256-secret-file, \
                 and those go with --auth jwt only"
            );
        }
        Ok(mode)
    }

    /// The API's authoriser. A JWKS is fetched once now, so that a wrong URL shows at start-up
    /// (a failure is logged, not fatal: the provider may be briefly down).
    pub async fn build(&self) -> anyhow::Result<Auth> {
        Ok(match self.mode()? {
            AuthMode::None => Auth::Disabled,
            AuthMode::Bearer => Auth::Bearer(self.bearer_token()?),
            AuthMode::Jwt => {
                let keys = self.jwt_keys().await?;
                let settings = JwtSettings {
                    issuer: self.jwt_issuer.clone(),
                    audience: self.jwt_audience.clone(),
                    leeway: self.jwt_leeway,
                    titles_claim: self.jwt_titles_claim.clone(),
                };
                Auth::Jwt(Arc::new(JwtAuthoriser::new(keys, settings)?))
            }
        })
    }

    fn bearer_token(&self) -> anyhow::Result<String> {
        match (&self.token, &self.token_file) {
            (Some(token), _) => Ok(token.clone()),
            (None, Some(path)) => Ok(String::from_utf8(read_secret(path)?)
                .with_context(|| format!("--token-file {}: not UTF-8", path.display()))?),
            (None, None) => anyhow::bail!("--auth bearer needs --token or --token-file"),
        }
    }

    async fn jwt_keys(&self) -> anyhow::Result<JwtKeys> {
        if let Some(path) = &self.jwt_public_key {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading --jwt-public-key {}", path.display()))?;
            return JwtKeys::public_key_pem(&pem)
                .with_context(|| format!("--jwt-public-key {}", path.display()));
        }
        if let Some(path) = &self.jwt_hs256_secret_file {
            return JwtKeys::hs256_secret(&read_secret(path)?)
                .with_context(|| format!("--jwt-hs256-secret-file {}", path.display()));
        }
        let url = self.jwt_jwks_url.as_deref().context("no JWT key source")?;
        let settings = JwksSettings {
            min_refresh: Duration::from_secs(self.jwt_jwks_min_refresh),
            ..JwksSettings::default()
        };
        let jwks = Arc::new(Jwks::new(url, settings)?);
        match jwks.refresh().await {
            Ok(n) => tracing::info!(%url, keys = n, "JWKS fetched"),
            Err(reason) => {
                tracing::warn!(%url, %reason, "JWKS fetch failed; retried on the first token")
            }
        }
        Ok(JwtKeys::Jwks(jwks))
    }
}

/// A secret file's bytes without the final line break an editor adds.
fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    Ok(bytes)
}
