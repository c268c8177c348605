//! What the fuzzer's bytes decode to: a configuration (hostile values included)
//! and a sequence of driver steps.

mod config;
mod ops;

use core::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};

pub(crate) use config::ConfigInput;
pub(crate) use ops::{DriveMode, Op, PingBody, Step};

/// The most steps one input may drive.
pub(crate) const MAX_STEPS: usize = 200;

/// Decodes steps until the input runs out or [`MAX_STEPS`] is reached.
pub(crate) fn steps(u: &mut Unstructured<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS && !u.is_empty() {
        match Step::arbitrary(u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    steps
}

/// A duration drawn from the ranges that matter: zero, tiny, human-sized, huge, `MAX`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub(crate) Duration);

impl<'a> Arbitrary<'a> for Dur {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let d = match u.int_in_range(0u8..=7)? {
            0 => Duration::ZERO,
            1 => Duration::MAX,
            2 => Duration::from_nanos(u64::from(u.arbitrary::<u16>()?)),
            3 => Duration::from_micros(u64::from(u.arbitrary::<u16>()?)),
            4 => Duration::from_millis(u64::from(u.arbitrary::<u16>()?)),
            5 => Duration::from_secs(u64::from(u.arbitrary::<u16>()?)),
            6 => Duration::from_nanos(u.arbitrary()?),
            _ => Duration::new(u.arbitrary()?, u.arbitrary::<u32>()? % 1_000_000_000),
        };
        Ok(Dur(d))
    }
}
