//! Any bytes through the demuxer and the packager: an error is fine, a panic, an
//! overflow (overflow checks are on) or an out-of-bounds read is a bug. Every body
//! the packager accepts must also be readable from the input it came from.
#![no_main]

use hlspipe::media::package::{package, Input, Settings};
use hlspipe::media::source::{MemorySource, Source};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let source: Arc<dyn Source> = Arc::new(MemorySource::new(data.to_vec(), "fuzz"));
    let input = Input { source: Arc::clone(&source), etag: None };
    if let Ok(title) = package(std::slice::from_ref(&input), &Settings::default()) {
        for obj in title.media.iter().chain(&title.playlists) {
            obj.body
                .to_vec(std::slice::from_ref(&source))
                .expect("an accepted body must be readable");
        }
    }
});
