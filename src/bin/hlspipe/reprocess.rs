//! `hlspipe reprocess --prefix [s3://BUCKET/]uploads/shows/ [--dry-run] [--json] …`: the
//! catalogue under a prefix planned title by title (`new`, `up to date`, `outdated`, `failed
//! before`, `in progress`, `orphaned`: [`hlspipe::pipeline::catalogue`]) from the listing and
//! the manifests alone, then the titles that need it done, here or through the queue
//! (`--enqueue`). See docs/reprocess.md.

use crate::setup;
use anyhow::Context;
use hlspipe::aws::sqs::send_batch;
use hlspipe::pipeline::catalogue::{PlannedTitle, Scope, Status};
use hlspipe::pipeline::event::s3_put_event;
use hlspipe::pipeline::invalidate::{Invalidator, NoInvalidation};
use hlspipe::pipeline::job::Pipeline;
use hlspipe::pipeline::outcome::Outcome;
use hlspipe::pipeline::reprocess::{run as run_plan, Progress, RunOptions};
use hlspipe::pipeline::retention::{collect_title, remove_title};
use hlspipe::store::{ObjectInfo, Store};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Key prefix of the sources (`uploads/shows/`), or `s3://BUCKET/PREFIX`.
    #[arg(long, value_name = "PREFIX")]
    prefix: String,
    /// The bucket, when --prefix does not name it.
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    /// The plan only: every title with its status (and why); nothing is written.
    #[arg(long)]
    dry_run: bool,
    /// Also the titles whose last run of this version failed.
    #[arg(long)]
    retry_failed: bool,
    /// Every title with a source, up to date or not: published again (its objects are
    /// found written; its playlists, master and manifest are written again).
    #[arg(long)]
    force: bool,
    /// Only sources whose key or title matches (`*`: any run of characters, `?`: one).
    #[arg(long, value_name = "PATTERN")]
    only: Option<String>,
    /// Only sources written at or after this time (`2026-11-30`, `2026-11-30T12:00:00Z` or
    /// Unix seconds).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Remove the outputs of orphaned titles (whose sources are gone).
    #[arg(long)]
    prune: bool,
    /// Send the selected titles' upload events to the queue instead of processing here.
    #[arg(long, requires = "queue_url")]
    enqueue: bool,
    /// The queue for --enqueue (a queue of its own for reprocessing keeps fresh uploads
    /// from waiting behind a catalogue; see docs/reprocess.md).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// With --enqueue: at most this many messages a second.
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// After a local run, invalidate on the CDN the masters that changed, in batches.
    #[arg(long)]
    invalidate: bool,
    /// Process nothing: invalidate on the CDN the masters of the titles under --prefix that
    /// switched versions at or after TIME (after an --enqueue run has drained; from what
    /// the manifests record). With --dry-run, list them.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["enqueue", "invalidate", "force", "gc", "prune"])]
    invalidate_changed_since: Option<String>,
    /// With --invalidate or --invalidate-changed-since: return once CloudFront has
    /// completed the invalidations (at most 30 minutes).
    #[arg(long)]
    wait: bool,
    /// Paths per invalidation request (at most CloudFront's 3,000).
    #[arg(long, hide = true, default_value_t = 3000, value_parser = clap::value_parser!(u16).range(1..=3000))]
    invalidation_batch: u16,
    /// Remove every planned title's versions retired longer ago than the grace period
    /// (never the live one, nor one being written); with --dry-run, list them with sizes.
    #[arg(long)]
    gc: bool,
    /// With --gc: the grace period instead of the configured `gc_grace_seconds`
    /// (`3600`, `90m`, `12h`, `7d`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    grace: Option<u64>,
    /// Titles processed at once (local mode).
    #[arg(long, default_value_t = 2, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    job: setup::JobArgs,
    /// JSON lines: one per title, then the summary.
    #[arg(long)]
    json: bool,
}

