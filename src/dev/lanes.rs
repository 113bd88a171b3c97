//! The watcher's records as jobs: in parallel across uploads, in order for one upload.
//!
//! One job per record, on the blocking pool. Records of the same upload (its key, and its
//! subtitle side files `ep1.en.vtt` beside `ep1.mp4`) share a lane and run one after the
//! other, in the order the watcher gave them; different uploads run side by side, up to a
//! limit, so a large upload being hashed and packaged does not hold back a small one.

use crate::pipeline::event::Record;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Jobs queued and running.
pub struct Lanes<F> {
    run: Arc<F>,
    limit: usize,
    running: JoinSet<String>,
    busy: HashSet<String>,
    queued: VecDeque<Record>,
}

impl<F: Fn(&Record) + Send + Sync + 'static> Lanes<F> {
    /// At most `limit` (at least 1) jobs at once, each `run(record)`.
    pub fn new(limit: usize, run: F) -> Self {
        Lanes {
            run: Arc::new(run),
            limit: limit.max(1),
            running: JoinSet::new(),
            busy: HashSet::new(),
            queued: VecDeque::new(),
        }
    }

    /// Queues `records` and starts what may start. Must be called within a tokio runtime.
    pub fn submit(&mut self, records: Vec<Record>) {
        self.queued.extend(records);
        self.start_ready();
    }

    /// Waits for one job to end and starts what that lets start; `None` when none runs.
    pub async fn next_done(&mut self) -> Option<()> {
        let lane = self.running.join_next().await?;
        // A job's panic is caught inside it, so its lane always comes back.
        if let Ok(lane) = lane {
            self.busy.remove(&lane);
        }
        self.start_ready();
        Some(())
    }

    /// Jobs running and queued.
    pub fn pending(&self) -> usize {
        self.running.len() + self.queued.len()
    }

    fn start_ready(&mut self) {
        let mut waiting = VecDeque::new();
        let mut held = HashSet::new();
        while let Some(record) = self.queued.pop_front() {
            let lane = lane(&record.job.key);
            if self.running.len() >= self.limit || self.busy.contains(&lane) || held.contains(&lane)
            {
                held.insert(lane);
                waiting.push_back(record);
                continue;
            }
            self.busy.insert(lane.clone());
            let run = Arc::clone(&self.run);
            self.running.spawn_blocking(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&record)));
                if ran.is_err() {
                    tracing::error!(
                        "the job for {} panicked",
                        crate::logs::escape_name(&record.job.key)
                    );
                }
                lane
            });
        }
        self.queued = waiting;
    }
}

/// The lane of a key: its folder and its file name up to the first dot, so that
/// `show/ep1.mp4`, `show/ep1.en.vtt` and `show/ep1.fr.srt` share one.
fn lane(key: &str) -> String {
    let (folder, name) = key.rsplit_once('/').map_or(("", key), |(f, n)| (f, n));
    let stem = name.split('.').next().unwrap_or(name);
    format!("{folder}/{stem}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{Job, RecordKind};
    use std::sync::mpsc;
    use std::sync::Mutex;

    fn record(key: &str) -> Record {
        Record {
            reprocess: false,
            kind: RecordKind::Created,
            job: Job {
                bucket: "media".into(),
                key: key.into(),
                etag: None,
                size: None,
                sequencer: None,
            },
            message_id: None,
        }
    }

    #[test]
    fn side_files_share_the_lane_of_their_video() {
        assert_eq!(lane("show/ep1.mp4"), lane("show/ep1.en.vtt"));
        assert_ne!(lane("show/ep1.mp4"), lane("show/ep10.mp4"));
        assert_ne!(lane("a/ep1.mp4"), lane("b/ep1.mp4"));
    }

    /// The dev watcher hashes large uploads inline: a 5 GB upload held back an unrelated
    /// small one. Here the large upload's job blocks until the small one has finished: with
    /// one queue for everything it would give up waiting (after 120 s) and run first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dev_watcher_hashes_large_uploads_inline_a_small_upload_is_not_held_back() {
        let (small_done, small_seen) = mpsc::channel::<()>();
        let small_seen = Mutex::new(small_seen);
        let order = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&order);
        let mut lanes = Lanes::new(2, move |r: &Record| {
            if r.job.key == "uploads/big.mp4" {
                // The large upload waits (generously) for the small one to be done.
                let got = small_seen
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(120));
                log.lock().unwrap().push(format!("big ({})", got.is_ok()));
            } else {
                log.lock().unwrap().push(r.job.key.clone());
                if r.job.key == "uploads/small.mp4" {
                    small_done.send(()).unwrap();
                }
            }
        });
        lanes.submit(vec![record("uploads/big.mp4"), record("uploads/small.mp4")]);
        while lanes.next_done().await.is_some() {}
        assert_eq!(
            *order.lock().unwrap(),
            ["uploads/small.mp4".to_string(), "big (true)".to_string()]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_of_one_upload_run_in_order_one_at_a_time() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&order);
        let mut lanes = Lanes::new(4, move |r: &Record| {
            log.lock().unwrap().push(format!("start {}", r.job.key));
            std::thread::yield_now();
            log.lock().unwrap().push(format!("end {}", r.job.key));
        });
        lanes.submit(vec![record("u/ep1.mp4"), record("u/ep1.en.vtt")]);
        lanes.submit(vec![record("u/ep1.mp4")]);
        assert_eq!(lanes.pending(), 3);
        while lanes.next_done().await.is_some() {}
        assert_eq!(
            *order.lock().unwrap(),
            [
                "start u/ep1.mp4",
                "end u/ep1.mp4",
                "start u/ep1.en.vtt",
                "end u/ep1.en.vtt",
                "start u/ep1.mp4",
                "end u/ep1.mp4"
            ]
        );
    }
}
