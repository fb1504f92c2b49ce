//! The byte-exact flatbuffer writer: fields are added in the reference's builder call order,
//! which fixes the bytes.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::{ALGORITHM_GZIP, TarZinfo, Ztoc};

impl Ztoc {
    /// An upper estimate of [`Ztoc::to_bytes`]'s length, so the builder never regrows (each
    /// regrowth would copy the megabytes of checkpoints already written).
    fn encoded_size_estimate(&self) -> usize {
        // Per string or vector: a length prefix and alignment padding; per table: the vtable,
        // the slots and the offset to it.
        const PER_STRING: usize = 8;
        const PER_TABLE: usize = 4 + 2 * 16 + 8 * 16;
        let entries: usize = self
            .toc
            .iter()
            .map(|e| {
                let strings: usize = [
                    &e.name,
                    &e.file_type,
                    &e.linkname,
                    &e.uname,
                    &e.gname,
                    &e.mod_time,
                ]
                .iter()
                .map(|s| s.len() + PER_STRING)
                .sum();
                let xattrs: usize = e
                    .xattrs
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2 * PER_STRING + PER_TABLE + 4)
                    .sum();
                strings + xattrs + PER_TABLE + 4 + PER_STRING
            })
            .sum();
        let digests: usize = self
            .span_digests
            .iter()
            .map(|d| d.len() + PER_STRING + 4)
            .sum();
        1024 + self.version.len()
            + self.build_tool_identifier.len()
            + entries
            + digests
            + self.checkpoints.len()
    }

    /// The flatbuffer bytes, exactly as the reference's `ztoc.Marshal` writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let estimate = self.encoded_size_estimate();
        let mut b = FlatBufferBuilder::with_capacity(estimate);
        let version = b.create_byte_string(&self.version);
        let build_tool = b.create_byte_string(&self.build_tool_identifier);

        let mut entries: Vec<WIPOffset<flatbuffers::TableFinishedWIPOffset>> =
            Vec::with_capacity(self.toc.len());
        for entry in self.toc.iter().rev() {
            let name = b.create_byte_string(&entry.name);
            let file_type = b.create_byte_string(&entry.file_type);
            let linkname = b.create_byte_string(&entry.linkname);
            let uname = b.create_byte_string(&entry.uname);
            let gname = b.create_byte_string(&entry.gname);
            let mod_time = b.create_byte_string(&entry.mod_time);
            let mut xattrs = Vec::with_capacity(entry.xattrs.len());
            for (key, value) in &entry.xattrs {
                let key = b.create_byte_string(key);
                let value = b.create_byte_string(value);
                let start = b.start_table();
                b.push_slot_always(slot(0), key);
                b.push_slot_always(slot(1), value);
                xattrs.push(b.end_table(start));
            }
            let xattrs = b.create_vector(&xattrs);
            let start = b.start_table();
            b.push_slot_always(slot(0), name);
            b.push_slot_always(slot(1), file_type);
            b.push_slot(slot(2), entry.uncompressed_offset, 0);
            b.push_slot(slot(3), entry.uncompressed_size, 0);
            b.push_slot_always(slot(4), linkname);
            b.push_slot(slot(5), entry.mode, 0);
            b.push_slot(slot(6), entry.uid, 0);
            b.push_slot(slot(7), entry.gid, 0);
            b.push_slot_always(slot(8), uname);
            b.push_slot_always(slot(9), gname);
            b.push_slot_always(slot(10), mod_time);
            b.push_slot(slot(11), entry.devmajor, 0);
            b.push_slot(slot(12), entry.devminor, 0);
            b.push_slot_always(slot(13), xattrs);
            entries.push(b.end_table(start));
        }
        entries.reverse();
        let metadata = b.create_vector(&entries);
        let start = b.start_table();
        b.push_slot_always(slot(0), metadata);
        let toc = b.end_table(start);

        let checkpoints = b.create_vector(&self.checkpoints);
        let digests: Vec<_> = self
            .span_digests
            .iter()
            .map(|d| b.create_byte_string(d))
            .collect();
        let digests = b.create_vector(&digests);
        let start = b.start_table();
        b.push_slot(slot(1), self.max_span_id, 0);
        b.push_slot_always(slot(2), digests);
        b.push_slot_always(slot(3), checkpoints);
        b.push_slot(slot(0), self.compression_algorithm, ALGORITHM_GZIP);
        let compression_info = b.end_table(start);

        let start = b.start_table();
        b.push_slot_always(slot(0), version);
        b.push_slot_always(slot(1), build_tool);
        b.push_slot_always(slot(4), toc);
        b.push_slot(slot(2), self.compressed_archive_size, 0);
        b.push_slot(slot(3), self.uncompressed_archive_size, 0);
        b.push_slot_always(slot(5), compression_info);
        let root = b.end_table(start);
        b.finish_minimal(root);
        debug_assert!(
            b.finished_data().len() <= estimate,
            "{} bytes, estimated {estimate}",
            b.finished_data().len()
        );
        b.finished_data().to_vec()
    }
}

impl TarZinfo {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = FlatBufferBuilder::with_capacity(64);
        let start = b.start_table();
        b.push_slot(slot(0), self.version, 0);
        b.push_slot(slot(1), self.span_size, 0);
        b.push_slot(slot(2), self.size, 0);
        let root = b.end_table(start);
        b.finish_minimal(root);
        b.finished_data().to_vec()
    }
}

/// The vtable offset of field number `n`.
fn slot(n: u16) -> flatbuffers::VOffsetT {
    4 + 2 * n
}
