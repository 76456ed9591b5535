//! Pushing an image: blobs (skip, mount, upload with resume), then manifests and tags.

use super::auth::repository_scope;
use super::errors::RegistryError;
use super::mounts::BlobLocations;
use super::plan::{BlobFacts, BlobStep, plan_blob};
use super::progress::Progress;
use super::reference::Reference;
use super::report::{BlobAction, BlobReport, PushReport, PushedReference, PushedReferrers};
use super::session::{Call, Client, ClientOptions, Registry};
use super::transport::{Body, FileSection, Resp, resolve_location, with_query};
use super::{LayoutImage, LocalBlob, LocalManifest};
use crate::digest::Digest;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use ureq::http::Method;

const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// How blobs travel.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Blobs larger than this go in `PATCH` chunks of this size, which survive a dropped
    /// connection (resume from the registry's `Range`); smaller ones in one `PUT`.
    pub chunk_size: u64,
    /// Blobs checked and uploaded at once.
    pub concurrency: usize,
    /// Repositories of the target registry to try mounting blobs from, besides the ones
    /// this push and the blob cache know.
    pub mount_from: Vec<String>,
    /// Where to remember which repositories hold which blobs, for mounts across runs
    /// ([`crate::cache::CacheDir::blob_locations`] in the CLI). `None`: only this run's knowledge.
    pub blob_cache: Option<PathBuf>,
    /// Push the layout's SBOMs and statements with the image (false: the image alone, for
    /// registries that refuse artifact manifests).
    pub referrers: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_size: 32 << 20,
            concurrency: 4,
            mount_from: Vec::new(),
            blob_cache: None,
            referrers: true,
        }
    }
}

