//! `hlspipe sign-cookies`, `hlspipe sign-url`, `hlspipe verify`: thin over `hlspipe::delivery::sign`.
//! Private keys are read from files and never printed; errors name the file, not its bytes.

use anyhow::{bail, Context};
use clap::ValueEnum;
use hlspipe::delivery::sign::{
    CookieAttributes, HashAlgorithm, IpRange, KeySet, Policy, PrivateKey, PublicKey, PublicKeySet,
    SameSite, Signer, TitlePrefix, Verifier,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl From<Hash> for HashAlgorithm {
    fn from(hash: Hash) -> HashAlgorithm {
        match hash {
            Hash::Sha1 => HashAlgorithm::Sha1,
            Hash::Sha256 => HashAlgorithm::Sha256,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// One `Set-Cookie: …` line per cookie.
    SetCookie,
    /// One JSON object: cookie name → value, plus "expires".
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SameSiteArg {
    Strict,
    Lax,
    /// For a player page on another site than the CDN host.
    None,
}

/// Key and expiry options shared by `sign-cookies` and `sign-url`.
#[derive(clap::Args)]
pub struct KeyArgs {
    /// CloudFront public-key id (key-pair id) whose private key signs.
    #[arg(long)]
    key_pair_id: String,
    /// PEM file with the private key (PKCS#1, PKCS#8 or SEC1; RSA-2048 or EC P-256).
    #[arg(long, value_name = "PEM")]
    private_key: PathBuf,
    /// Hash inside the signature; sha256 also sends CloudFront-Hash-Algorithm / Hash-Algorithm.
    #[arg(long, value_enum, default_value = "sha1")]
    hash: Hash,
}

#[derive(clap::Args)]
#[group(id = "expiry", multiple = false)]
pub struct ExpiryArgs {
    /// Valid for this many seconds from now.
    #[arg(long, value_name = "SECS", group = "expiry")]
    expires_in: Option<u64>,
    /// Valid until this Unix time (exclusive).
    #[arg(long, value_name = "UNIX", group = "expiry")]
    expires_at: Option<u64>,
}

impl ExpiryArgs {
    fn resolve(&self) -> anyhow::Result<u64> {
        match (self.expires_in, self.expires_at) {
            (Some(secs), _) => hlspipe::clock::unix_now()
                .checked_add(secs)
                .context("--expires-in is too large"),
            (None, Some(at)) => Ok(at),
            (None, None) => bail!("one of --expires-in or --expires-at is required"),
        }
    }
}

/// `hlspipe sign-cookies`
#[derive(clap::Args)]
pub struct CookiesArgs {
    /// The title's folder, e.g. https://cdn.example.com/hls/shows/ep1/ (signs <prefix>/*).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "policy",
        conflicts_with = "policy"
    )]
    prefix_url: Option<String>,
    /// Sign this exact policy file (whitespace removed) instead of building one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["expires_in", "expires_at", "not_before", "ip"])]
    policy: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    expiry: ExpiryArgs,
    /// Not valid before this Unix time (DateGreaterThan).
    #[arg(long, value_name = "UNIX")]
    not_before: Option<u64>,
    /// Only for viewers in this IPv4 range (a bare address means /32).
    #[arg(long, value_name = "CIDR")]
    ip: Option<String>,
    /// Cookie Domain, shared by the player's site and the CDN host.
    #[arg(long, value_name = "D")]
    domain: Option<String>,
    #[arg(long, value_enum, default_value = "lax")]
    same_site: SameSiteArg,
    /// Make persistent cookies with this Max-Age (default: session cookies, as AWS advises).
    #[arg(long, value_name = "SECS")]
    max_age: Option<u64>,
    #[arg(long, value_enum, default_value = "set-cookie")]
    format: Format,
}

/// `hlspipe sign-url`
#[derive(clap::Args)]
pub struct UrlArgs {
    /// The URL to sign (its query string, if any, is kept).
    url: String,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    expiry: ExpiryArgs,
    /// Use a custom policy over this title prefix (<prefix>/*) instead of a canned policy for URL.
    #[arg(long, value_name = "URL")]
    policy_prefix: Option<String>,
}

/// `hlspipe verify`
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The request URL (a signed URL carries its own credentials).
    #[arg(long)]
    url: String,
    /// The request's Cookie header.
    #[arg(long, value_name = "HEADER")]
    cookie: Option<String>,
    /// Trusted public keys, ID=PEM-FILE (repeatable).
    #[arg(long = "public-key", value_name = "ID=PEM", required = true)]
    public_keys: Vec<String>,
    /// The viewer's IP address.
    #[arg(long, default_value = "0.0.0.0")]
    ip: IpAddr,
    /// Judge at this Unix time instead of now.
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn signer(key: &KeyArgs) -> anyhow::Result<Signer> {
    let pem = read_text(&key.private_key, "private key file")?;
    let private =
        PrivateKey::from_pem(&pem).with_context(|| format!("{}", key.private_key.display()))?;
    Ok(Signer::new(
        KeySet::new(&key.key_pair_id, private)?,
        key.hash.into(),
    ))
}

/// CloudFront allows a request only strictly before the policy's `DateLessThan` (AWS,
/// "Creating a custom policy for signed cookies": `DateLessThan` is required and compared
/// with the request time). Signing a policy already past it is almost always a mistake
/// (milliseconds for seconds, an old script), so it is said on stderr; the output is still
/// written, for tests and demonstrations of a denial.
fn warn_if_expired(expires: u64) {
    let now = hlspipe::clock::unix_now();
    if expires <= now {
        eprintln!(
            "hlspipe: warning: this policy expired {} s ago (DateLessThan {expires}, now \
             {now}): CloudFront will refuse every request made with it",
            now - expires
        );
    }
}

pub fn run_cookies(args: CookiesArgs) -> anyhow::Result<()> {
    let signer = signer(&args.key)?;
    let cookies = match (&args.policy, &args.prefix_url) {
        (Some(path), _) => {
            signer.signed_cookies_for_policy_text(&read_text(path, "policy file")?)?
        }
        (None, Some(prefix)) => {
            let mut policy =
                Policy::for_title(&TitlePrefix::parse(prefix)?, args.expiry.resolve()?);
            if let Some(range) = &args.ip {
                policy = policy.with_source_ip(IpRange::parse(range)?);
            }
            if let Some(not_before) = args.not_before {
                policy = policy.with_not_before(not_before)?;
            }
            signer.signed_cookies(&policy)?
        }
        (None, None) => bail!("one of --prefix-url or --policy is required"),
    };
    warn_if_expired(cookies.expires);
    match args.format {
        Format::Json => {
            let mut object = serde_json::Map::new();
            for (name, value) in cookies.pairs() {
                object.insert(name.to_owned(), value.into());
            }
            object.insert("expires".to_owned(), cookies.expires.into());
            println!("{}", serde_json::Value::Object(object));
        }
        Format::SetCookie => {
            let mut attributes = CookieAttributes::new().same_site(match args.same_site {
                SameSiteArg::Strict => SameSite::Strict,
                SameSiteArg::Lax => SameSite::Lax,
                SameSiteArg::None => SameSite::None,
            });
            if let Some(domain) = &args.domain {
                attributes = attributes.domain(domain)?;
            }
            if let Some(max_age) = args.max_age {
                attributes = attributes.max_age(max_age);
            }
            for header in cookies.set_cookie_headers(&attributes) {
                println!("Set-Cookie: {header}");
            }
        }
    }
    Ok(())
}

pub fn run_url(args: UrlArgs) -> anyhow::Result<()> {
    let signer = signer(&args.key)?;
    let expires = args.expiry.resolve()?;
    warn_if_expired(expires);
    let signed = match &args.policy_prefix {
        Some(prefix) => signer.signed_url_custom(
            &args.url,
            &Policy::for_title(&TitlePrefix::parse(prefix)?, expires),
        )?,
        None => signer.signed_url_canned(&args.url, expires)?,
    };
    println!("{signed}");
    Ok(())
}

/// Adds each `ID=PEM-FILE` of `specs` (given as `flag`) to `keys`.
pub fn add_public_keys(
    keys: &mut PublicKeySet,
    specs: &[String],
    flag: &str,
) -> anyhow::Result<()> {
    for spec in specs {
        let (id, path) = spec
            .split_once('=')
            .with_context(|| format!("{flag} {spec:?}: expected ID=PEM-FILE"))?;
        let path = Path::new(path);
        let key = PublicKey::from_pem(&read_text(path, "public key file")?)
            .with_context(|| format!("{}", path.display()))?;
        keys.insert(id, key)?;
    }
    Ok(())
}

pub fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let mut keys = PublicKeySet::new();
    add_public_keys(&mut keys, &args.public_keys, "--public-key")?;
    let now = match args.now {
        Some(now) => now,
        None => hlspipe::clock::unix_now(),
    };
    let decision =
        Verifier::new(keys).verify_request(&args.url, args.cookie.as_deref(), args.ip, now);
    println!("{decision}");
    if !decision.is_allow() {
        // Deny is an answer, not a failure of the command, but scripts need it as exit 1.
        std::process::exit(1);
    }
    Ok(())
}