/// CloudFront keeps at most 3,000 invalidation paths in progress per distribution
/// ("Quotas on invalidations", CloudFront Developer Guide): one request's most.
const INVALIDATION_BATCH: usize = 3000;
/// How long `--wait` waits for one invalidation (CloudFront usually completes them in
/// minutes).
const WAIT_AT_MOST: Duration = Duration::from_secs(30 * 60);

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, stores) = args.job.load()?;
    let (bucket, prefix) = bucket_and_prefix(&args)?;
    let store = stores.store_for(&bucket)?;
    let scope = Scope {
        prefix,
        only: args.only.clone(),
        since: args.since.as_deref().map(parse_since).transpose()?,
        orphans: true,
    };
    let opts = RunOptions {
        concurrency: args.concurrency,
        dry_run: args.dry_run,
        retry_failed: args.retry_failed,
        force: args.force,
    };
    let runtime = setup::runtime()?;
    let stop = stop_on_signal(&runtime);
    let tally = Tally::new(args.json, args.dry_run);
    let cdn = Cdn {
        batch: usize::from(args.invalidation_batch),
        wait: args.wait,
    };
    if let Some(since) = &args.invalidate_changed_since {
        let since = parse_since(since)?;
        hlspipe::pipeline::catalogue::plan(store.as_ref(), &config, &scope, &mut |p| {
            tally.looked(p, since);
            Ok(!stop.load(Ordering::SeqCst))
        })?;
        if !args.dry_run && !stop.load(Ordering::SeqCst) {
            let invalidator = runtime.block_on(setup::invalidator(&config))?;
            tally.invalidate(invalidator.as_ref(), cdn)?;
        }
    } else if args.enqueue {
        let queue_url = args
            .queue_url
            .clone()
            .context("--enqueue needs --queue-url")?;
        let sqs = runtime.block_on(async {
            aws_sdk_sqs::Client::new(&hlspipe::aws::load_config("us-east-1").await)
        });
        let queue = Queue {
            sqs: &sqs,
            url: &queue_url,
            bucket: &bucket,
            rate: args.rate,
            runtime: &runtime,
        };
        queue.send_plan(store.as_ref(), &config, &scope, opts, &stop, &tally)?;
    } else {
        // One invalidation per title would be 100,000 paths for a catalogue: none here;
        // `--invalidate` sends the changed masters at the end, in batches.
        let notifier = runtime.block_on(setup::notifier(&config))?;
        let worker = Pipeline {
            config: &config,
            invalidator: &NoInvalidation,
            notifier: notifier.as_ref(),
            parts: None,
            deadline: None,
            clock: &hlspipe::clock::unix_now,
            rebuild: args.force,
        };
        run_plan(&worker, &store, &bucket, &scope, opts, &stop, &|p| {
            tally.heard(p)
        })?;
        if args.prune && !args.dry_run && !stop.load(Ordering::SeqCst) {
            tally.prune(store.as_ref())?;
        }
        if args.gc && !stop.load(Ordering::SeqCst) {
            let grace = args.grace.unwrap_or(config.gc_grace_seconds);
            tally.collect(store.as_ref(), grace)?;
        }
        if args.invalidate && !args.dry_run {
            let invalidator = runtime.block_on(setup::invalidator(&config))?;
            tally.invalidate(invalidator.as_ref(), cdn)?;
        }
    }
    runtime.shutdown_background();
    tally.finish(stop.load(Ordering::SeqCst))
}

/// Ctrl-C (or SIGTERM) sets the flag: no title is started any more, the running ones
/// finish, and the summary so far is printed.
fn stop_on_signal(runtime: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    runtime.spawn(async move {
        hlspipe::delivery::http::shutdown_signal().await;
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

fn bucket_and_prefix(args: &Args) -> anyhow::Result<(String, String)> {
    Ok(match args.prefix.strip_prefix("s3://") {
        Some(rest) => {
            let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(
                args.bucket.as_deref().is_none_or(|given| given == b),
                "--bucket and --prefix name different buckets"
            );
            (b.to_string(), p.to_string())
        }
        None => (
            args.bucket
                .clone()
                .context("name the bucket: --bucket NAME or --prefix s3://NAME/PREFIX")?,
            args.prefix.clone(),
        ),
    })
}

/// Seconds of `3600`, `90s`, `90m`, `12h` or `7d`.
fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}': a number of seconds, or with s, m, h or d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit is s, m, h or d")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// Unix seconds of `2026-11-30` (midnight UTC), `2026-11-30T12:00:00Z` (RFC 3339, UTC) or
/// `1796083200` (Unix seconds, as `date +%s` prints them).
fn parse_since(text: &str) -> anyhow::Result<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().context("a time of Unix seconds");
    }
    let bad =
        || anyhow::anyhow!("'{text}': a date (2026-11-30), 2026-11-30T12:00:00Z or Unix seconds");
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.trim_end_matches('Z').split(':').collect();
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    let secs = num(hh)? * 3600 + num(mm)? * 60 + num(ss.split('.').next().unwrap_or("0"))?;
    anyhow::ensure!((1..=12).contains(&m) && (1..=31).contains(&day), bad());
    // Days from 1970-01-01 (proleptic Gregorian; Howard Hinnant's days-from-civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + secs).map_err(|_| bad())
}

