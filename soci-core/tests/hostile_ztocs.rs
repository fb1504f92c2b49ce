//! Crafted zTOCs: every size and offset read from a zTOC is checked against the layer and the
//! archive size before it sizes an allocation or an index. Each case crashed (panic, abort on a
//! huge allocation) or decoded without bound before; now it is a problem or an error.

#[path = "hostile/layers.rs"]
#[allow(dead_code)]
mod layers;

use flatbuffers::FlatBufferBuilder;
use soci_core::ztoc::{ALGORITHM_UNCOMPRESSED, TarZinfo, Ztoc};
use soci_core::{BuildOptions, Compression, Error, MemoryBudget, build_ztoc, extract_file, verify};

/// A gzip layer with 64 KiB spans and its zTOC, decoded.
fn base() -> (Vec<u8>, Ztoc) {
    let layer = layers::plain_layer(4, 100_000);
    let options = BuildOptions {
        span_size: 1 << 16,
        build_tool: "crafted".into(),
        compression: Compression::Gzip,
        expected_digest: None,
        budget: MemoryBudget::default(),
    };
    let built = build_ztoc(&layer[..], &options).unwrap();
    assert!(verify(&built.ztoc, &layer).unwrap().is_ok());
    (layer, Ztoc::from_bytes(&built.ztoc).unwrap())
}

fn problems(ztoc: &Ztoc, layer: &[u8]) -> Vec<String> {
    let report = verify(&ztoc.to_bytes().unwrap(), layer).unwrap();
    assert!(!report.is_ok(), "a crafted zTOC passed");
    report.problems
}

fn checkpoint_field(ztoc: &mut Ztoc, index: usize, field: usize, bytes: &[u8]) {
    let at = 12 + index * soci_core::zran::CHECKPOINT_SIZE + field;
    ztoc.checkpoints[at..at + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn a_checkpoint_with_bits_at_input_offset_0_is_a_problem_not_an_overflow() {
    let (layer, mut ztoc) = base();
    checkpoint_field(&mut ztoc, 0, 0, &0i64.to_le_bytes());
    checkpoint_field(&mut ztoc, 0, 16, &[3]);
    let problems = problems(&ztoc, &layer);
    assert!(problems[0].contains("checkpoint 0"), "{problems:?}");
    let bytes = ztoc.to_bytes().unwrap();
    assert!(extract_file(&bytes, &layer, "file0").is_err());
}

#[test]
fn a_checkpoint_beyond_the_layer_is_a_problem() {
    let (layer, mut ztoc) = base();
    checkpoint_field(&mut ztoc, 1, 8, &(1i64 << 50).to_le_bytes());
    let problems = problems(&ztoc, &layer);
    assert!(problems[0].contains("does not fit"), "{problems:?}");
}

#[test]
fn a_terabyte_uncompressed_archive_size_is_refused_before_any_allocation() {
    let (layer, mut ztoc) = base();
    ztoc.uncompressed_archive_size = 1 << 40;
    let problems = problems(&ztoc, &layer);
    assert!(
        problems[0].contains("uncompressed_archive_size"),
        "{problems:?}"
    );
}

#[test]
fn a_span_claiming_more_than_deflate_can_produce_is_refused() {
    let (layer, mut ztoc) = base();
    // An archive size a layer of this size could have, but not its last span alone: inflating
    // that span used to allocate the whole claim up front (400 MB here, 1 TB in the report).
    ztoc.uncompressed_archive_size = layer.len() as i64 * 1000;
    let problems = problems(&ztoc, &layer);
    assert!(
        problems.iter().any(|p| p.contains("claims")),
        "{problems:?}"
    );
}

#[test]
fn a_tar_zinfo_with_a_huge_size_is_a_problem_not_a_capacity_overflow() {
    let (layer, mut ztoc) = base();
    ztoc.compression_algorithm = ALGORITHM_UNCOMPRESSED;
    for (span_size, size) in [(1, i64::MAX), (1, layer.len() as i64)] {
        ztoc.checkpoints = TarZinfo {
            version: 2,
            span_size,
            size,
        }
        .to_bytes();
        let problems = problems(&ztoc, &layer);
        assert!(
            problems.iter().any(|p| p.contains("TarZinfo")),
            "{problems:?}"
        );
        assert!(extract_file(&ztoc.to_bytes().unwrap(), &layer, "file0").is_err());
    }
}

#[test]
fn an_entry_at_the_end_of_the_offset_range_is_a_problem_not_an_overflow() {
    let (layer, mut ztoc) = base();
    ztoc.toc[1].uncompressed_offset = i64::MAX - 3;
    ztoc.toc[1].uncompressed_size = i64::MAX;
    let problems = problems(&ztoc, &layer);
    assert!(problems.iter().any(|p| p.contains("file1")), "{problems:?}");
}

#[test]
fn entries_that_contradict_their_tar_headers_are_each_named() {
    let (layer, mut ztoc) = base();
    ztoc.toc[0].uid += 1;
    ztoc.toc[0].name = b"renamed".to_vec();
    ztoc.toc[2].uncompressed_offset += 512;
    let problems = problems(&ztoc, &layer);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"renamed\": name, uid differ")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("no tar header has its data at") && p.contains("file2")),
        "{problems:?}"
    );
}

