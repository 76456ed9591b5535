//! Packs one file into one layer blob: the layer step of `staticpack build` alone (no build, no
//! run proof), for benches/layers.sh.
//!
//! Usage: pack_layer FILE BLOBS_DIR — prints the blob's digest, diff_id and size.

use staticpack::image::{EntryKind, FileSource, LayerEntry, LayerSpec, write_layer};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, blobs] = args.as_slice() else {
        eprintln!("usage: pack_layer FILE BLOBS_DIR");
        return ExitCode::from(2);
    };
    let spec = LayerSpec {
        entries: vec![LayerEntry {
            path: "app".into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Path(PathBuf::from(file))),
        }],
        mtime: 0,
        comment: format!("pack_layer {file}"),
    };
    if let Err(e) = std::fs::create_dir_all(blobs) {
        eprintln!("pack_layer: creating {blobs}: {e}");
        return ExitCode::FAILURE;
    }
    match write_layer(&spec, blobs.as_ref()) {
        Ok(l) => {
            println!("{} {} {}", l.digest, l.diff_id, l.size);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pack_layer: {e}");
            ExitCode::FAILURE
        }
    }
}