/// Where `--enqueue` sends the plan.
struct Queue<'a> {
    sqs: &'a aws_sdk_sqs::Client,
    url: &'a str,
    bucket: &'a str,
    rate: Option<f64>,
    runtime: &'a tokio::runtime::Runtime,
}

impl Queue<'_> {
    /// Plans `scope` and sends the selected titles' upload events, ten a call, at most
    /// `rate` a second. The events say they come from a reprocess, so the fleet sends no
    /// invalidation for them one by one.
    fn send_plan(
        &self,
        store: &dyn Store,
        config: &hlspipe::pipeline::config::PipelineConfig,
        scope: &Scope,
        opts: RunOptions,
        stop: &AtomicBool,
        tally: &Tally,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut batch: Vec<PlannedTitle> = Vec::with_capacity(10);
        let mut sent = 0usize;
        let mut flush = |batch: &mut Vec<PlannedTitle>| -> hlspipe::Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let now = hlspipe::clock::unix_now();
            let sources: Vec<&ObjectInfo> =
                batch.iter().filter_map(|p| p.source.as_ref()).collect();
            let bodies: Vec<String> = sources
                .iter()
                .map(|s| s3_put_event(self.bucket, &s.key, &s.etag, s.size, now))
                .collect();
            let what = |i: usize| format!("the event of '{}'", sources[i].key);
            self.runtime
                .block_on(send_batch(self.sqs, self.url, &bodies, &what))?;
            sent += bodies.len();
            for p in batch.drain(..) {
                tally.enqueued(p);
            }
            if let Some(rate) = self.rate.filter(|r| *r > 0.0) {
                let due = Duration::from_secs_f64(sent as f64 / rate);
                std::thread::sleep(due.saturating_sub(started.elapsed()));
            }
            Ok(())
        };
        hlspipe::pipeline::catalogue::plan(store, config, scope, &mut |p| {
            if stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if opts.dry_run || !opts.selects(&p.status) {
                tally.heard(Progress::Left(p));
                return Ok(true);
            }
            batch.push(p);
            if batch.len() == 10 {
                flush(&mut batch)?;
            }
            Ok(true)
        })?;
        flush(&mut batch)?;
        Ok(())
    }
}

/// How the changed masters are invalidated.
#[derive(Clone, Copy)]
struct Cdn {
    batch: usize,
    wait: bool,
}

/// What the run did so far, printed as it goes and summed up at the end.
struct Tally {
    json: bool,
    dry_run: bool,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    planned: BTreeMap<&'static str, usize>,
    outcomes: BTreeMap<String, usize>,
    /// (key, why) of each failure.
    failures: Vec<(String, String)>,
    bytes_done: u64,
    selected: usize,
    done: usize,
    enqueued: usize,
    /// The masters a run replaced the live version of, and the orphans.
    changed: Vec<String>,
    orphans: Vec<String>,
    /// Every planned title's folder, for `--gc`.
    folders: Vec<String>,
    /// Masters invalidated.
    invalidated: usize,
}

