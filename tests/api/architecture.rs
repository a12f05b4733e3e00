//! The dependency direction of ports and adapters, checked rather than remembered.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files_under(dir: &str) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut paths);
    paths.into_iter().map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap())).collect()
}

#[test]
fn the_core_uses_no_framework_or_storage_crate() {
    for (path, text) in files_under("src/domain") {
        for banned in [
            "axum",
            "tonic",
            "sqlx",
            "async_graphql",
            "quick_xml",
            "hyper",
            "tower",
            "crate::storage",
            "crate::adapters",
            "crate::platform",
        ] {
            assert!(
                !text.contains(&format!("use {banned}")) && !text.contains(&format!("{banned}::")),
                "{path} uses {banned}"
            );
        }
    }
}

#[test]
fn only_the_composition_root_and_storage_know_the_storage_module() {
    for dir in ["src/adapters", "src/platform", "src/domain"] {
        for (path, text) in files_under(dir) {
            assert!(!text.contains("crate::storage"), "{path} imports storage");
            assert!(!text.contains("sqlx"), "{path} mentions sqlx");
        }
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    for (path, text) in files_under("src") {
        assert!(text.starts_with("//!"), "{path} lacks a //! header");
    }
}

#[test]
fn an_adapter_never_imports_another_adapter() {
    let adapters = ["rest", "soap", "sse", "ws", "graphql", "grpc"];
    for own in adapters {
        for (path, text) in files_under(&format!("src/adapters/{own}")) {
            for other in adapters {
                let needle = format!("crate::adapters::{other}");
                assert!(
                    !text.contains(&needle),
                    "{path} names {needle}: adapters share only adapters::{{Shared, http_error, request}}"
                );
            }
        }
    }
}
