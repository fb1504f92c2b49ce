//! The sequential side's inflate step: zlib-rs on this thread, aiming at the next speculation's
//! start and taking the speculated output over once that start is proven.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use libz_rs_sys as zlib;

use super::speculate::{oldest_position, same_start};
use super::{
    Member, NEAR, ParallelInflate, Produced, START_NONE, START_UNKNOWN, Splice, WINDOW_SIZE,
    data_error, step_ok,
};
use crate::zinfo::span_hash::SpanHasherThread;

impl ParallelInflate {
    /// How far zlib may be fed (exclusive blob offset) and whether to stop at every block
    /// boundary: never past a speculation's start before reaching it exactly.
    fn aim(&mut self, need_boundaries: bool) -> (Option<u64>, bool) {
        loop {
            let Some(target) = self.targets.front() else {
                return (None, need_boundaries);
            };
            if target.landed.is_some() {
                return (None, true);
            }
            let mut start = target.job.start.load(Ordering::Acquire);
            if start == START_UNKNOWN && self.pos + NEAR >= target.job.base {
                // Wait for the speculation's start rather than inflate over its stretch: the
                // other core does that stretch (twice over), this one would only duplicate it.
                let job = Arc::clone(&target.job);
                let alive = self.worker_alive();
                job.wait(
                    |job| {
                        job.start.load(Ordering::Acquire) != START_UNKNOWN
                            || job.done.load(Ordering::Acquire)
                    },
                    || alive.load(Ordering::Acquire),
                );
                start = job.start.load(Ordering::Acquire);
                if start == START_UNKNOWN && job.done.load(Ordering::Acquire) {
                    start = START_NONE;
                }
            }
            if start == START_NONE {
                self.drop_target();
                continue;
            }
            // An unknown start is at or after the job's first byte.
            let limit = if start == START_UNKNOWN {
                target.job.base
            } else {
                start.div_ceil(8)
            };
            return if self.pos + NEAR >= limit {
                (Some(limit), true)
            } else {
                (Some(limit - NEAR), need_boundaries)
            };
        }
    }

    /// Whether inflating from blob bits `a` and `b` is the same thing (see `same_start`).
    fn same_start_at(&self, a: u64, b: u64) -> bool {
        if a == b {
            return true;
        }
        let from = a.min(b) / 8;
        let bytes = self.copy_range(from, from + 16);
        same_start(&bytes, a - from * 8, b - from * 8)
    }

    /// At a block boundary at blob bit `bit`, after `recent` (the output before it, newest
    /// last): land on the speculation's start, or take its output over from here, or give it up.
    fn at_boundary(&mut self, bit: u64, recent: [&[u8]; 2]) {
        let (total_out, member_out) = (self.total_out, self.member_out);
        let Some(target) = self.targets.front() else {
            return;
        };
        if target.landed.is_none() {
            let start = target.job.start.load(Ordering::Acquire);
            if start >= START_NONE {
                return;
            }
            if !self.same_start_at(bit, start) {
                if bit > start {
                    self.drop_target();
                }
                return;
            }
            let mut window = Box::new([0u8; WINDOW_SIZE]);
            let mut fill = WINDOW_SIZE;
            for part in recent.iter().rev() {
                let n = part.len().min(fill);
                window[fill - n..fill].copy_from_slice(&part[part.len() - n..]);
                fill -= n;
            }
            let avail = usize::try_from(member_out)
                .unwrap_or(usize::MAX)
                .min(WINDOW_SIZE - fill);
            let alive = self.worker_alive();
            if let Some(target) = self.targets.front_mut() {
                target.landed = Some((bit, total_out));
                target.window = Some((window, avail));
                // Proven start: the rest of the stretch is coming, wait for it.
                target.job.wait(
                    |job| job.done.load(Ordering::Acquire),
                    || alive.load(Ordering::Acquire),
                );
            }
        }
        self.try_splice(bit)
    }

