//! The job logic and the event surfaces: `Pipeline` on bucket folders and
//! `hlspipe process-event` on the event JSON of `fixtures/events/`.

#[path = "../support/mod.rs"]
mod support;

mod catalogue;
mod events;
mod fanout;
mod kill;
mod progressive;
mod race;
mod subtitles;
mod worker;
