//! A title's preview images, made in the ladder's ffmpeg run from the same decode: a poster
//! (the frame at a tenth of the duration, 640 wide) and a thumbnail sprite (at most 100
//! thumbnails 160 wide, 10 to a row, one every [`Thumbnails::interval`] seconds) with a
//! WebVTT track naming each thumbnail's rectangle (`thumbnails.jpg#xywh=x,y,w,h`, the media
//! fragment syntax players use for scrubbing previews).

use std::fmt::Write as _;

/// File names in the version's folder (`v/<version>/`).
pub const POSTER: &str = "poster.jpg";
pub const SPRITE: &str = "thumbnails.jpg";
pub const TRACK: &str = "thumbnails.vtt";

const POSTER_WIDTH: u32 = 640;
const THUMB_WIDTH: u32 = 160;
const COLUMNS: u32 = 10;
const MAX_THUMBS: u32 = 100;

/// The sprite's layout for a title of `duration` seconds shown at `display`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thumbnails {
    /// Seconds between thumbnails (whole seconds, at least 1).
    pub interval: u32,
    pub count: u32,
    /// One thumbnail's size.
    pub size: (u32, u32),
    pub columns: u32,
    pub rows: u32,
}

impl Thumbnails {
    pub fn plan(duration: f64, display: (u32, u32)) -> Option<Thumbnails> {
        if !(duration.is_finite() && duration > 0.0) || display.0 == 0 || display.1 == 0 {
            return None;
        }
        let interval = ((duration / f64::from(MAX_THUMBS)).ceil() as u32).max(1);
        let count = ((duration / f64::from(interval)).ceil() as u32).clamp(1, MAX_THUMBS);
        let size = scaled(display, THUMB_WIDTH);
        let columns = count.min(COLUMNS);
        Some(Thumbnails {
            interval,
            count,
            size,
            columns,
            rows: count.div_ceil(columns),
        })
    }

    /// `[in]…[out]`: one thumbnail every interval, scaled, tiled into one picture.
    pub fn filter(&self) -> String {
        format!(
            "fps=1/{},scale={}:{}:flags=bicubic,setsar=1,tile={}x{}",
            self.interval, self.size.0, self.size.1, self.columns, self.rows
        )
    }

    /// The WebVTT track: a cue per thumbnail, its rectangle in the sprite. Ends at `duration`.
    pub fn track(&self, duration: f64) -> String {
        let mut vtt = String::from("WEBVTT\n");
        for i in 0..self.count {
            let start = f64::from(i * self.interval);
            let end = (f64::from((i + 1) * self.interval)).min(duration.max(start));
            let (w, h) = self.size;
            let (x, y) = ((i % self.columns) * w, (i / self.columns) * h);
            let _ = write!(
                vtt,
                "\n{} --> {}\n{SPRITE}#xywh={x},{y},{w},{h}\n",
                timestamp(start),
                timestamp(end)
            );
        }
        vtt
    }
}

/// The poster's filter: the first frame at or after a tenth of the duration, 640 wide (or
/// the source's width, when smaller).
pub fn poster_filter(duration: f64, display: (u32, u32)) -> String {
    let at = (duration / 10.0).max(0.0);
    let (w, h) = scaled(display, POSTER_WIDTH);
    format!("select='gte(t\\,{at:.3})',scale={w}:{h}:flags=bicubic,setsar=1")
}

/// `width` wide (at most the source's), the height keeping the aspect ratio, both even.
fn scaled(display: (u32, u32), width: u32) -> (u32, u32) {
    let w = width.min(display.0).max(2) & !1;
    let h =
        ((u64::from(w) * u64::from(display.1) / u64::from(display.0.max(1))) as u32).max(2) & !1;
    (w, h)
}

fn timestamp(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sprite_of_at_most_a_hundred() {
        let short = Thumbnails::plan(8.0, (1920, 1080)).unwrap();
        assert_eq!(
            (short.interval, short.count, short.columns, short.rows),
            (1, 8, 8, 1)
        );
        assert_eq!(short.size, (160, 90));
        let hour = Thumbnails::plan(3600.0, (1080, 1920)).unwrap();
        assert_eq!(
            (hour.interval, hour.count, hour.columns, hour.rows),
            (36, 100, 10, 10)
        );
        assert_eq!(hour.size, (160, 284));
        assert!(Thumbnails::plan(0.0, (320, 180)).is_none());
        assert_eq!(
            short.filter(),
            "fps=1/1,scale=160:90:flags=bicubic,setsar=1,tile=8x1"
        );
    }

    #[test]
    fn the_track_names_each_rectangle() {
        let t = Thumbnails::plan(12.5, (320, 180)).unwrap();
        let vtt = t.track(12.5);
        assert!(vtt.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nthumbnails.jpg#xywh=0,0,160,90\n"
        ));
        assert!(
            vtt.contains("00:00:12.000 --> 00:00:12.500\nthumbnails.jpg#xywh=320,90,160,90\n"),
            "{vtt}"
        );
        assert_eq!(vtt.matches("-->").count(), 13);
        assert_eq!(
            poster_filter(20.0, (320, 180)),
            "select='gte(t\\,2.000)',scale=320:180:flags=bicubic,setsar=1"
        );
    }
}
