//! Numeric arguments as Python gives them: any `int` or `float`, however large.
//!
//! PyO3's `f64`/`i64`/`u64` extraction raises `OverflowError` for an `int` beyond the
//! target's range (`10**400` as a time, `2**70` as a close code). An out-of-range
//! number is a bad value, not a different kind of failure, so these wrappers keep
//! what no machine number holds as text and let the caller raise the same
//! `ValueError` (or `ConfigError`) that names the field, the value and the range.
//! A value of the wrong type (a string for a time) stays a `TypeError`.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

/// A real-number argument (seconds): the float Python gave, or ±infinity with the
/// text of an `int` too large for a float.
#[derive(Clone, Debug)]
pub(crate) struct Real {
    /// The value; ±infinity when the number does not fit a float.
    pub(crate) value: f64,
    /// The number as Python prints it, when `value` could not hold it.
    text: Option<String>,
}

impl Real {
    /// A value given from Rust (a default).
    pub(crate) fn of(value: f64) -> Real {
        Real { value, text: None }
    }

    /// The number as the caller wrote it, for error messages.
    pub(crate) fn shown(&self) -> String {
        self.text.clone().unwrap_or_else(|| self.value.to_string())
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Real {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Real> {
        match obj.extract::<f64>() {
            Ok(value) => Ok(Real::of(value)),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                let negative = obj.lt(0)?;
                Ok(Real {
                    value: if negative {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    },
                    text: Some(shown(&obj)),
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// An integer argument (a close code, a count, a seed): its value when it fits an
/// `i128`, else its text.
#[derive(Clone, Debug)]
pub(crate) struct Int(Result<i128, String>);

impl Int {
    /// A value given from Rust (a default).
    pub(crate) fn of(value: i128) -> Int {
        Int(Ok(value))
    }

    /// The value as `T`, or None when it lies outside `T`'s range.
    pub(crate) fn fit<T: TryFrom<i128>>(&self) -> Option<T> {
        self.0.as_ref().ok().and_then(|&v| T::try_from(v).ok())
    }

    /// The number as the caller wrote it, for error messages.
    pub(crate) fn shown(&self) -> String {
        match &self.0 {
            Ok(v) => v.to_string(),
            Err(text) => text.clone(),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Int> {
        match obj.extract::<i128>() {
            Ok(value) => Ok(Int(Ok(value))),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Ok(Int(Err(shown(&obj)))),
            Err(e) => Err(e),
        }
    }
}

/// `str(obj)`, shortened: a 400-digit number does not belong in a message in full.
fn shown(obj: &Borrowed<'_, '_, PyAny>) -> String {
    let text = obj
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<unprintable>".into());
    if text.chars().count() > SHOWN_CHARS {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head}… ({} characters)", text.chars().count())
    } else {
        text
    }
}

/// The most characters of a number an error message repeats.
const SHOWN_CHARS: usize = 24;
