//! Event → job → publish: what turns one upload into a live title, whatever carried the
//! event (the CLI's `process-event`, the Lambda function, the SQS consumer in
//! [`crate::aws::sqs`], the dev server's upload watcher).
//!
//! ```text
//! event JSON ─► event::Record ─► job (config, title) ─► media::package ─► publish ─► manifest
//! ```
//!
//! Everything here reaches storage through [`crate::store::Store`] and the CDN through
//! [`invalidate::Invalidator`]; AWS types stay in [`crate::aws`].

pub mod batch;
pub mod catalogue;
pub mod config;
pub mod event;
pub mod fanout;
pub mod grow;
pub mod invalidate;
pub mod job;
pub mod keys;
pub mod ladder;
pub mod manifest;
pub mod notify;
pub mod outcome;
pub mod pool;
pub mod publish;
pub mod reprocess;
pub mod retention;
pub mod work;
