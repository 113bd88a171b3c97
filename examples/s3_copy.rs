//! The baseline for `benches/s3.sh`, and a small S3 tool for it:
//!
//! ```text
//! s3_copy mb   s3://bucket                 create a bucket
//! s3_copy put  FILE s3://bucket/key        upload a file (multipart, 8 MiB parts)
//! s3_copy copy s3://b/src s3://b/dst       one streaming GET of src, PUT of the same bytes
//! s3_copy gets s3://b/k N                  N ranged reads of 64 KiB in a row: seconds each
//! s3_copy put-many FILE s3://b/prefix/ N  FILE under N keys (prefix/t00000.mp4 …)
//! s3_copy ls   s3://b/prefix/             list every key, page after page: the seconds
//! ```
//!
//! `copy` is the plain transfer packaging is measured against: a single GET whose
//! body streams into a multipart upload of 8 MiB parts, four parts in flight, as
//! fast as this client and server move bytes. It reaches S3 the way `hlspipe` does
//! (`AWS_ENDPOINT_URL`, the SDK's credential chain).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use hlspipe::store::{S3Client, S3Settings};
use std::sync::Arc;

const PART: usize = 8 << 20;
const IN_FLIGHT: usize = 4;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn split(url: &str) -> Result<(String, String), BoxError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or("expected s3://bucket/key")?;
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((b.to_string(), k.to_string()))
}

/// Uploads `body` chunks as one multipart upload, `IN_FLIGHT` parts at a time.
async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    mut next: impl AsyncChunks,
) -> Result<u64, BoxError> {
    let id = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await?
        .upload_id()
        .ok_or("no upload id")?
        .to_string();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    let mut number = 0i32;
    let mut total = 0u64;
    while let Some(part) = next.next_part().await? {
        number += 1;
        total += part.len() as u64;
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let (client, bucket, key, id) = (
            client.clone(),
            bucket.to_string(),
            key.to_string(),
            id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await;
            drop(permit);
            out.map(|o| {
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(o.e_tag().map(str::to_string))
                    .build()
            })
        }));
    }
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await??);
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await?;
    Ok(total)
}

trait AsyncChunks {
    async fn next_part(&mut self) -> Result<Option<Vec<u8>>, BoxError>;
}

struct FromStream(ByteStream, Vec<u8>);

impl AsyncChunks for FromStream {
    async fn next_part(&mut self) -> Result<Option<Vec<u8>>, BoxError> {
        while self.1.len() < PART {
            match self.0.next().await {
                Some(chunk) => self.1.extend_from_slice(&chunk?),
                None => break,
            }
        }
        if self.1.is_empty() {
            return Ok(None);
        }
        let rest = if self.1.len() > PART {
            self.1.split_off(PART)
        } else {
            Vec::new()
        };
        Ok(Some(std::mem::replace(&mut self.1, rest)))
    }
}

struct FromFile(std::fs::File);

impl AsyncChunks for FromFile {
    async fn next_part(&mut self) -> Result<Option<Vec<u8>>, BoxError> {
        use std::io::Read;
        let mut buf = Vec::with_capacity(PART);
        (&mut self.0).take(PART as u64).read_to_end(&mut buf)?;
        Ok((!buf.is_empty()).then_some(buf))
    }
}

async fn run(args: Vec<String>) -> Result<(), BoxError> {
    let client = S3Client::build_sdk_client(&S3Settings::from_env()).await;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["mb", url] => {
            let (bucket, _) = split(url)?;
            match client.create_bucket().bucket(&bucket).send().await {
                Ok(_) => Ok(()),
                Err(e) if format!("{e:?}").contains("BucketAlreadyOwnedByYou") => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        ["put", file, url] => {
            let (bucket, key) = split(url)?;
            let n = upload(&client, &bucket, &key, FromFile(std::fs::File::open(file)?)).await?;
            println!("put {n} bytes");
            Ok(())
        }
        ["put-many", file, prefix, n] => {
            // The same small file under N keys (`<prefix>t00000.mp4` …), 16 at a time: a
            // catalogue for the reprocess bench.
            let (bucket, key_prefix) = split(prefix)?;
            let bytes = std::fs::read(file)?;
            let n: usize = n.parse()?;
            let mut keys = (0..n).map(|i| format!("{key_prefix}t{i:05}.mp4"));
            loop {
                let batch: Vec<String> = keys.by_ref().take(16).collect();
                if batch.is_empty() {
                    break;
                }
                let puts = batch.iter().map(|key| {
                    client
                        .put_object()
                        .bucket(&bucket)
                        .key(key)
                        .body(aws_sdk_s3::primitives::ByteStream::from(bytes.clone()))
                        .send()
                });
                for put in futures_util::future::join_all(puts).await {
                    put?;
                }
            }
            println!("put {n} objects");
            Ok(())
        }
        ["ls", url] => {
            // Every key under a prefix, page after page: the server's own time to list.
            let (bucket, prefix) = split(url)?;
            let started = std::time::Instant::now();
            let mut pages = client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            let mut keys = 0usize;
            while let Some(page) = pages.next().await {
                keys += page?.contents().len();
            }
            println!(
                "listed {keys} keys in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ["copy", from, to] => {
            let (sb, sk) = split(from)?;
            let (db, dk) = split(to)?;
            let body = client.get_object().bucket(&sb).key(&sk).send().await?.body;
            let n = upload(&client, &db, &dk, FromStream(body, Vec::new())).await?;
            println!("copied {n} bytes");
            Ok(())
        }
        ["gets", url, n] => {
            // The latency of a small ranged read (a chunk file's header): N in a row.
            let (bucket, key) = split(url)?;
            let n: u32 = n.parse()?;
            let started = std::time::Instant::now();
            for _ in 0..n {
                let got = client.get_object().bucket(&bucket).key(&key);
                let body = got.range("bytes=0-65535").send().await?.body;
                body.collect().await?;
            }
            println!(
                "{:.6}",
                started.elapsed().as_secs_f64() / f64::from(n.max(1))
            );
            Ok(())
        }
        _ => Err(
            "usage: s3_copy mb s3://bucket | put FILE s3://b/k | copy s3://b/src s3://b/dst \
                  | gets s3://b/k N"
                .into(),
        ),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s3_copy: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s3_copy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
