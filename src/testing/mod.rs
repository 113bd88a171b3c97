//! Test-only parts, behind the `testing` feature: an HLS rule checker (an independent
//! reader of what the packager writes) and recording doubles. The library's own tests, the
//! integration tests and the Lambda crate's dev-dependencies use them; the default build of
//! the library does not ship them.

pub mod catalogue;
pub mod check;
pub mod fuzz;

use crate::error::Result;
use crate::pipeline::invalidate::Invalidator;
use std::sync::Mutex;

/// Remembers every call: for tests.
#[derive(Default)]
pub struct RecordingInvalidator {
    calls: Mutex<Vec<(Vec<String>, String)>>,
}

impl RecordingInvalidator {
    /// The paths of every call, in order.
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(p, _)| p.clone()).collect())
            .unwrap_or_default()
    }

    /// The reference of every call, in order.
    pub fn references(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|c| c.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }
}

impl Invalidator for RecordingInvalidator {
    fn invalidate(&self, paths: &[String], reference: &str) -> Result<()> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((paths.to_vec(), reference.to_string()));
        }
        Ok(())
    }
}

/// A [`crate::pipeline::notify::Notifier`] that remembers every event.
#[derive(Default)]
pub struct RecordingNotifier {
    events: Mutex<Vec<crate::pipeline::notify::TitleEvent>>,
}

impl RecordingNotifier {
    pub fn events(&self) -> Vec<crate::pipeline::notify::TitleEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl crate::pipeline::notify::Notifier for RecordingNotifier {
    fn notify(&self, event: &crate::pipeline::notify::TitleEvent) -> Result<()> {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
        Ok(())
    }
}
