//! The frame codec of the metadata service: takes a frame as the caller sent
//! it (protobuf bytes), validates and normalises it with the one rule set of
//! frames written by callers (`rules`), and gives its revision document as
//! BSON bytes (`document`), ready to insert without re-encoding.

use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

mod decode;
mod document;
mod metadata;
mod rules;
mod text;
mod upload;

/// The contract's messages, generated at build time from proto/framevault/v1.
#[allow(clippy::all, deprecated)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/framevault.v1.rs"));
}

use rules::Limits;
use text::Text;

/// The character classes Python's `re` and `repr` use, asked of Python for
/// the rare characters outside ASCII, so the messages are exactly Python's.
struct PythonText<'py> {
    py: Python<'py>,
}

impl Text for PythonText<'_> {
    fn is_word(&self, c: char) -> bool {
        if c.is_ascii() {
            return c.is_ascii_alphanumeric() || c == '_';
        }
        let mut utf8 = [0u8; 4];
        PyString::new(self.py, c.encode_utf8(&mut utf8))
            .call_method0("isalnum")
            .and_then(|answer| answer.extract::<bool>())
            .unwrap_or(false)
    }

    fn repr(&self, value: &str) -> String {
        PyString::new(self.py, value)
            .repr()
            .map(|shown| shown.to_string())
            .unwrap_or_else(|_| format!("'{value}'"))
    }
}

/// Checks frames against the limits of one service configuration.
#[pyclass(module = "framevault_codec", frozen)]
struct FrameCodec {
    limits: Limits,
}

#[pymethods]
impl FrameCodec {
    #[new]
    #[pyo3(signature = (*, max_inline_bytes, max_blob_bytes, max_meta_bytes))]
    fn new(max_inline_bytes: usize, max_blob_bytes: i64, max_meta_bytes: usize) -> Self {
        FrameCodec {
            limits: Limits {
                max_inline_bytes,
                max_blob_bytes,
                max_meta_bytes,
            },
        }
    }

    /// Validates and normalises one encoded `Frame`, reporting violations
    /// under `prefix`; a valid frame gets its revision document. Raises
    /// ValueError when the bytes do not decode as a Frame.
    fn check(&self, py: Python<'_>, frame: &[u8], prefix: &str) -> PyResult<CheckedFrame> {
        let decoded = pb::Frame::decode(frame).map_err(|exc| PyValueError::new_err(exc.to_string()))?;
        let checked = rules::check_frame(decoded, prefix, &self.limits, &PythonText { py });
        Ok(checked_frame(checked))
    }
}

/// The Python view of a frame's check: its document when valid.
fn checked_frame(checked: rules::Checked) -> CheckedFrame {
    let violations = checked
        .violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect();
    let Some(prepared) = checked.prepared else {
        return CheckedFrame {
            frame_id: checked.frame_id,
            violations,
            valid: None,
        };
    };
    let encoded = document::encode(&prepared.frame);
    CheckedFrame {
        frame_id: checked.frame_id,
        violations,
        valid: Some(Valid {
            context_id: prepared.frame.context_id,
            timestamp: prepared.frame.timestamp,
            referenced: prepared.referenced.into_iter().map(|d| (d.hash, d.size)).collect(),
            inline: prepared
                .inline
                .into_iter()
                .map(|(d, data)| (d.hash, d.size, data))
                .collect(),
            encoded,
        }),
    }
}

struct Valid {
    context_id: String,
    timestamp: i64,
    referenced: Vec<(String, i64)>,
    inline: Vec<(String, i64, Vec<u8>)>,
    encoded: document::Encoded,
}

/// The outcome of checking one frame: violations, or the valid frame's
/// document and what must happen in the blob service first.
#[pyclass(module = "framevault_codec", frozen)]
struct CheckedFrame {
    /// Given or derived; empty when neither is possible.
    #[pyo3(get)]
    frame_id: String,
    /// (field path, description) of each problem, in the order found.
    #[pyo3(get)]
    violations: Vec<(String, String)>,
    valid: Option<Valid>,
}

impl CheckedFrame {
    fn valid(&self) -> PyResult<&Valid> {
        self.valid
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the frame is not valid"))
    }
}

#[pymethods]
impl CheckedFrame {
    #[getter]
    fn is_valid(&self) -> bool {
        self.valid.is_some()
    }

    #[getter]
    fn context_id(&self) -> PyResult<String> {
        Ok(self.valid()?.context_id.clone())
    }

    #[getter]
    fn timestamp(&self) -> PyResult<i64> {
        Ok(self.valid()?.timestamp)
    }

    #[getter]
    fn etag(&self) -> PyResult<String> {
        Ok(self.valid()?.encoded.etag.clone())
    }

    /// (sha256 hex, size) of each `blob:` reference that must already exist.
    #[getter]
    fn referenced_blobs(&self) -> PyResult<Vec<(String, i64)>> {
        Ok(self.valid()?.referenced.clone())
    }

