//! Images as the API describes them, from the store's records, and the `ImageFilter`
//! rules (ANDed inside a filter, ORed across filters).

use store::images::{Format, ImageRecord};
use store::Store;

use crate::v1alpha::{Image, ImageFilter, ImageFormat, ImageType, KeyValue};

fn annotations_of(manifest: &serde_json::Value, format: Format) -> Vec<KeyValue> {
    match format {
        // appc: [{name, value}]
        Format::Aci => crate::appc_annotations(manifest),
        // OCI: {key: value}
        Format::Oci => manifest
            .get("annotations")
            .and_then(|a| a.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some(KeyValue {
                            key: k.clone(),
                            value: v.as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

pub fn describe(store: &Store, r: &ImageRecord, detail: bool) -> Image {
    let manifest = store.read_blob(&r.manifest).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_default();
    let (kind, version) = match r.format {
        Format::Aci => (ImageType::Appc, "0.8.11"),
        Format::Oci => (ImageType::Oci, "1.1.0"),
    };
    Image {
        base_format: Some(ImageFormat {
            r#type: kind as i32,
            version: version.into(),
        }),
        id: r.id.key(),
        name: r.name.clone(),
        version: r.labels.get("version").cloned().unwrap_or_default(),
        import_timestamp: r.imported.timestamp(),
        manifest: if detail { manifest } else { Vec::new() },
        size: store.image_size(r) as i64,
        annotations: annotations_of(&parsed, r.format),
        labels: r
            .labels
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    }
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub fn satisfies(i: &Image, f: &ImageFilter) -> bool {
    let all = |have: &[KeyValue], want: &[KeyValue]| want.iter().all(|w| have.contains(w));
    (f.ids.is_empty() || f.ids.contains(&i.id))
        && (f.prefixes.is_empty() || f.prefixes.iter().any(|p| i.name.starts_with(p.as_str())))
        && (f.base_names.is_empty() || f.base_names.iter().any(|b| base_name(&i.name) == b))
        && (f.keywords.is_empty() || f.keywords.iter().any(|k| i.name.contains(k.as_str())))
        && all(&i.labels, &f.labels)
        && (f.imported_after == 0 || i.import_timestamp > f.imported_after)
        && (f.imported_before == 0 || i.import_timestamp < f.imported_before)
        && all(&i.annotations, &f.annotations)
        && (f.full_names.is_empty() || f.full_names.contains(&i.name))
}

pub fn list(store: &Store, detail: bool, filters: &[ImageFilter]) -> store::Result<Vec<Image>> {
    Ok(store
        .images()?
        .iter()
        .map(|r| describe(store, r, detail))
        .filter(|i| filters.is_empty() || filters.iter().any(|f| satisfies(i, f)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_filters() {
        let i = Image {
            id: "sha512-a".into(),
            name: "coreos.com/etcd".into(),
            import_timestamp: 100,
            labels: vec![KeyValue {
                key: "version".into(),
                value: "1".into(),
            }],
            ..Default::default()
        };
        let f = |f: ImageFilter| satisfies(&i, &f);
        assert!(f(ImageFilter::default()));
        assert!(f(ImageFilter {
            base_names: vec!["etcd".into()],
            ..Default::default()
        }));
        assert!(!f(ImageFilter {
            base_names: vec!["etc".into()],
            ..Default::default()
        }));
        assert!(f(ImageFilter {
            keywords: vec!["etc".into()],
            prefixes: vec!["coreos.com/".into()],
            ..Default::default()
        }));
        assert!(!f(ImageFilter {
            imported_after: 100,
            ..Default::default()
        }));
        assert!(f(ImageFilter {
            imported_before: 101,
            full_names: vec!["coreos.com/etcd".into()],
            ..Default::default()
        }));
    }
}
