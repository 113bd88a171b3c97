//! The playback API function's entry point: configuration from the environment, the private
//! key (and the bearer token or JWT key) from Secrets Manager or SSM, read again every few
//! minutes so a rotation needs no deploy, then one function-URL request per invocation
//! ([`hlspipe_lambda::api`]).

use hlspipe::aws::secrets::SecretReader;
use hlspipe_lambda::api::{
    handle_url_request, read_secrets, ApiFunction, ApiFunctionConfig, Backend, LiveRouter,
};
use hlspipe_lambda::init_logging;
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;
use std::time::Duration;

/// Reads the secrets every `refresh_seconds` and swaps the router when they changed; a failed
/// read or a bad new key keeps the last good router.
fn keep_refreshing(function: Arc<ApiFunction>, reader: Arc<SecretReader>, live: Arc<LiveRouter>) {
    tokio::spawn(async move {
        let every = Duration::from_secs(function.config.refresh_seconds);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let fresh = match read_secrets(reader.as_ref(), &function.config).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "secrets not refreshed; the last ones stay in use");
                    continue;
                }
            };
            match live.update(fresh, |s| function.router(s)) {
                Ok(true) => tracing::info!("secrets changed: signing with the new key"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "new secrets refused; the last ones stay in use")
                }
            }
        }
    });
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
    let secrets = read_secrets(reader.as_ref(), &config).await?;
    let function = Arc::new(ApiFunction::new(config, backend)?);
    function.warm_up().await;
    let live = Arc::new(LiveRouter::new(secrets.clone(), function.router(&secrets)?));
    keep_refreshing(Arc::clone(&function), reader, Arc::clone(&live));
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
