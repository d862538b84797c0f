//! Caller metadata outside frames (datasets, versions, view rules) checked by
//! the rules of frame metadata (`rules`), so both refuse the same keys and
//! values with the same messages, and the key paths that address metadata.

use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::pb;
use crate::rules;
use crate::PythonText;

/// (field path, description) of each problem of an encoded `Metadata` at
/// `field`, in key order. Raises ValueError when the bytes do not decode.
#[pyfunction]
pub fn metadata_violations(py: Python<'_>, meta: &[u8], field: &str) -> PyResult<Vec<(String, String)>> {
    let decoded = pb::Metadata::decode(meta).map_err(|exc| PyValueError::new_err(exc.to_string()))?;
    Ok(rules::metadata_violations(&decoded, field, &PythonText { py })
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect())
}

/// (segments, None) of a dotted key path that addresses a metadata value
/// (`weather.rain`), or ((), why it addresses none).
#[pyfunction]
pub fn split_key_path<'py>(py: Python<'py>, path: &str) -> PyResult<(Bound<'py, PyTuple>, Option<String>)> {
    Ok(match rules::key_path_segments(path, &PythonText { py }) {
        Ok(segments) => (PyTuple::new(py, segments)?, None),
        Err(problem) => (PyTuple::empty(py), Some(problem)),
    })
}
