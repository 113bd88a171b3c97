//! The playback API function's entry point: configuration from the environment, the private
//! key (and bearer token) from Secrets Manager or SSM, read again every few minutes so a
//! rotation needs no deploy, then one function-URL request per invocation
//! ([`hlspipe_lambda::api`]).

use hlspipe::aws::secrets::{SecretReader, SecretRef};
use hlspipe_lambda::api::{
    build_router, handle_url_request, ApiFunctionConfig, Backend, LiveRouter, Secrets,
};
use hlspipe_lambda::init_logging;
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;
use std::time::Duration;

async fn read_secrets(
    reader: &SecretReader,
    config: &ApiFunctionConfig,
) -> Result<Secrets, lambda_runtime::Error> {
    let key = SecretRef::parse(&config.private_key_secret)?;
    let private_key_pem = reader.read(&key).await?;
    let token = match &config.token_secret {
        Some(t) => Some(reader.read(&SecretRef::parse(t)?).await?),
        None => None,
    };
    Ok(Secrets {
        private_key_pem,
        token,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config = ApiFunctionConfig::from_vars(std::env::vars())?;
    // Off the runtime's threads: an S3 client starts (and blocks on) a runtime of its own.
    let backend = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Backend::open(&config)).await??
    };
    let reader = Arc::new(SecretReader::from_env().await?);
    let secrets = read_secrets(&reader, &config).await?;
    let router = build_router(&config, &backend, &secrets)?;
    let live = Arc::new(LiveRouter::new(secrets, router));
    {
        let (live, reader, config) = (Arc::clone(&live), Arc::clone(&reader), config.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(config.refresh_seconds));
            tick.tick().await;
            loop {
                tick.tick().await;
                let fresh = match read_secrets(&reader, &config).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "secrets not refreshed; the last ones stay in use");
                        continue;
                    }
                };
                match live.update(fresh, |s| build_router(&config, &backend, s)) {
                    Ok(true) => tracing::info!("secrets changed: signing with the new key"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "new secrets refused; the last ones stay in use")
                    }
                }
            }
        });
    }
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<
            aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest,
        >| {
            let router = live.router();
            async move {
                Ok::<_, lambda_runtime::Error>(handle_url_request(router, event.payload).await)
            }
        },
    ))
    .await
}