#[test]
fn extracting_a_terabyte_file_is_an_error_not_an_allocation() {
    let (layer, mut ztoc) = base();
    ztoc.toc[0].uncompressed_size = 1 << 40;
    let err = extract_file(&ztoc.to_bytes().unwrap(), &layer, "file0").unwrap_err();
    assert!(matches!(err, Error::InvalidZtoc(_)), "{err}");
    ztoc.toc[0].uncompressed_size = i64::MAX;
    ztoc.toc[0].uncompressed_offset = i64::MAX;
    assert!(extract_file(&ztoc.to_bytes().unwrap(), &layer, "file0").is_err());
}

#[test]
fn extracting_before_the_first_checkpoint_is_an_error_not_an_underflow() {
    let (layer, mut ztoc) = base();
    checkpoint_field(&mut ztoc, 0, 8, &100_000i64.to_le_bytes());
    let err = extract_file(&ztoc.to_bytes().unwrap(), &layer, "file0").unwrap_err();
    assert!(matches!(err, Error::InvalidZtoc(_)), "{err}");
}

#[test]
fn shared_tables_do_not_decode_to_gigabytes() {
    // One entry table with a 16 KiB name, listed 100,000 times: a ~420 KB zTOC that decoded
    // to 1.6 GB of names.
    let mut b = FlatBufferBuilder::new();
    let name = b.create_byte_string(&vec![b'n'; 16 << 10]);
    let start = b.start_table();
    b.push_slot_always(4, name);
    let entry = b.end_table(start);
    let metadata = b.create_vector(&vec![entry; 100_000]);
    let start = b.start_table();
    b.push_slot_always(4, metadata);
    let toc = b.end_table(start);
    let start = b.start_table();
    let info = b.end_table(start);
    let start = b.start_table();
    b.push_slot_always(4 + 2 * 4, toc);
    b.push_slot_always(4 + 2 * 5, info);
    let root = b.end_table(start);
    b.finish_minimal(root);
    let bytes = b.finished_data();
    assert!(bytes.len() < 1 << 20);
    let err = Ztoc::from_bytes(bytes).unwrap_err();
    assert!(err.to_string().contains("four times"), "{err}");
    let report = verify(bytes, &[0u8; 10][..]).unwrap();
    assert!(report.problems[0].contains("does not decode"));
}

#[test]
fn extracting_from_a_ztoc_without_spans_is_an_error_not_an_index_out_of_bounds() {
    let (_, mut ztoc) = base();
    ztoc.compression_algorithm = ALGORITHM_UNCOMPRESSED;
    ztoc.checkpoints = TarZinfo {
        version: 2,
        span_size: 4096,
        size: 0,
    }
    .to_bytes();
    ztoc.span_digests.clear();
    ztoc.max_span_id = -1;
    let err = extract_file(&ztoc.to_bytes().unwrap(), &[][..], "file0").unwrap_err();
    assert!(matches!(err, Error::InvalidZtoc(_)), "{err}");
}
