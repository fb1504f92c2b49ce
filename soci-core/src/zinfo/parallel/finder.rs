//! The block finder's cheap test: could a dynamic-Huffman block header that zlib accepts start
//! at this bit offset? It checks everything zlib checks in the header (RFC 1951 3.2.7), so
//! zlib-rs is only tried on the rare offsets that pass: a random offset passes about once in
//! millions (rapidgzip's observation; the sequential side proves or refutes it anyway).

use super::speculate::peek_bits;

/// Order of the code length code lengths in the header.
const ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// LSB-first bit reader over a slice (missing bytes read as zeros; callers bound the reads).
struct Bits<'a> {
    input: &'a [u8],
    bit: u64,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Option<u32> {
        let word = peek_bits(self.input, self.bit)?;
        self.bit += u64::from(n);
        Some((word & ((1u64 << n) - 1)) as u32)
    }
}

/// zlib's acceptance of a code from its lengths: not over-subscribed, and complete unless it
/// has a single code of length 1 (`single_ok`, for the literal/length and distance codes).
fn code_ok(lengths: &[u8], single_ok: bool) -> bool {
    let mut count = [0u32; 16];
    for &len in lengths {
        count[usize::from(len)] += 1;
    }
    let mut left: i64 = 1;
    for &n in &count[1..] {
        left = left * 2 - i64::from(n);
        if left < 0 {
            return false;
        }
    }
    let max = (1..16).rev().find(|&len| count[len] != 0).unwrap_or(0);
    left == 0 || (single_ok && max == 1) || (max == 0 && single_ok)
}

/// A canonical decoding table for the code length code (lengths <= 7): entry = (symbol, len).
fn code_length_table(lengths: &[u8; 19]) -> [(u8, u8); 128] {
    let mut table = [(0u8, 0u8); 128];
    let mut code = 0u32;
    for len in 1..=7u8 {
        for symbol in 0..19u8 {
            if lengths[usize::from(symbol)] != len {
                continue;
            }
            // Huffman codes are stored MSB first: reverse to index by the next 7 input bits.
            let reversed = (code.reverse_bits() >> (32 - u32::from(len))) as usize;
            let mut index = reversed;
            while index < 128 {
                table[index] = (symbol, len);
                index += 1 << len;
            }
            code += 1;
        }
        code <<= 1;
    }
    table
}

/// True when a non-final dynamic block header zlib accepts starts at `bit` of `input`.
pub(super) fn plausible_dynamic(input: &[u8], bit: u64) -> bool {
    let mut bits = Bits { input, bit };
    let Some(header) = bits.take(17) else {
        return false;
    };
    if header & 7 != 0b100 {
        return false;
    }
    let (hlit, hdist) = (
        ((header >> 3) & 31) as usize + 257,
        ((header >> 8) & 31) as usize + 1,
    );
    if hlit > 286 || hdist > 30 {
        return false;
    }
    let mut cl_lengths = [0u8; 19];
    for &symbol in &ORDER[..((header >> 13) & 15) as usize + 4] {
        let Some(len) = bits.take(3) else {
            return false;
        };
        cl_lengths[symbol] = len as u8;
    }
    if !code_ok(&cl_lengths, false) {
        return false;
    }
    let table = code_length_table(&cl_lengths);
    let mut lengths = [0u8; 286 + 30];
    let mut filled = 0;
    while filled < hlit + hdist {
        let Some(next) = peek_bits(input, bits.bit) else {
            return false;
        };
        let (symbol, len) = table[(next & 127) as usize];
        bits.bit += u64::from(len);
        let (value, repeat) = match symbol {
            0..=15 => (symbol, 1),
            16 if filled > 0 => match bits.take(2) {
                Some(extra) => (lengths[filled - 1], 3 + extra as usize),
                None => return false,
            },
            17 => match bits.take(3) {
                Some(extra) => (0, 3 + extra as usize),
                None => return false,
            },
            18 => match bits.take(7) {
                Some(extra) => (0, 11 + extra as usize),
                None => return false,
            },
            _ => return false,
        };
        if filled + repeat > hlit + hdist {
            return false;
        }
        lengths[filled..filled + repeat].fill(value);
        filled += repeat;
    }
    lengths[256] != 0 && code_ok(&lengths[..hlit], true) && code_ok(&lengths[hlit..filled], true)
}
