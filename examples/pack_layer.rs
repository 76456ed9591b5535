//! Packs one file into one layer blob: the layer step of `staticpack build` alone (no build, no
//! run proof), for benches/layers.sh.
//!
//! Usage: pack_layer FILE BLOBS_DIR [gzip|zstd] — prints the blob's digest, diff_id and size.

use staticpack::image::{
    EntryKind, FileSource, LayerCompression, LayerEntry, LayerSpec, write_layer_as,
};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, blobs, compression) = match args.as_slice() {
        [file, blobs] => (file, blobs, LayerCompression::Gzip),
        [file, blobs, c] if c == "gzip" => (file, blobs, LayerCompression::Gzip),
        [file, blobs, c] if c == "zstd" => (file, blobs, LayerCompression::Zstd),
        _ => {
            eprintln!("usage: pack_layer FILE BLOBS_DIR [gzip|zstd]");
            return ExitCode::from(2);
        }
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
    match write_layer_as(&spec, blobs.as_ref(), compression) {
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
