//! Bounded parallelism on plain threads: writing a title's objects, reprocessing sources.
//! The store trait is synchronous (see [`crate::store`]), so scoped threads are all it takes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// More threads than this only add contention on a store or a two-core machine.
const MAX_THREADS: usize = 64;

/// Runs `f` on every item with at most `concurrency` items in flight (at least 1, at most
/// 64), handing items out in order. Results come back in item order. At the first error no
/// further item is started, and that error is returned once the running ones end.
pub fn try_map_bounded<T, R, E>(
    items: &[T],
    concurrency: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let threads = concurrency.clamp(1, MAX_THREADS).min(items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    match f(item) {
                        Ok(r) => {
                            if let Some(slot) =
                                results.lock().ok().as_mut().and_then(|v| v.get_mut(i))
                            {
                                *slot = Some(r);
                            }
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Ok(Some(e)) = first_error.into_inner() {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn results_keep_item_order_and_concurrency_is_bounded() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..50).collect();
        let out = try_map_bounded(&items, 3, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(i * 2)
        })
        .unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn the_first_error_stops_new_work() {
        let started = AtomicUsize::new(0);
        let items: Vec<u32> = (0..1000).collect();
        let err = try_map_bounded(&items, 2, |&i| {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 3 {
                Err(format!("item {i}"))
            } else {
                // Slow enough that the other thread cannot run through every item
                // between item 3's hand-out and its failure, even on a loaded machine.
                std::thread::sleep(std::time::Duration::from_millis(1));
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err, "item 3");
        assert!(started.load(Ordering::SeqCst) < items.len());
        assert_eq!(
            try_map_bounded(&[] as &[u8], 0, |_| Ok::<_, ()>(())),
            Ok(vec![])
        );
    }
}
