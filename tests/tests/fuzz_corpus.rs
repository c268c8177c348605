//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/machine` and
//! `fuzz/corpus/adapters`) through their fuzz models on stable Rust, so every seed, and every crash once fixed, stays a
//! regression test of the ordinary test run.
//!
//! To fuzz for new inputs: `cd fuzz && cargo +nightly fuzz run machine`.
//! To read what an input does: `HEARTBEAT_FUZZ_TRACE=1 cargo test -p heartbeat-tests
//! --test fuzz_corpus -- --nocapture`.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

#[test]
fn every_corpus_input_passes_the_fuzz_model() {
    replay("machine", heartbeat_fuzz::run);
}

#[test]
fn every_adapter_corpus_input_passes_the_adapter_fuzz_model() {
    replay("adapters", heartbeat_fuzz::adapters::run);
}

/// Runs every input of `fuzz/corpus/<target>` through `model`; fails naming each
/// input that broke an invariant.
fn replay(target: &str, model: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(
        !inputs.is_empty(),
        "fuzz/corpus/{target} is empty: the corpus must be committed"
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = panic::catch_unwind(|| model(&data));
            outcome.is_err().then(|| path.display().to_string())
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} corpus inputs broke an invariant (see the panics above): {failed:#?}",
        failed.len(),
        inputs.len()
    );
}

/// Every file in the committed corpus of `target`, in a stable order.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}