/// Opens the layout, picks the image tagged `tag` (or the only one) and pushes it to every
/// target. Several targets in one repository are several tags of one upload.
pub fn push(
    layout: &Path,
    tag: Option<&str>,
    targets: &[Reference],
    client_options: &ClientOptions,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport, RegistryError> {
    let image = LayoutImage::open(layout, tag)?;
    Client::new(client_options.clone()).push(&image, targets, options, progress)
}

struct UploadState {
    location: String,
    offset: u64,
}

enum Started {
    Mounted,
    MountRefused,
    Session(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Pushes `image` to every target (see [`push`]).
    pub fn push(
        &self,
        image: &LayoutImage,
        targets: &[Reference],
        options: &PushOptions,
        p: &dyn Progress,
    ) -> Result<PushReport, RegistryError> {
        if targets.is_empty() {
            return Err(RegistryError::NoTargets);
        }
        for target in targets {
            if let Some(digest) = &target.digest {
                if digest != image.digest() {
                    return Err(RegistryError::ReferenceDigestMismatch {
                        reference: target.to_string(),
                        expected: digest.to_string(),
                        actual: image.digest().to_string(),
                    });
                }
            }
        }
        let mut report = PushReport {
            digest: image.digest().clone(),
            media_type: image.root.media_type.clone(),
            size: image.root.bytes.len() as u64,
            references: Vec::new(),
            blobs: Vec::new(),
            warnings: Vec::new(),
            referrers: Vec::new(),
        };
        // What this client learned in earlier pushes, plus the cache file if there is one.
        let (mut locations, warning) = BlobLocations::load(options.blob_cache.as_deref());
        if let Some(warning) = &warning {
            p.note(warning);
        }
        report.warnings.extend(warning);
        locations.merge_from(&lock(&self.known_blobs));
        let locations = Mutex::new(locations);

        // One upload per repository, however many tags it gets.
        let mut groups: Vec<(&str, &str, Vec<&Reference>)> = Vec::new();
        for target in targets {
            match groups
                .iter_mut()
                .find(|(r, repo, _)| *r == target.registry && *repo == target.repository)
            {
                Some((_, _, refs)) => refs.push(target),
                None => groups.push((&target.registry, &target.repository, vec![target])),
            }
        }

        let blobs = image.blobs();
        let mut outcome = Ok(());
        for (registry, repository, refs) in &groups {
            let result = self.push_repository(
                registry,
                repository,
                refs,
                image,
                &blobs,
                options,
                &locations,
                &mut report,
                p,
            );
            if let Err(e) = result {
                outcome = Err(e);
                break;
            }
        }
        // What did make it is worth remembering even when a later repository failed.
        *lock(&self.known_blobs) = lock(&locations).in_memory();
        if let Some(warning) = lock(&locations).save() {
            p.note(&warning);
            report.warnings.push(warning);
        }
        outcome?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_repository(
        &self,
        registry: &str,
        repository: &str,
        refs: &[&Reference],
        image: &LayoutImage,
        blobs: &[&LocalBlob],
        options: &PushOptions,
        locations: &Mutex<BlobLocations>,
        report: &mut PushReport,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let reg = self.registry(registry, p)?;
        let scopes = vec![repository_scope(repository, "pull,push")];
        // The token before the parallel uploads start, so that they do not all ask at once.
        self.authorization(&reg, repository, &scopes, "push to", p)?;
        report
            .warnings
            .extend(self.credential_warnings(&reg, repository));

        report
            .blobs
            .extend(self.push_blobs(&reg, repository, blobs, options, locations, p)?);
        self.push_children(&reg, repository, &image.root, &mut HashSet::new(), p)?;
        for target in refs {
            let (reference, tag) = match (&target.tag, &target.digest) {
                (Some(tag), _) => (tag.clone(), Some(tag.clone())),
                (None, Some(digest)) => (digest.to_string(), None),
                // Like docker: no tag means `latest`.
                (None, None) => ("latest".to_owned(), Some("latest".to_owned())),
            };
            self.put_manifest(&reg, repository, &reference, &image.root, p)?;
            let pushed = match &tag {
                Some(tag) => format!("{registry}/{repository}:{tag}"),
                None => format!("{registry}/{repository}@{}", image.digest()),
            };
            p.manifest_pushed(&pushed, image.digest());
            report.references.push(PushedReference {
                reference: pushed,
                pinned: format!("{registry}/{repository}@{}", image.digest()),
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                tag,
            });
        }
        self.push_referrers(&reg, repository, image, options, locations, report, p)
    }

    /// The layout's artifact manifests about the image and, for an index, about each of its
    /// platforms' manifests (SBOMs, statements are per platform): see [`Self::push_referrers_of`].
    #[allow(clippy::too_many_arguments)]
    fn push_referrers(
        &self,
        reg: &Registry,
        repository: &str,
        image: &LayoutImage,
        options: &PushOptions,
        locations: &Mutex<BlobLocations>,
        report: &mut PushReport,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        if !options.referrers {
            return Ok(());
        }
        fn subjects<'a>(m: &'a LocalManifest, out: &mut Vec<&'a Digest>) {
            if !out.contains(&&m.digest) {
                out.push(&m.digest);
            }
            for child in &m.children {
                subjects(child, out);
            }
        }
        let mut all = Vec::new();
        subjects(&image.root, &mut all);
        for subject in all {
            self.push_referrers_of(
                reg, repository, image, subject, options, locations, report, p,
            )?;
        }
        Ok(())
    }

    /// The layout's artifact manifests about `subject`: their blobs, each manifest by digest,
    /// then, when the registry has no referrers API, the referrers tag schema's index
    /// (`sha256-<hex>`), merged with what that tag already listed.
    #[allow(clippy::too_many_arguments)]
    fn push_referrers_of(
        &self,
        reg: &Registry,
        repository: &str,
        image: &LayoutImage,
        subject: &Digest,
        options: &PushOptions,
        locations: &Mutex<BlobLocations>,
        report: &mut PushReport,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let layout = crate::image::Layout::open(&image.dir)?;
        let referrers =
            crate::supply::referrers(&layout, subject).map_err(|e| RegistryError::Referrers {
                layout: image.dir.clone(),
                reason: e.to_string(),
            })?;
        if referrers.is_empty() {
            return Ok(());
        }
        let mut blobs: Vec<LocalBlob> = Vec::new();
        for r in &referrers {
            let empty = Digest::of_bytes(crate::supply::EMPTY_JSON);
            for (digest, size, media_type) in [
                (
                    empty,
                    crate::supply::EMPTY_JSON.len() as u64,
                    crate::supply::EMPTY_MEDIA_TYPE.to_owned(),
                ),
                (
                    r.layer_digest.clone(),
                    r.layer_size,
                    r.layer_media_type.clone(),
                ),
            ] {
                if !blobs.iter().any(|b| b.digest == digest) {
                    blobs.push(LocalBlob {
                        path: layout.blob_path(&digest),
                        digest,
                        size,
                        media_type,
                    });
                }
            }
        }
        let refs: Vec<&LocalBlob> = blobs.iter().collect();
        report
            .blobs
            .extend(self.push_blobs(reg, repository, &refs, options, locations, p)?);
        for r in &referrers {
            let path = layout.blob_path(&r.digest);
            let bytes = std::fs::read(&path).map_err(|e| RegistryError::Referrers {
                layout: image.dir.clone(),
                reason: format!("reading {}: {e}", path.display()),
            })?;
            self.put_referrer(reg, repository, r, bytes, p)?;
        }
        let fallback_tag = if self.has_referrers_api(reg, repository, subject, p)? {
            None
        } else {
            let tag = format!("sha256-{}", subject.hex());
            let index = self.referrers_index(reg, repository, &tag, &referrers, p)?;
            let manifest = LocalManifest {
                digest: Digest::of_bytes(&index),
                media_type: INDEX_MEDIA_TYPE.to_owned(),
                bytes: index,
                blobs: Vec::new(),
                children: Vec::new(),
                platform: None,
            };
            self.put_manifest(reg, repository, &tag, &manifest, p)?;
            Some(tag)
        };
        report.referrers.push(PushedReferrers {
            repository: repository.to_owned(),
            manifests: referrers.iter().map(|r| r.digest.clone()).collect(),
            fallback_tag,
        });
        Ok(())
    }

    /// Whether the registry answers the referrers API (distribution spec 1.1): an image
    /// index from `GET /v2/<name>/referrers/<digest>`; a 404 means the tag schema instead.
    fn has_referrers_api(
        &self,
        reg: &Registry,
        repository: &str,
        subject: &Digest,
        p: &dyn Progress,
    ) -> Result<bool, RegistryError> {
        let action = format!("ask for the referrers of {subject} in");
        let url = format!("{}/v2/{repository}/referrers/{subject}", reg.base);
        let mut call = self.call(Method::GET, url, repository, &action, Body::Empty);
        call.headers = vec![("accept", INDEX_MEDIA_TYPE.to_owned())];
        let resp = self.execute(reg, &call, p)?;
        Ok(resp.status == 200
            && resp
                .header("content-type")
                .is_some_and(|t| t.starts_with(INDEX_MEDIA_TYPE)))
    }

    /// The fallback tag's index: what it listed before (other tools' referrers kept), with
    /// ours added after, each digest once.
    fn referrers_index(
        &self,
        reg: &Registry,
        repository: &str,
        tag: &str,
        referrers: &[crate::supply::Referrer],
        p: &dyn Progress,
    ) -> Result<Vec<u8>, RegistryError> {
        let action = format!("read the referrers tag {tag} from");
        let url = format!("{}/v2/{repository}/manifests/{tag}", reg.base);
        let mut call = self.call(Method::GET, url, repository, &action, Body::Empty);
        call.headers = vec![("accept", INDEX_MEDIA_TYPE.to_owned())];
        let resp = self.execute(reg, &call, p)?;
        let mut manifests: Vec<serde_json::Value> = match resp.status {
            200 => serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
                .unwrap_or_default(),
            404 => Vec::new(),
            _ => return Err(self.status_error(reg, repository, &action, &resp)),
        };
        let ours: Vec<String> = referrers.iter().map(|r| r.digest.to_string()).collect();
        manifests.retain(|m| {
            m.get("digest")
                .and_then(|d| d.as_str())
                .is_none_or(|d| !ours.iter().any(|o| o == d))
        });
        for r in referrers {
            manifests.push(serde_json::json!({
                "mediaType": crate::supply::MANIFEST_MEDIA_TYPE,
                "digest": r.digest.to_string(),
                "size": r.size,
                "artifactType": r.artifact_type,
                "annotations": r.annotations,
            }));
        }
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        }))
        .map_err(|e| RegistryError::Referrers {
            layout: PathBuf::new(),
            reason: format!("serializing the referrers index: {e}"),
        })
    }

    fn credential_warnings(&self, reg: &Registry, repository: &str) -> Vec<String> {
        self.resolved(reg, repository).warnings
    }

    /// Blobs in parallel; the first error stops the others from starting new blobs.
    fn push_blobs(
        &self,
        reg: &Registry,
        repository: &str,
        blobs: &[&LocalBlob],
        options: &PushOptions,
        locations: &Mutex<BlobLocations>,
        p: &dyn Progress,
    ) -> Result<Vec<BlobReport>, RegistryError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<BlobReport, RegistryError>>>> =
            Mutex::new((0..blobs.len()).map(|_| None).collect());
        let workers = options.concurrency.clamp(1, 16).min(blobs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(blob) = blobs.get(i) else { break };
                        let result = self.push_blob(reg, repository, blob, options, locations, p);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if let Some(slot) = lock(&results).get_mut(i) {
                            *slot = Some(result);
                        }
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.into_iter().flatten().collect()
    }

    fn push_blob(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        options: &PushOptions,
        locations: &Mutex<BlobLocations>,
        p: &dyn Progress,
    ) -> Result<BlobReport, RegistryError> {
        p.blob_started(repository, blob);
        let facts = BlobFacts {
            digest: blob.digest.clone(),
            exists: Some(self.blob_exists(reg, repository, blob, p)?),
            known_in: lock(locations).candidates(&reg.name, &blob.digest),
        };
        let action = match plan_blob(repository, &facts, &options.mount_from) {
            BlobStep::Exists => BlobAction::Skipped,
            BlobStep::Upload => self.upload(reg, repository, blob, None, options, p)?,
            BlobStep::Mount { from: candidates } => {
                let mut session = None;
                let mut mounted = None;
                for from in &candidates {
                    match self.start_upload(reg, repository, Some((&blob.digest, from)), p)? {
                        Started::Mounted => {
                            mounted = Some(from.clone());
                            break;
                        }
                        Started::MountRefused => {
                            lock(locations).forget(&reg.name, &blob.digest, from);
                        }
                        Started::Session(location) => {
                            // The registry did not mount but opened an upload: use it.
                            lock(locations).forget(&reg.name, &blob.digest, from);
                            session = Some(location);
                            break;
                        }
                    }
                }
                match mounted {
                    Some(from) => BlobAction::Mounted { from },
                    None => self.upload(reg, repository, blob, session, options, p)?,
                }
            }
        };
        lock(locations).record(&reg.name, &blob.digest, repository);
        let report = BlobReport {
            registry: reg.name.clone(),
            repository: repository.to_owned(),
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
            action,
        };
        p.blob_finished(repository, &report);
        Ok(report)
    }

    fn call<'a>(
        &self,
        method: Method,
        url: String,
        repository: &'a str,
        action: &'a str,
        body: Body<'a>,
    ) -> Call<'a> {
        Call {
            method,
            url,
            headers: Vec::new(),
            body,
            authenticate: true,
            scopes: vec![repository_scope(repository, "pull,push")],
            repository,
            action,
            retry: true,
            max_body: None,
            save_to: None,
        }
    }

    fn blob_exists(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        p: &dyn Progress,
    ) -> Result<bool, RegistryError> {
        let action = format!("check for blob {} in", blob.digest);
        let url = format!("{}/v2/{repository}/blobs/{}", reg.base, blob.digest);
        let call = self.call(Method::HEAD, url, repository, &action, Body::Empty);
        let resp = self.execute(reg, &call, p)?;
        match resp.status {
            200..=299 => {
                self.check_digest(
                    reg,
                    repository,
                    &format!("blob {}", blob.digest),
                    &blob.digest,
                    &resp,
                )?;
                let length = resp
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok());
                match length {
                    Some(n) if n != blob.size => Err(RegistryError::Protocol {
                        registry: reg.name.clone(),
                        message: format!(
                            "repository {repository} has blob {} with {n} bytes, the layout has \
                             {}: refusing to trust either",
                            blob.digest, blob.size
                        ),
                    }),
                    _ => Ok(true),
                }
            }
            404 => Ok(false),
            _ => Err(self.status_error(reg, repository, &action, &resp)),
        }
    }

    /// `POST …/blobs/uploads/`, optionally asking to mount `digest` from another repository.
    fn start_upload(
        &self,
        reg: &Registry,
        repository: &str,
        mount: Option<(&Digest, &str)>,
        p: &dyn Progress,
    ) -> Result<Started, RegistryError> {
        let mut url = format!("{}/v2/{repository}/blobs/uploads/", reg.base);
        let action = match mount {
            Some((digest, from)) => {
                url = with_query(&url, &[("mount", &digest.to_string()), ("from", from)]);
                format!("mount blob {digest} from {from} into")
            }
            None => "start a blob upload to".to_owned(),
        };
        let mut call = self.call(Method::POST, url, repository, &action, Body::Empty);
        if let Some((_, from)) = mount {
            call.scopes.push(repository_scope(from, "pull"));
        }
        let resp = self.execute(reg, &call, p)?;
        match (resp.status, mount) {
            (201, Some((digest, from))) => {
                self.check_digest(
                    reg,
                    repository,
                    &format!("blob {digest} mounted from {from}"),
                    digest,
                    &resp,
                )?;
                Ok(Started::Mounted)
            }
            (202, _) => Ok(Started::Session(self.location(reg, &resp, None)?)),
            // No pull right on the source, or no such source: upload instead.
            (401 | 403 | 404, Some(_)) => Ok(Started::MountRefused),
            _ => Err(self.status_error(reg, repository, &action, &resp)),
        }
    }

    fn location(
        &self,
        reg: &Registry,
        resp: &Resp,
        fallback: Option<&str>,
    ) -> Result<String, RegistryError> {
        match (resp.header("location"), fallback) {
            (Some(location), _) => Ok(resolve_location(&reg.base, location)),
            (None, Some(fallback)) => Ok(fallback.to_owned()),
            (None, None) => Err(RegistryError::Protocol {
                registry: reg.name.clone(),
                message: format!(
                    "HTTP {} without a Location header for the upload",
                    resp.status
                ),
            }),
        }
    }

    fn upload(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        session: Option<String>,
        options: &PushOptions,
        p: &dyn Progress,
    ) -> Result<BlobAction, RegistryError> {
        let chunked = options.chunk_size > 0 && blob.size > options.chunk_size;
        let started = Instant::now();
        let (mut failures, mut resumed, mut restarted) = (0u32, 0u32, 0u32);
        let mut corrupted_once = false;
        let mut state = session.map(|location| UploadState {
            location,
            offset: 0,
        });
        loop {
            let mut st = match state.take() {
                Some(st) => st,
                None => match self.start_upload(reg, repository, None, p)? {
                    Started::Session(location) => UploadState {
                        location,
                        offset: 0,
                    },
                    _ => {
                        return Err(RegistryError::Protocol {
                            registry: reg.name.clone(),
                            message: "the registry answered an upload request without a session"
                                .into(),
                        });
                    }
                },
            };
            let result = if chunked {
                self.send_chunks(reg, repository, blob, &mut st, options.chunk_size, p)
            } else {
                self.put_whole(reg, repository, blob, &st, p)
            };
            let error = match result {
                Ok(()) => {
                    return Ok(BlobAction::Uploaded {
                        chunked,
                        resumed,
                        restarted,
                    });
                }
                // Bytes damaged on the way (the local file was re-hashed and is right): once
                // more from the start, in a new session; twice is not chance.
                Err(RegistryError::TransferCorrupted { .. }) if !corrupted_once => {
                    corrupted_once = true;
                    restarted += 1;
                    p.note(&format!(
                        "{}: the registry received different bytes than the local file holds; \
                         uploading again from the start",
                        blob.digest
                    ));
                    continue;
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            failures += 1;
            let Some(delay) = self.options().retry.next_delay(failures, started, None) else {
                return Err(error);
            };
            p.note(&format!(
                "{}: {error}; retrying in {:.1}s",
                blob.digest,
                delay.as_secs_f64()
            ));
            std::thread::sleep(delay);
            // The last answer may be what got lost: the blob can be complete already.
            if self.blob_exists(reg, repository, blob, p)? {
                return Ok(BlobAction::Uploaded {
                    chunked,
                    resumed,
                    restarted,
                });
            }
            if chunked {
                if let Some((location, offset)) =
                    self.upload_status(reg, repository, &st.location, p)?
                {
                    p.note(&format!(
                        "{}: the registry has {offset} of {} bytes; resuming",
                        blob.digest, blob.size
                    ));
                    st.location = location;
                    st.offset = offset;
                    resumed += 1;
                    state = Some(st);
                    continue;
                }
            }
            p.note(&format!("{}: starting the upload again", blob.digest));
            restarted += 1;
        }
    }

    /// `PATCH` chunk after chunk from `st.offset`, then the closing `PUT ?digest=`.
    fn send_chunks(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        st: &mut UploadState,
        chunk_size: u64,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let action = format!("upload blob {} to", blob.digest);
        while st.offset < blob.size {
            let len = chunk_size.min(blob.size - st.offset);
            let base = st.offset;
            let on_read = |n: u64| p.blob_progress(&blob.digest, base + n, blob.size);
            let section = FileSection {
                path: &blob.path,
                offset: base,
                len,
                verify: None,
                on_read: Some(&on_read),
            };
            let mut call = upload(self.call(
                Method::PATCH,
                st.location.clone(),
                repository,
                &action,
                Body::File(section),
            ));
            call.headers
                .push(("content-range", format!("{base}-{}", base + len - 1)));
            let resp = self.execute(reg, &call, p)?;
            match resp.status {
                202 | 204 => {
                    let expected = base + len;
                    st.location = self.location(reg, &resp, Some(&st.location))?;
                    st.offset = match resp.header("range").and_then(parse_range_end) {
                        Some(end) if end + 1 == expected => expected,
                        // "0-0" is also what an empty upload reports; trust what was sent.
                        Some(0) if expected <= 1 => expected,
                        Some(end) => end + 1,
                        None => expected,
                    };
                    p.chunk_committed(&blob.digest, st.offset, blob.size);
                }
                // The registry holds a different amount than we think: ask it, then resume.
                416 => {
                    return Err(RegistryError::Transport {
                        registry: reg.name.clone(),
                        action: format!("{action} repository {repository}"),
                        message: "the registry rejected the chunk's range (HTTP 416)".into(),
                        retryable: true,
                    });
                }
                _ => return Err(self.status_error(reg, repository, &action, &resp)),
            }
        }
        // Chunks are not verified one by one: before the registry is asked to commit them,
        // the local file must still be the blob (the registry would catch a wrong one, but
        // could not say whose fault it was).
        verify_local(blob)?;
        self.put_digest(reg, repository, blob, &st.location, None, p)
    }

    /// One `PUT ?digest=` with the whole blob.
    fn put_whole(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        st: &UploadState,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let on_read = |n: u64| p.blob_progress(&blob.digest, n, blob.size);
        let section = FileSection {
            path: &blob.path,
            offset: 0,
            len: blob.size,
            verify: Some(&blob.digest),
            on_read: Some(&on_read),
        };
        self.put_digest(reg, repository, blob, &st.location, Some(section), p)
    }

    /// The `PUT ?digest=` that completes an upload: with the whole blob, or empty after the
    /// chunks. Not retried by the session either way.
    fn put_digest(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        location: &str,
        section: Option<FileSection>,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let action = format!("upload blob {} to", blob.digest);
        let url = with_query(location, &[("digest", &blob.digest.to_string())]);
        let call = match section {
            Some(section) => {
                upload(self.call(Method::PUT, url, repository, &action, Body::File(section)))
            }
            None => {
                let mut call = self.call(Method::PUT, url, repository, &action, Body::Empty);
                call.retry = false;
                call
            }
        };
        let resp = self.execute(reg, &call, p)?;
        self.finish_upload(reg, repository, blob, &action, &resp)
    }

    fn finish_upload(
        &self,
        reg: &Registry,
        repository: &str,
        blob: &LocalBlob,
        action: &str,
        resp: &Resp,
    ) -> Result<(), RegistryError> {
        match resp.status {
            200..=299 => self.check_digest(
                reg,
                repository,
                &format!("blob {}", blob.digest),
                &blob.digest,
                resp,
            ),
            // The registry got bytes that are not the blob: the local file, or the transfer?
            // Hashing the file again tells which.
            400 if String::from_utf8_lossy(&resp.body).contains("DIGEST_INVALID") => {
                verify_local(blob)?;
                Err(RegistryError::TransferCorrupted {
                    registry: reg.name.clone(),
                    repository: repository.to_owned(),
                    digest: blob.digest.to_string(),
                    path: blob.path.clone(),
                })
            }
            _ => Err(self.status_error(reg, repository, action, resp)),
        }
    }

    /// `GET` on an upload session: where to resume, or `None` when the session is gone.
    fn upload_status(
        &self,
        reg: &Registry,
        repository: &str,
        location: &str,
        p: &dyn Progress,
    ) -> Result<Option<(String, u64)>, RegistryError> {
        let action = "ask for the state of an upload to";
        let call = self.call(
            Method::GET,
            location.to_owned(),
            repository,
            action,
            Body::Empty,
        );
        let resp = self.execute(reg, &call, p)?;
        match resp.status {
            200..=299 => {
                let location = self.location(reg, &resp, Some(location))?;
                let offset = match resp.header("range").and_then(parse_range_end) {
                    // "0-0" can mean 0 or 1 byte; 0 is safe (a wrong guess costs a restart).
                    Some(0) | None => 0,
                    Some(end) => end + 1,
                };
                Ok(Some((location, offset)))
            }
            // Unknown or invalidated session (e.g. the registry restarted without its state).
            400 | 404 | 416 => Ok(None),
            _ => Err(self.status_error(reg, repository, action, &resp)),
        }
    }

    /// Every manifest and index under `manifest`, children before parents, each once: an
    /// index may list one child many times, and a tree of them fans out exponentially.
    fn push_children(
        &self,
        reg: &Registry,
        repository: &str,
        manifest: &LocalManifest,
        pushed: &mut HashSet<Digest>,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        for child in &manifest.children {
            if pushed.contains(&child.digest) {
                continue;
            }
            self.push_children(reg, repository, child, pushed, p)?;
            self.put_manifest(reg, repository, &child.digest.to_string(), child, p)?;
            pushed.insert(child.digest.clone());
        }
        Ok(())
    }

    /// One artifact manifest, by digest; a refusal says which artifact and how to push
    /// without them.
    pub(super) fn put_referrer(
        &self,
        reg: &Registry,
        repository: &str,
        referrer: &crate::supply::Referrer,
        bytes: Vec<u8>,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let manifest = LocalManifest {
            digest: referrer.digest.clone(),
            media_type: crate::supply::MANIFEST_MEDIA_TYPE.to_owned(),
            bytes,
            blobs: Vec::new(),
            children: Vec::new(),
            platform: None,
        };
        self.put_manifest(reg, repository, &referrer.digest.to_string(), &manifest, p)
            .map_err(|answer| RegistryError::ReferrerRefused {
                digest: referrer.digest.to_string(),
                artifact_type: referrer.artifact_type.clone(),
                answer: Box::new(answer),
            })
    }

    fn put_manifest(
        &self,
        reg: &Registry,
        repository: &str,
        reference: &str,
        manifest: &LocalManifest,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let kind = if manifest.is_index() {
            "index"
        } else {
            "manifest"
        };
        let action = format!("push {kind} {} as {reference} to", manifest.digest);
        let url = format!("{}/v2/{repository}/manifests/{reference}", reg.base);
        let mut call = self.call(
            Method::PUT,
            url,
            repository,
            &action,
            Body::Bytes(&manifest.bytes),
        );
        call.headers = vec![("content-type", manifest.media_type.clone())];
        let resp = self.execute(reg, &call, p)?;
        let what = format!("{kind} {reference}");
        match resp.status {
            200..=299 if resp.header("docker-content-digest").is_none() => {
                self.read_back(reg, repository, &what, manifest, p)
            }
            200..=299 => self.check_digest(reg, repository, &what, &manifest.digest, &resp),
            _ => Err(self.status_error(reg, repository, &action, &resp)),
        }
    }

    /// A registry that does not say what digest it stored may have stored anything (changed
    /// whitespace, another schema): read it back by digest and compare it byte for byte.
    fn read_back(
        &self,
        reg: &Registry,
        repository: &str,
        what: &str,
        manifest: &LocalManifest,
        p: &dyn Progress,
    ) -> Result<(), RegistryError> {
        let action = format!("read back {what} as {} from", manifest.digest);
        let url = format!("{}/v2/{repository}/manifests/{}", reg.base, manifest.digest);
        let mut call = self.call(Method::GET, url, repository, &action, Body::Empty);
        call.headers = vec![("accept", manifest.media_type.clone())];
        let resp = self.execute(reg, &call, p)?;
        let found = match resp.status {
            200..=299 if resp.body == manifest.bytes => return Ok(()),
            200..=299 => format!(
                "reading {} back gave {} bytes with digest {}",
                manifest.digest,
                resp.body.len(),
                Digest::of_bytes(&resp.body)
            ),
            404 => format!("{} is not there when read back (HTTP 404)", manifest.digest),
            _ => return Err(self.status_error(reg, repository, &action, &resp)),
        };
        Err(RegistryError::ManifestAltered {
            registry: reg.name.clone(),
            repository: repository.to_owned(),
            what: what.to_owned(),
            found,
        })
    }

    /// Compares `Docker-Content-Digest` (when the registry sends one) with ours.
    fn check_digest(
        &self,
        reg: &Registry,
        repository: &str,
        what: &str,
        expected: &Digest,
        resp: &Resp,
    ) -> Result<(), RegistryError> {
        match resp.header("docker-content-digest") {
            Some(actual) if actual.trim() != expected.to_string() => {
                Err(RegistryError::DigestMismatch {
                    registry: reg.name.clone(),
                    repository: repository.to_owned(),
                    what: what.to_owned(),
                    expected: expected.to_string(),
                    actual: actual.trim().chars().take(100).collect(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Hashes the local file of `blob` in full: an error blaming it unless it is still the blob.
fn verify_local(blob: &LocalBlob) -> Result<(), RegistryError> {
    let local = |reason: String| RegistryError::LocalBlob {
        path: blob.path.clone(),
        reason,
    };
    let mut reader = blob.open().map_err(|e| local(e.to_string()))?;
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| local(e.to_string()))?;
    Ok(())
}

/// A call carrying blob bytes: octet-stream, and not retried by the session (a failed upload
/// resumes or starts again instead).
fn upload(mut call: Call<'_>) -> Call<'_> {
    call.retry = false;
    call.headers = vec![("content-type", "application/octet-stream".into())];
    call
}

/// `0-1048575` or `bytes=0-1048575` → 1048575.
fn parse_range_end(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    range.split_once('-')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_both_spellings() {
        assert_eq!(parse_range_end("0-1048575"), Some(1048575));
        assert_eq!(parse_range_end("bytes=0-9"), Some(9));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("garbage"), None);
    }

    mod scripted {
        use super::*;
        use crate::registry::NoProgress;
        use crate::registry::transport::fake::{Reply, answer, expect};

        #[test]
        fn a_dropped_chunk_resumes_from_the_registrys_range() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("blob");
            std::fs::write(&path, b"0123456789").unwrap();
            let digest = Digest::of_bytes(b"0123456789");
            let blob = LocalBlob {
                digest: digest.clone(),
                size: 10,
                media_type: "application/octet-stream".into(),
                path,
            };
            let d = digest.to_string();
            let up = "/v2/app/blobs/uploads/u1";
            let (client, fake) = crate::registry::push::honesty_tests::client(vec![
                expect("GET", "/v2/", answer(200, &[], "{}")),
                expect("HEAD", &format!("/v2/app/blobs/{d}"), answer(404, &[], "")),
                expect(
                    "POST",
                    "/v2/app/blobs/uploads/",
                    answer(202, &[("location", up)], ""),
                ),
                expect(
                    "PATCH",
                    up,
                    answer(
                        202,
                        &[
                            ("location", "/v2/app/blobs/uploads/u1?s=1"),
                            ("range", "0-3"),
                        ],
                        "",
                    ),
                ),
                expect("PATCH", "u1?s=1", Reply::Reset),
                expect("HEAD", &format!("/v2/app/blobs/{d}"), answer(404, &[], "")),
                // The registry kept 6 bytes of the lost chunk: go on from byte 6.
                expect(
                    "GET",
                    "u1?s=1",
                    answer(
                        204,
                        &[
                            ("location", "/v2/app/blobs/uploads/u1?s=2"),
                            ("range", "0-5"),
                        ],
                        "",
                    ),
                ),
                expect(
                    "PATCH",
                    "u1?s=2",
                    answer(
                        202,
                        &[
                            ("location", "/v2/app/blobs/uploads/u1?s=3"),
                            ("range", "0-9"),
                        ],
                        "",
                    ),
                ),
                expect(
                    "PUT",
                    &format!("u1?s=3&digest={}", d.replace(':', "%3A")),
                    answer(201, &[("docker-content-digest", &d)], ""),
                ),
            ]);
            let reg = client.registry("registry.test", &NoProgress).unwrap();
            let push = PushOptions {
                chunk_size: 4,
                ..PushOptions::default()
            };
            let locations = Mutex::new(BlobLocations::default());
            let report = client
                .push_blob(&reg, "app", &blob, &push, &locations, &NoProgress)
                .unwrap();
            assert_eq!(
                report.action,
                BlobAction::Uploaded {
                    chunked: true,
                    resumed: 1,
                    restarted: 0
                }
            );
            fake.assert_done();
            let seen = fake.seen();
            assert_eq!(seen[3].body, b"0123");
            assert_eq!(seen[7].body, b"6789");
            assert!(
                seen[7]
                    .headers
                    .contains(&("content-range".into(), "6-9".into()))
            );
            assert_eq!(seen[7].method, "PATCH");
            assert!(
                seen[8]
                    .url
                    .starts_with("https://registry.test/v2/app/blobs/uploads/u1?s=3")
            );
        }
    }
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod honesty_tests;
