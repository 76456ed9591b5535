//! SPDX 2.3 JSON from a [`Bom`]: the image DESCRIBES'd, CONTAINS the application and the base's
//! packages; the application STATIC_LINKs each linked component.

use super::components::{Bom, Component, Kind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const MEDIA_TYPE: &str = "application/spdx+json";

pub(crate) fn document(bom: &Bom, epoch: u64) -> Value {
    let ids = spdx_ids(bom);
    let id = |c: &Component| ids[&c.id].clone();
    let all = std::iter::once(&bom.image)
        .chain(std::iter::once(&bom.application))
        .chain(&bom.linked)
        .chain(&bom.contained);
    let packages: Vec<Value> = all.map(|c| package(c, &id(c))).collect();
    let mut relationships = vec![
        relationship("SPDXRef-DOCUMENT", "DESCRIBES", &id(&bom.image)),
        relationship(&id(&bom.image), "CONTAINS", &id(&bom.application)),
    ];
    for c in &bom.contained {
        relationships.push(relationship(&id(&bom.image), "CONTAINS", &id(c)));
    }
    for c in &bom.linked {
        relationships.push(relationship(&id(&bom.application), "STATIC_LINK", &id(c)));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} image", bom.image.name),
        // Derived from the image digest: the same image, the same namespace, no random part.
        "documentNamespace": format!(
            "https://staticpack.dev/spdx/{}/sha256-{}",
            super::components::purl_escape(&bom.image.name),
            bom.image.sha256.as_deref().unwrap_or_default()
        ),
        "creationInfo": {
            "created": crate::image::config::rfc3339(epoch),
            "creators": [format!("Tool: staticpack-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": [id(&bom.image)],
        "packages": packages,
        "relationships": relationships,
    })
}

/// Element ids: letters, digits, `.` and `-` only; a clash after cleaning gets a number.
fn spdx_ids(bom: &Bom) -> BTreeMap<String, String> {
    let mut taken = BTreeSet::new();
    let mut ids = BTreeMap::new();
    let all = std::iter::once(&bom.image)
        .chain(std::iter::once(&bom.application))
        .chain(&bom.linked)
        .chain(&bom.contained);
    for c in all {
        let clean: String =
            c.id.chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                        ch
                    } else {
                        '-'
                    }
                })
                .collect();
        let mut candidate = format!("SPDXRef-{clean}");
        let mut n = 1;
        while taken.contains(&candidate) {
            n += 1;
            candidate = format!("SPDXRef-{clean}-{n}");
        }
        taken.insert(candidate.clone());
        ids.insert(c.id.clone(), candidate);
    }
    ids
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

fn package(c: &Component, id: &str) -> Value {
    let mut p = serde_json::Map::new();
    p.insert("SPDXID".into(), id.into());
    p.insert("name".into(), c.name.clone().into());
    if let Some(v) = &c.version {
        p.insert("versionInfo".into(), v.clone().into());
    }
    p.insert(
        "downloadLocation".into(),
        c.download
            .clone()
            .unwrap_or_else(|| "NOASSERTION".into())
            .into(),
    );
    p.insert("filesAnalyzed".into(), false.into());
    p.insert(
        "primaryPackagePurpose".into(),
        match c.kind {
            Kind::Container => "CONTAINER",
            Kind::Application => "APPLICATION",
            Kind::Library => "LIBRARY",
            Kind::Data => "FILE",
        }
        .into(),
    );
    if let Some(h) = &c.sha256 {
        p.insert(
            "checksums".into(),
            json!([{ "algorithm": "SHA256", "checksumValue": h }]),
        );
    }
    if let Some(purl) = &c.purl {
        p.insert(
            "externalRefs".into(),
            json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }]),
        );
    }
    p.insert("licenseConcluded".into(), "NOASSERTION".into());
    p.insert("licenseDeclared".into(), "NOASSERTION".into());
    p.insert("copyrightText".into(), "NOASSERTION".into());
    if !c.properties.is_empty() {
        let lines: Vec<String> = c
            .properties
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        p.insert("comment".into(), lines.join("\n").into());
    }
    Value::Object(p)
}
