//! soci's xattr optimisation through the real pipeline (docker-registry): with `disable_xattrs`
//! on, the zTOC descriptor of exactly the layers without `SCHILY.xattr.*` records and opaque
//! whiteouts carries `com.amazon.soci.disable-xattrs: "true"`; off (the default), none does; and
//! nothing else in the SOCI index differs.

mod common;

use common::*;
use serde_json::Value;
use test_support::image::{self, content};

const ANNOTATION: &str = "com.amazon.soci.disable-xattrs";

/// PAX records: key, value.
type Pax<'a> = &'a [(&'a str, &'a [u8])];

/// A gzip layer: `entries` (name, PAX records) of 6 bytes each, then a data file large enough
/// to be indexed.
fn layer(seed: u64, entries: &[(&str, Pax<'_>)]) -> LayerBlob {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |name: &str, pax: Pax<'_>, data: &[u8]| {
        if !pax.is_empty() {
            builder
                .append_pax_extensions(pax.iter().copied())
                .expect("pax");
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_mtime(1_700_000_000);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).expect("entry");
    };
    for (name, pax) in entries {
        append(name, pax, b"hello\n");
    }
    append("data/blob", &[], &content(seed, 300 * 1024));
    let tar = builder.into_inner().expect("tar");
    LayerBlob {
        media_type: OCI_GZIP.into(),
        blob: image::gzip(&tar, 1).expect("gzip"),
    }
}

/// The SOCI index of `repo:v1-soci` (one platform): its `layers`, by image layer digest.
async fn ztoc_descriptors(env: &Env, repo: &str) -> Vec<(String, Value)> {
    let (_, index, _) = manifest(env, repo, "v1-soci").await;
    let soci = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["artifactType"] == SOCI_V2)
        .expect("a SOCI index entry");
    let digest = soci["digest"].as_str().expect("digest");
    let (_, soci, _) = manifest(env, repo, digest).await;
    soci["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|d| {
            let layer = d["annotations"]["com.amazon.soci.image-layer-digest"]
                .as_str()
                .expect("layer digest")
                .to_string();
            (layer, d.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_annotation_is_set_exactly_on_layers_that_qualify() {
    let env = Env::start().await;
    let xattr = layer(
        1,
        &[("bin/ping", &[("SCHILY.xattr.security.capability", b"\x01")])],
    );
    let opaque = layer(2, &[("var/cache/.wh..wh..opq", &[])]);
    let neither = layer(
        3,
        &[
            ("etc/.wh.removed", &[]),
            ("etc/misc", &[("LIBARCHIVE.xattr.user.x", b"eA")]),
        ],
    );
    let layers = [xattr.clone(), opaque.clone(), neither.clone()];

    // The same image in two repositories: one indexed with the optimisation, one without.
    let on_repo = "xattrs/on";
    let off_repo = "xattrs/off";
    let on_image = push_image(&env, on_repo, Some("v1"), &layers, "amd64", false).await;
    let off_image = push_image(&env, off_repo, Some("v1"), &layers, "amd64", false).await;
    assert_eq!(on_image.digest, off_image.digest);

    let mut on_config = env.config();
    on_config.disable_xattrs = true;
    let on = run_with(&env, on_config, on_repo, &on_image.digest, Some("v1"))
        .await
        .expect("indexing with the optimisation");
    assert_eq!(on.status(), "indexed", "{on:?}");
    let off = run_with(&env, env.config(), off_repo, &off_image.digest, Some("v1"))
        .await
        .expect("indexing without");
    assert_eq!(off.status(), "indexed", "{off:?}");
    // Both graphs pass the consumer's checks.
    check_v2(&env, on_repo, "v1", &on_image.digest).await;
    check_v2(&env, off_repo, "v1", &off_image.digest).await;

    let on = ztoc_descriptors(&env, on_repo).await;
    let off = ztoc_descriptors(&env, off_repo).await;
    let annotated = |descriptors: &[(String, Value)]| -> Vec<(String, Option<String>)> {
        descriptors
            .iter()
            .map(|(layer, d)| {
                let value = d["annotations"][ANNOTATION].as_str().map(String::from);
                (layer.clone(), value)
            })
            .collect()
    };
    assert_eq!(
        annotated(&on),
        vec![
            (xattr.digest(), None),
            (opaque.digest(), None),
            (neither.digest(), Some("true".to_string())),
        ],
        "only the layer without xattr records and opaque whiteouts is marked"
    );
    assert!(
        annotated(&off).iter().all(|(_, v)| v.is_none()),
        "off by default: {off:?}"
    );

    // Apart from that annotation, the descriptors (zTOC digests and sizes included) are equal.
    let strip = |descriptors: Vec<(String, Value)>| -> Vec<Value> {
        descriptors
            .into_iter()
            .map(|(_, mut d)| {
                if let Some(a) = d["annotations"].as_object_mut() {
                    a.remove(ANNOTATION);
                }
                d
            })
            .collect()
    };
    assert_eq!(strip(on), strip(off));
}
