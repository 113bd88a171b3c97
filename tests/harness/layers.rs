//! The crate's layering, held to its imports: every module of `src/` may name only the
//! modules below it (the table in `src/lib.rs`), and the pure media core names no storage,
//! AWS, async runtime, clock, subprocess or environment. A new import that breaks a layer
//! fails here, by file and line, instead of going unnoticed.

use crate::support::repo_root;
use std::path::{Path, PathBuf};

/// What each top-level module of `src/` may name with `crate::`, besides itself.
/// `error`, `title`, `percent` and `clock` are the shared foundation; `logs` names nothing
/// in the crate, and its `escape_name` is how any layer writes an outside name in a log line.
const ALLOWED: &[(&str, &[&str])] = &[
    ("percent", &[]),
    ("clock", &[]),
    ("logs", &[]),
    ("error", &[]),
    ("title", &["percent"]),
    ("media", &["error"]),
    // ffmpeg beside the packager: reads sources, knows the packager's plan, never stores.
    ("transcode", &["error", "media"]),
    ("store", &["error", "media", "logs"]),
    (
        "pipeline",
        &[
            "error",
            "media",
            "store",
            "title",
            "percent",
            "clock",
            "transcode",
        ],
    ),
    (
        "aws",
        &["error", "media", "store", "pipeline", "title", "clock"],
    ),
    (
        "delivery",
        &[
            "error", "media", "store", "pipeline", "title", "percent", "clock",
        ],
    ),
    (
        "dev",
        &[
            "error", "media", "store", "pipeline", "delivery", "title", "percent", "clock", "logs",
        ],
    ),
    // Test support: the rule checker and doubles, and the fuzzing targets' properties, which
    // reach the signing and request rules of `delivery` (never its server).
    (
        "testing",
        &[
            "error", "media", "store", "pipeline", "delivery", "title", "percent",
        ],
    ),
];

/// Paths the pure core must not touch (DESIGN.md "What flows where").
const IMPURE: &[&str] = &[
    "tokio::",
    "aws_",
    "std::process",
    "std::env",
    "SystemTime",
    "Instant::now",
    "std::net",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line without its comment (doc links may name any module).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every `crate::<module>` a line names (`crate::Error` and `crate::Result`, the error
/// module's re-exports, start upper-case and are not modules).
fn crate_modules(line: &str) -> Vec<&str> {
    code(line)
        .match_indices("crate::")
        .filter_map(|(i, m)| {
            let rest = &line[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.iter().next().unwrap().to_string_lossy();
        if first == "bin" || first == "lib.rs" {
            continue; // the binary wires everything; lib.rs declares the modules
        }
        let layer = first.trim_end_matches(".rs");
        let allowed = ALLOWED
            .iter()
            .find(|(name, _)| *name == layer)
            .unwrap_or_else(|| panic!("src/{layer}: a new top-level module needs a row in ALLOWED"))
            .1;
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for module in crate_modules(line) {
                if module == layer || allowed.contains(&module) {
                    continue;
                }
                broken.push(format!(
                    "src/{}:{}: {layer} names crate::{module}",
                    rel.display(),
                    n + 1
                ));
            }
            if layer == "media" {
                for impure in IMPURE {
                    if code(line).contains(impure) {
                        broken.push(format!(
                            "src/{}:{}: the pure media core uses {impure}",
                            rel.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_an_import_that_breaks_a_layer() {
    assert_eq!(
        crate_modules("use crate::store::Store; // crate::aws in a comment"),
        ["store"]
    );
    assert_eq!(
        crate_modules("let x: crate::Result<()> = crate::pipeline::job::run();"),
        ["pipeline"]
    );
}