impl Tally {
    fn new(json: bool, dry_run: bool) -> Tally {
        let bar = (!json && !dry_run && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} titles {wide_bar} {msg} {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Tally {
            json,
            dry_run,
            bar,
            started: Instant::now(),
            state: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a line: above the progress bar on a terminal.
    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    fn heard(&self, progress: Progress) {
        match progress {
            Progress::Left(p) => self.left(p),
            Progress::Started(p) => {
                let mut c = self.counts();
                *c.planned.entry(p.status.name()).or_default() += 1;
                c.folders.push(p.folder.clone());
                c.selected += 1;
                if let Some(bar) = &self.bar {
                    bar.set_length(c.selected as u64);
                }
            }
            Progress::Done(p, handled, took) => self.done(p, &handled.outcome, took),
        }
    }

    /// A title planned and not run (or the plan of a dry run).
    fn left(&self, p: PlannedTitle) {
        let mut c = self.counts();
        *c.planned.entry(p.status.name()).or_default() += 1;
        c.folders.push(p.folder.clone());
        if matches!(p.status, Status::Orphaned(_)) {
            c.orphans.push(p.folder.clone());
        }
        drop(c);
        if self.json {
            self.say(serde_json::json!({ "planned": p }).to_string());
        } else if self.dry_run {
            let why = p
                .status
                .reason()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default();
            self.say(format!("{:<13}  {}{why}", p.status.name(), p.title));
        }
    }

    /// `--invalidate-changed-since`: a title planned, its master noted if it switched
    /// versions at or after `since` (in a dry run, printed).
    fn looked(&self, p: PlannedTitle, since: u64) {
        let mut c = self.counts();
        *c.planned.entry(p.status.name()).or_default() += 1;
        let flipped = p.flipped_at.filter(|at| *at >= since);
        if flipped.is_none() || matches!(p.status, Status::Orphaned(_)) {
            return;
        }
        let path = format!("/{}{}", p.folder, "master.m3u8");
        c.changed.push(path.clone());
        drop(c);
        if self.dry_run {
            if self.json {
                let line = serde_json::json!({ "changed": path, "flipped_at": flipped });
                self.say(line.to_string());
            } else {
                self.say(format!("changed        {path}"));
            }
        }
    }

    fn enqueued(&self, p: PlannedTitle) {
        let mut c = self.counts();
        *c.planned.entry(p.status.name()).or_default() += 1;
        c.enqueued += 1;
        drop(c);
        if self.json {
            self.say(serde_json::json!({ "planned": p, "enqueued": true }).to_string());
        }
    }

    fn done(&self, p: PlannedTitle, outcome: &Outcome, took: Duration) {
        let name = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v["outcome"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        let mut c = self.counts();
        *c.outcomes.entry(name.clone()).or_default() += 1;
        c.done += 1;
        c.bytes_done += p.bytes;
        if let Outcome::Failed { reason, .. } = outcome {
            c.failures
                .push((p.key.clone().unwrap_or_default(), reason.clone()));
        }
        if let Outcome::Processed { version, .. } = outcome {
            if p.live.as_ref().is_some_and(|old| old != version) {
                c.changed.push(format!("/{}{}", p.folder, "master.m3u8"));
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(c.done as u64);
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{:.1} MB/s, {} failed",
                c.bytes_done as f64 / 1e6 / secs,
                c.failures.len()
            ));
        }
        drop(c);
        if self.json {
            let line = serde_json::json!({
                "planned": p, "result": outcome, "seconds": took.as_secs_f64(),
            });
            self.say(line.to_string());
        } else {
            let why = match outcome {
                Outcome::Failed { reason, .. } => format!(": {reason}"),
                _ => String::new(),
            };
            let secs = took.as_secs_f64();
            self.say(format!("{name:<13}  {}  ({secs:.2} s){why}", p.title));
        }
    }

    fn prune(&self, store: &dyn Store) -> anyhow::Result<()> {
        let orphans = self.counts().orphans.clone();
        for folder in orphans {
            let mut removed = remove_title(store, &folder)?;
            // What no manifest recorded (a title left half-removed): everything under it.
            let mut left = Vec::new();
            store.list_pages(&folder, &mut |page| {
                left.extend(page.into_iter().map(|o| o.key));
                Ok(true)
            })?;
            for key in left {
                store.delete(&key)?;
                removed += 1;
            }
            if self.json {
                self.say(serde_json::json!({ "pruned": folder, "objects": removed }).to_string());
            } else {
                self.say(format!("pruned         {folder}  ({removed} objects)"));
            }
        }
        Ok(())
    }

    /// `--gc`: every planned title's expired versions, removed (or listed, in a dry run).
    fn collect(&self, store: &dyn Store, grace: u64) -> anyhow::Result<()> {
        let folders = std::mem::take(&mut self.counts().folders);
        let now = hlspipe::clock::unix_now();
        let (mut versions, mut objects, mut bytes) = (0, 0, 0u64);
        for folder in folders {
            let collected = collect_title(store, &folder, now, grace, self.dry_run)?;
            if collected.versions.is_empty() {
                continue;
            }
            versions += collected.versions.len();
            objects += collected.objects;
            bytes += collected.bytes;
            if self.json {
                let line = serde_json::json!({ "gc": folder, "dry_run": self.dry_run, "collected": collected });
                self.say(line.to_string());
            } else {
                let verb = if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                self.say(format!(
                    "gc             {folder}  {verb} {} ({} objects, {:.1} MB)",
                    collected.versions.join(", "),
                    collected.objects,
                    collected.bytes as f64 / 1e6
                ));
            }
        }
        if !self.json {
            let verb = if self.dry_run {
                "would remove"
            } else {
                "removed"
            };
            self.say(format!(
                "gc: {verb} {versions} versions, {objects} objects, {:.1} MB (grace {grace} s)",
                bytes as f64 / 1e6
            ));
        }
        Ok(())
    }

    /// The changed masters invalidated, `cdn.batch` paths a request; with `cdn.wait`, each
    /// request waited for until CloudFront has completed it.
    fn invalidate(&self, invalidator: &dyn Invalidator, cdn: Cdn) -> anyhow::Result<()> {
        let mut changed = self.counts().changed.clone();
        changed.sort();
        changed.dedup();
        let mut ids = Vec::new();
        for batch in changed.chunks(cdn.batch.clamp(1, INVALIDATION_BATCH)) {
            let reference = batch_reference(batch);
            let id = invalidator.invalidate_with_id(batch, &reference)?;
            if self.json {
                let line = serde_json::json!({
                    "invalidated": batch, "reference": reference, "id": id,
                });
                self.say(line.to_string());
            } else {
                let id = id.as_deref().unwrap_or("requested before");
                let n = batch.len();
                self.say(format!("invalidated    {n} masters: {id} ({reference})"));
            }
            ids.extend(id);
        }
        if cdn.wait {
            for id in &ids {
                invalidator.wait_until_done(id, WAIT_AT_MOST)?;
                if self.json {
                    self.say(serde_json::json!({ "completed": id }).to_string());
                } else {
                    self.say(format!("completed      {id}"));
                }
            }
        }
        self.counts().invalidated = changed.len();
        Ok(())
    }

    /// Prints the summary; an error (exit 1) when a title failed, exit 130 when stopped.
    fn finish(&self, interrupted: bool) -> anyhow::Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let c = self.counts();
        let secs = self.started.elapsed().as_secs_f64();
        if self.json {
            let failed: Vec<_> = c
                .failures
                .iter()
                .map(|(key, why)| serde_json::json!({ "key": key, "reason": why }))
                .collect();
            // JSON names statuses as the title lines do: `up_to_date`.
            let planned: BTreeMap<String, usize> = c
                .planned
                .iter()
                .map(|(k, n)| (k.replace(' ', "_"), *n))
                .collect();
            let summary = serde_json::json!({ "summary": {
                "planned": planned, "outcomes": c.outcomes, "enqueued": c.enqueued,
                "invalidated": c.invalidated,
                "failed": failed, "seconds": secs, "interrupted": interrupted,
            }});
            println!("{summary}");
        } else {
            let planned: Vec<String> = Status::NAMES
                .iter()
                .map(|name| format!("{} {name}", c.planned.get(name).copied().unwrap_or(0)))
                .collect();
            let total: usize = c.planned.values().sum();
            println!("plan: {} ({total} titles)", planned.join(", "));
            if !self.dry_run {
                let outcomes: Vec<String> =
                    c.outcomes.iter().map(|(k, n)| format!("{n} {k}")).collect();
                let rate = c.bytes_done as f64 / 1e6 / secs.max(1e-3);
                println!(
                    "done: {} in {secs:.1} s ({rate:.1} MB/s){}",
                    if outcomes.is_empty() {
                        "nothing".into()
                    } else {
                        outcomes.join(", ")
                    },
                    if c.enqueued > 0 {
                        format!(", {} enqueued", c.enqueued)
                    } else {
                        String::new()
                    }
                );
            }
            if c.invalidated > 0 || (self.dry_run && !c.changed.is_empty()) {
                let verb = if self.dry_run {
                    "to invalidate"
                } else {
                    "invalidated"
                };
                let n = c.changed.len();
                println!("{verb}: {n} masters");
            }
            for (key, why) in &c.failures {
                println!("failed: {key}: {why}");
            }
            if interrupted {
                println!("interrupted: titles not yet started were left; run again to go on");
            }
        }
        if interrupted {
            std::process::exit(130);
        }
        if !c.failures.is_empty() {
            anyhow::bail!("{} of {} titles failed", c.failures.len(), c.done);
        }
        Ok(())
    }
}

/// The same masters, the same invalidation (CloudFront's `CallerReference`).
fn batch_reference(paths: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in paths {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("hlspipe-reprocess-{}", &hex::encode(h.finalize())[..24])
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_since, Cdn, Tally, INVALIDATION_BATCH};
    use hlspipe::pipeline::invalidate::Invalidator;
    use std::sync::Mutex;

    /// What was asked of the CDN: (paths, reference) of each request, and the ids waited for.
    #[derive(Default)]
    struct Recorded {
        requests: Mutex<Vec<(Vec<String>, String)>>,
        waited: Mutex<Vec<String>>,
    }

    impl Invalidator for Recorded {
        fn invalidate(&self, paths: &[String], reference: &str) -> hlspipe::Result<()> {
            let mut requests = self.requests.lock().unwrap();
            requests.push((paths.to_vec(), reference.to_string()));
            Ok(())
        }

        fn invalidate_with_id(
            &self,
            paths: &[String],
            reference: &str,
        ) -> hlspipe::Result<Option<String>> {
            self.invalidate(paths, reference)?;
            Ok(Some(format!("I{}", self.requests.lock().unwrap().len())))
        }

        fn wait_until_done(&self, id: &str, _: std::time::Duration) -> hlspipe::Result<()> {
            self.waited.lock().unwrap().push(id.to_string());
            Ok(())
        }
    }

    /// 3,001 changed masters (and one twice): two requests, 3,000 paths (CloudFront's most
    /// in progress) and 1, each path once, in order, each request with its own reference;
    /// `--wait` waits for both.
    #[test]
    fn changed_masters_are_invalidated_in_batches_of_the_limit() {
        let tally = Tally::new(true, false);
        let mut changed: Vec<String> = (0..3001)
            .rev()
            .map(|i| format!("/hls/t{i:05}.hls/master.m3u8"))
            .collect();
        changed.push(changed[0].clone());
        tally.counts().changed = changed;
        let cdn = Recorded::default();
        let wait = Cdn {
            batch: INVALIDATION_BATCH,
            wait: true,
        };
        tally.invalidate(&cdn, wait).unwrap();
        let requests = cdn.requests.lock().unwrap();
        let sizes: Vec<usize> = requests.iter().map(|(p, _)| p.len()).collect();
        assert_eq!(sizes, [3000, 1]);
        assert_eq!(requests[0].0[0], "/hls/t00000.hls/master.m3u8");
        assert_eq!(requests[1].0[0], "/hls/t03000.hls/master.m3u8");
        assert_ne!(requests[0].1, requests[1].1);
        assert_eq!(*cdn.waited.lock().unwrap(), ["I1", "I2"]);
        assert_eq!(tally.counts().invalidated, 3001);
        // A batch size past the limit is held to it.
        let past = Cdn {
            batch: 5000,
            wait: false,
        };
        drop(requests);
        tally.invalidate(&cdn, past).unwrap();
        assert_eq!(cdn.requests.lock().unwrap()[2].0.len(), 3000);
    }

    #[test]
    fn durations_read_seconds_or_a_unit() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn since_reads_dates_and_times_in_utc() {
        assert_eq!(parse_since("1970-01-01").unwrap(), 0);
        assert_eq!(parse_since("2026-12-01").unwrap(), 1_796_083_200);
        assert_eq!(parse_since("2026-12-01T01:02:03Z").unwrap(), 1_796_086_923);
        assert_eq!(parse_since("2024-02-29").unwrap(), 1_709_164_800);
        assert_eq!(parse_since("1796086923").unwrap(), 1_796_086_923);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("2026-13-01").is_err());
    }
}
