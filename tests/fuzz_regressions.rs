//! The fuzzers' findings and seeds, replayed on every `cargo test`: each
//! file under `fuzz/regressions/<target>/` and `fuzz/seeds/<target>/` goes
//! through the same check its fuzz target runs (`fuzz/src/lib.rs`), so a
//! fixed finding cannot come back unnoticed, though CI runs no fuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod harness;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn fuzz_regressions_and_seeds_pass_their_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    let mut regressions = 0;
    for (target, check) in harness::TARGETS {
        for kind in ["regressions", "seeds"] {
            let files = inputs(&root.join(kind).join(target));
            if kind == "regressions" {
                regressions += files.len();
            }
            for file in files {
                let data = std::fs::read(&file).expect("a readable input");
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    failures.push(format!("{}: {message}", file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(regressions > 0, "no inputs under fuzz/regressions/");
}
