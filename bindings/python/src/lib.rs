//! `heartbeat._core`: heartbeat-core's sans-IO keepalive machine for Python.
//!
//! The binding is thin on purpose: it converts Python's float seconds into the
//! core's [`heartbeat_core::Instant`] and [`core::time::Duration`], rejects what no
//! clock can produce (NaN, negative, infinite) with `ValueError`, and turns the
//! core's `Copy` actions and outcomes into small frozen Python objects. Every
//! decision stays in heartbeat-core; the Python package `heartbeat` adds the
//! `websockets` driver on top.

#![forbid(unsafe_code)]

mod config;
mod machine;
mod numbers;
mod seconds;
mod values;

use pyo3::prelude::*;

/// The extension module behind `import heartbeat`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<config::PyConfig>()?;
    m.add_class::<machine::PyMachine>()?;
    m.add("ConfigError", m.py().get_type::<config::ConfigError>())?;
    values::register(m)?;
    m.add("MAX_CONTROL_PAYLOAD", heartbeat_core::MAX_CONTROL_PAYLOAD)?;
    Ok(())
}
