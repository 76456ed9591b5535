//! CycloneDX 1.5 JSON from a [`Bom`]: the image is the metadata's component; `dependencies`
//! say the image holds the application and the base's packages, and the application links the
//! rest.

use super::components::{Bom, Component, Kind};
use crate::digest::Digest;
use serde_json::{Value, json};

pub(crate) const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

pub(crate) fn document(bom: &Bom, epoch: u64) -> Value {
    let components: Vec<Value> = std::iter::once(&bom.application)
        .chain(&bom.linked)
        .chain(&bom.contained)
        .map(component)
        .collect();
    let refs = |cs: &[Component]| cs.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let mut image_holds = vec![bom.application.id.clone()];
    image_holds.extend(refs(&bom.contained));
    let mut dependencies = vec![
        json!({ "ref": bom.image.id, "dependsOn": image_holds }),
        json!({ "ref": bom.application.id, "dependsOn": refs(&bom.linked) }),
    ];
    for c in bom.linked.iter().chain(&bom.contained) {
        dependencies.push(json!({ "ref": c.id, "dependsOn": [] }));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(bom.image.sha256.as_deref().unwrap_or_default()),
        "version": 1,
        "metadata": {
            "timestamp": crate::image::config::rfc3339(epoch),
            "tools": { "components": [{
                "type": "application",
                "name": "staticpack",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": component(&bom.image),
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A UUID (version 5 layout) from the image digest: the same image, the same serial number.
pub(crate) fn serial_number(image_hex: &str) -> String {
    let d = Digest::of_bytes(format!("staticpack cyclonedx sha256:{image_hex}").as_bytes());
    let mut b = [0u8; 16];
    if let Ok(bytes) = hex::decode(&d.hex()[..32]) {
        b.copy_from_slice(&bytes);
    }
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn component(c: &Component) -> Value {
    let mut o = serde_json::Map::new();
    o.insert(
        "type".into(),
        match c.kind {
            Kind::Container => "container",
            Kind::Application => "application",
            Kind::Library => "library",
            Kind::Data => "file",
        }
        .into(),
    );
    o.insert("bom-ref".into(), c.id.clone().into());
    o.insert("name".into(), c.name.clone().into());
    if let Some(v) = &c.version {
        o.insert("version".into(), v.clone().into());
    }
    if let Some(h) = &c.sha256 {
        o.insert("hashes".into(), json!([{ "alg": "SHA-256", "content": h }]));
    }
    if let Some(p) = &c.purl {
        o.insert("purl".into(), p.clone().into());
    }
    if let Some(url) = &c.download {
        o.insert(
            "externalReferences".into(),
            json!([{ "type": "distribution", "url": url }]),
        );
    }
    if !c.properties.is_empty() {
        let props: Vec<Value> = (c.properties.iter())
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        o.insert("properties".into(), props.into());
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_number_is_a_v5_uuid_of_the_image() {
        let a = serial_number(&"a".repeat(64));
        assert_eq!(a, serial_number(&"a".repeat(64)));
        assert_ne!(a, serial_number(&"b".repeat(64)));
        let u = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5");
        assert!("89ab".contains(&u[19..20]));
    }
}
