//! The layer reader on arbitrary bytes, as gzip and as plain tar: path rules, links,
//! whiteouts, the digest check and the limits. Any panic, hang, runaway allocation, or a file
//! that lands outside the root is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staticpack::digest::Digest;
use staticpack::image::LocalBlob;
use staticpack::run::{UnpackLimits, unpack_layer};

fuzz_target!(|data: &[u8]| {
    let Ok(work) = tempfile::tempdir() else { return };
    let path = work.path().join("layer");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let root = work.path().join("root");
    let fence = work.path().join("fence");
    for media_type in [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
    ] {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir(&root).unwrap();
        let layer = LocalBlob {
            digest: Digest::of_bytes(data),
            size: data.len() as u64,
            media_type: media_type.into(),
            path: path.clone(),
        };
        let limits = UnpackLimits {
            max_bytes: 4 << 20,
            max_entries: 4096,
        };
        let _ = unpack_layer(&layer, &root, &limits);
        // Nothing may appear beside the root.
        let beside: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(beside.len() <= 2, "{beside:?}");
        assert!(!fence.exists());
    }
    make_removable(&root);
});

/// Directories a layer made read-only must not stop the cleanup.
fn make_removable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            make_removable(&e.path());
        }
    }
}