    /// Landed on the front target: splice its speculation in at `bit` when it is ready and
    /// has a boundary there; give it up when it cannot be used.
    fn try_splice(&mut self, bit: u64) {
        let total_out = self.total_out;
        let Some(target) = self.targets.front_mut() else {
            return;
        };
        let Some((landed_bit, landed_out)) = target.landed else {
            return;
        };
        if target.spec.is_none() {
            if !target.job.done.load(Ordering::Acquire) {
                return;
            }
            target.spec = target
                .job
                .result
                .lock()
                .ok()
                .and_then(|mut slot| slot.take());
            let usable = match (&target.spec, &target.window) {
                (Some(_), Some((_, avail))) if *avail == WINDOW_SIZE => true,
                // Less history in the member than a window: output copied from before the
                // member's start is "too far back" for zlib, and this thread will say so when
                // it inflates the stretch itself.
                (Some(spec), Some((_, avail))) => {
                    let dirty = spec.dirty_end.min(spec.alternate.len());
                    oldest_position(&spec.bytes[..dirty], &spec.alternate[..dirty])
                        >= WINDOW_SIZE - avail
                }
                _ => false,
            };
            let start = target.spec.as_ref().map(|spec| spec.start);
            if !usable || !start.is_some_and(|start| self.same_start_at(landed_bit, start)) {
                self.drop_target();
                return;
            }
        }
        let Some(target) = self.targets.front_mut() else {
            return;
        };
        let Some(spec) = &target.spec else {
            return;
        };
        let out = total_out - landed_out;
        match spec.boundaries.binary_search_by_key(&bit, |&(at, _)| at) {
            Ok(i) if spec.boundaries[i].1 as u64 != out => self.drop_target(),
            Ok(i) if i + 1 == spec.boundaries.len() => self.drop_target(),
            Ok(i) => {
                let copied = spec.boundaries[i].1;
                if let (Some(spec), Some((window, _))) = (target.spec.take(), target.window.take())
                {
                    self.splice = Some(Splice {
                        spec,
                        next: i + 1,
                        copied,
                        window,
                        resolver: None,
                    });
                }
            }
            Err(i) if i == spec.boundaries.len() => self.drop_target(),
            Err(_) => {}
        }
    }

    /// One zlib call on this thread.
    pub(super) fn inflate_step<R: Read>(
        &mut self,
        source: &mut R,
        hasher: &mut SpanHasherThread,
        history: &[u8],
        out: &mut [u8],
        need_boundaries: bool,
    ) -> std::io::Result<Produced> {
        self.plan_jobs(source, hasher)?;
        if !self.have(self.pos, source, hasher)? {
            return Err(data_error(format!(
                "the gzip stream is truncated at compressed offset {}",
                self.pos
            )));
        }
        let (limit, block) = self.aim(need_boundaries);
        let Some((segment, from)) = self.segment_at(self.pos) else {
            return Err(data_error(format!(
                "compressed offset {} is not buffered",
                self.pos
            )));
        };
        let mut input = &segment[from..];
        if let Some(limit) = limit {
            input = &input[..input.len().min(limit.saturating_sub(self.pos) as usize)];
        }
        let flush = if block {
            zlib::Z_BLOCK
        } else {
            zlib::Z_NO_FLUSH
        };
        let step = self.inflater.inflate(input, out, flush);
        self.pos += step.consumed as u64;
        self.account(&out[..step.produced]);
        if step.code == zlib::Z_STREAM_END {
            self.member = Member::Trailer;
            return Ok(self.produced(step.produced, None));
        }
        let at_boundary = step.data_type & 128 != 0 && step.data_type & 64 == 0;
        if !step_ok(&step) {
            if step.code == zlib::Z_BUF_ERROR && limit.is_some() {
                // Stuck at the limit without reaching the speculation's start exactly: it was
                // not a block start (or is still unknown). Inflate on without it.
                self.drop_target();
                return Ok(self.produced(0, None));
            }
            return Err(data_error(format!(
                "gzip data error (zlib code {}) at compressed offset {}",
                step.code, self.pos
            )));
        }
        if !at_boundary {
            return Ok(self.produced(step.produced, None));
        }
        let bits = (step.data_type & 7) as u8;
        self.at_boundary(
            self.pos * 8 - u64::from(bits),
            [history, &out[..step.produced]],
        );
        self.trim();
        Ok(self.produced(step.produced, Some(bits)))
    }
}