    /// (sha256 hex, size, bytes) of each inline content to store.
    #[getter]
    fn inline_blobs<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, i64, Bound<'py, PyBytes>)>> {
        Ok(self
            .valid()?
            .inline
            .iter()
            .map(|(hash, size, data)| (hash.clone(), *size, PyBytes::new(py, data)))
            .collect())
    }

    /// Encoded bytes of the sources, the ROIs, the meta and the blob.
    #[getter]
    fn part_sizes(&self) -> PyResult<(usize, usize, usize, usize)> {
        let sizes = &self.valid()?.encoded.sizes;
        Ok((sizes.sources, sizes.rois, sizes.meta, sizes.blob))
    }

    /// The revision document (BSON) written by `version_id` of `dataset_id`
    /// at `saved_ms` (epoch milliseconds).
    fn document<'py>(
        &self,
        py: Python<'py>,
        dataset_id: &str,
        version_id: &str,
        saved_ms: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(
            py,
            &self.valid()?.encoded.document.write(dataset_id, version_id, saved_ms),
        ))
    }
}

/// The revision document of an encoded `Frame` as it is, neither checked
/// nor normalised, written by `version_id` of `dataset_id` at `saved_ms`:
/// for seeding a database directly (tests, benchmarks).
#[pyfunction]
fn encode_document<'py>(
    py: Python<'py>,
    frame: &[u8],
    dataset_id: &str,
    version_id: &str,
    saved_ms: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let decoded = pb::Frame::decode(frame).map_err(|exc| PyValueError::new_err(exc.to_string()))?;
    Ok(PyBytes::new(
        py,
        &document::encode(&decoded)
            .document
            .write(dataset_id, version_id, saved_ms),
    ))
}

/// Why `value` is not an acceptable identifier-like string, or None.
#[pyfunction]
#[pyo3(signature = (value, max_bytes, *, required = true))]
fn text_problem(value: &str, max_bytes: usize, required: bool) -> Option<String> {
    rules::text_problem(value, max_bytes, required)
}

/// The id of a frame uploaded without one (its first source URI's).
#[pyfunction]
fn derive_frame_id(uri: &str) -> String {
    rules::derive_frame_id(uri)
}

/// A stable, uniformly spread non-negative int63 per frame id.
#[pyfunction]
fn shuffle_key(frame_id: &str) -> i64 {
    document::shuffle_key(frame_id)
}

/// Why a metadata key may not be stored, or None.
#[pyfunction]
fn key_problem(key: &str) -> Option<String> {
    rules::key_problem(key)
}

/// The `Frame` (protobuf bytes) of a stored revision document (BSON bytes)
/// as read in `version_id`. Raises ValueError when the document is not one.
#[pyfunction]
fn frame_from_document<'py>(py: Python<'py>, document: &[u8], version_id: &str) -> PyResult<Bound<'py, PyBytes>> {
    let frame = decode::frame(document, version_id).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new(py, &frame))
}

/// (frame_id, context_id, timestamp) of a stored revision document (BSON
/// bytes), each None where the document has none of that type.
#[pyfunction]
fn revision_keys(document: &[u8]) -> PyResult<(Option<&str>, Option<&str>, Option<i64>)> {
    decode::revision_keys(document).map_err(PyValueError::new_err)
}

/// An `IterateFramesResponse` (protobuf bytes) carrying frames already encoded.
#[pyfunction]
fn iterate_frames_response<'py>(
    py: Python<'py>,
    frames: Vec<Bound<'py, PyBytes>>,
    selection_indexes: Vec<i32>,
    cursor: &str,
    frame_cursors: Vec<String>,
    start_cursor: &str,
) -> Bound<'py, PyBytes> {
    let frames: Vec<&[u8]> = frames.iter().map(|frame| frame.as_bytes()).collect();
    PyBytes::new(
        py,
        &decode::iterate_frames_response(&frames, &selection_indexes, cursor, &frame_cursors, start_cursor),
    )
}

#[pymodule]
fn framevault_codec(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<FrameCodec>()?;
    module.add_class::<CheckedFrame>()?;
    module.add_function(wrap_pyfunction!(encode_document, module)?)?;
    module.add_class::<upload::UploadItems>()?;
    module.add_function(wrap_pyfunction!(upload::split_upload_items, module)?)?;
    module.add_function(wrap_pyfunction!(upload::upload_results_response, module)?)?;
    module.add_function(wrap_pyfunction!(text_problem, module)?)?;
    module.add_function(wrap_pyfunction!(derive_frame_id, module)?)?;
    module.add_function(wrap_pyfunction!(key_problem, module)?)?;
    module.add_function(wrap_pyfunction!(metadata::metadata_violations, module)?)?;
    module.add_function(wrap_pyfunction!(metadata::split_key_path, module)?)?;
    module.add_function(wrap_pyfunction!(shuffle_key, module)?)?;
    module.add_function(wrap_pyfunction!(frame_from_document, module)?)?;
    module.add_function(wrap_pyfunction!(revision_keys, module)?)?;
    module.add_function(wrap_pyfunction!(iterate_frames_response, module)?)?;
    module.add("MAX_FRAME_ID_BYTES", rules::MAX_FRAME_ID_BYTES)?;
    module.add("MAX_CONTEXT_ID_BYTES", rules::MAX_CONTEXT_ID_BYTES)?;
    module.add("MAX_FRAME_BLOB_BYTES", rules::MAX_FRAME_BLOB_BYTES)?;
    module.add("MAX_META_DEPTH", rules::MAX_META_DEPTH)?;
    module.add("DERIVED_ID_HEX_CHARS", rules::DERIVED_ID_HEX_CHARS)?;
    module.add("DEFAULT_SOURCE_ID", rules::DEFAULT_SOURCE_ID)?;
    Ok(())
}
