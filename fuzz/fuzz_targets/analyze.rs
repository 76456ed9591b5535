//! The verify analyzer on arbitrary bytes: facts, diagnosis under every requirement, the
//! one-line summary and the JSON report (the text report is rendered by the CLI, from the
//! same facts and findings). Any panic, hang or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticpack::verify::{self, FileReport, Requirement};

fuzz_target!(|data: &[u8]| {
    // Unguarded: analyze() turns a panic into an error, which would hide it from the fuzzer.
    let Ok(facts) = verify::analyze_unguarded(data) else {
        return;
    };
    let _ = verify::summary(&facts);
    for require in [
        Requirement::Static,
        Requirement::StaticPie,
        Requirement::Any,
    ] {
        let findings = verify::diagnose(&facts, require);
        let report = FileReport {
            path: "fuzz".into(),
            require,
            result: Ok((facts.clone(), findings)),
        };
        let json = report.to_json();
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{json}"
        );
    }
});
