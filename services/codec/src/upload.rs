//! An `UploadFramesRequest` taken apart from its bytes: its items checked
//! frame by frame with the one rule set (`rules`), without the request ever
//! becoming Python protobuf objects.
//!
//! Field paths of a frame's violations are relative to the frame (`.id`,
//! `.rois[2].labels`; the whole frame is the empty path): the stream-wide
//! index of an item is known only where the stream is read, which prefixes
//! `frames[i]` to the few frames that have violations.
//!
//! Items whose bytes prost does not decode are handed back as bytes: the
//! caller decides about them exactly as for a request decoded by the
//! protobuf runtime (prost refuses some encodings that runtime accepts, such
//! as a known field with another wire type).

use std::ops::Range;

use prost::encoding::{decode_key, decode_varint, WireType};
use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::text::Text;
use crate::{checked_frame, pb, rules, CheckedFrame, FrameCodec, PythonText};

/// `UploadFramesRequest.items`.
const ITEMS_FIELD: u32 = 2;

/// `framevault.v1.UploadItem` (metadata_service.proto), the one message of
/// that file the codec reads.
#[derive(Clone, PartialEq, prost::Message)]
struct UploadItem {
    #[prost(string, tag = "1")]
    client_key: String,
    #[prost(message, optional, tag = "2")]
    frame: Option<pb::Frame>,
}

/// One item of a request: (client key, why the key is refused, the checked
/// frame) when the item decodes, else its bytes.
type SplitItem<'py> = (
    String,
    Option<String>,
    Option<Py<CheckedFrame>>,
    Option<Bound<'py, PyBytes>>,
);

/// `PythonText` for work done without the GIL: it is taken only for the
/// rare characters outside ASCII.
struct AttachingText;

impl Text for AttachingText {
    fn is_word(&self, c: char) -> bool {
        if c.is_ascii() {
            return c.is_ascii_alphanumeric() || c == '_';
        }
        Python::attach(|py| PythonText { py }.is_word(c))
    }

    fn repr(&self, value: &str) -> String {
        Python::attach(|py| PythonText { py }.repr(value))
    }
}

/// The bytes of every field but the items, and the payload range of each
/// item; None when the framing is broken.
fn split(request: &[u8]) -> Option<(Vec<u8>, Vec<Range<usize>>)> {
    let mut header = Vec::new();
    let mut items = Vec::new();
    let mut rest = request;
    while !rest.is_empty() {
        let start = request.len() - rest.len();
        let (number, wire_type) = decode_key(&mut rest).ok()?;
        match wire_type {
            WireType::Varint => {
                decode_varint(&mut rest).ok()?;
            }
            WireType::SixtyFourBit => rest = rest.get(8..)?,
            WireType::ThirtyTwoBit => rest = rest.get(4..)?,
            WireType::LengthDelimited => {
                let length = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                let payload = request.len() - rest.len();
                rest = rest.get(length..)?;
                if number == ITEMS_FIELD {
                    items.push(payload..payload + length);
                    continue;
                }
            }
            // Groups are not part of proto3.
            WireType::StartGroup | WireType::EndGroup => return None,
        }
        header.extend_from_slice(&request[start..request.len() - rest.len()]);
    }
    Some((header, items))
}

/// One item of a request as `UploadItems` keeps it.
enum Item {
    Checked {
        client_key: String,
        key_problem: Option<String>,
        checked: Py<CheckedFrame>,
    },
    /// Bytes prost does not decode, for the protobuf runtime to decide.
    Undecoded(Py<PyBytes>),
}

/// The items of one request, checked, kept together: what the upload stream
/// reads of every frame (ids, etags, client keys, which frames are ready to
/// write) is handed over as one list per request, and the documents of many
/// frames are written in one call, so that no Python object is made per
/// frame on the way to the database.
#[pyclass(module = "framevault_codec", frozen)]
pub struct UploadItems {
    items: Vec<Item>,
}

impl UploadItems {
    fn checked(&self, position: usize) -> Option<&Py<CheckedFrame>> {
        match self.items.get(position)? {
            Item::Checked { checked, .. } => Some(checked),
            Item::Undecoded(_) => None,
        }
    }
}

#[pymethods]
impl UploadItems {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// Each item's frame id (given or derived); empty when there is none.
    #[getter]
    fn frame_ids(&self) -> Vec<&str> {
        (0..self.items.len())
            .map(|i| self.checked(i).map_or("", |c| c.get().frame_id.as_str()))
            .collect()
    }

    /// Each item's etag; empty for a frame that is not valid.
    #[getter]
    fn etags(&self) -> Vec<&str> {
        (0..self.items.len())
            .map(|i| {
                self.checked(i)
                    .and_then(|c| c.get().valid.as_ref())
                    .map_or("", |v| v.encoded.etag.as_str())
            })
            .collect()
    }

    /// Each item's client key as sent.
    #[getter]
    fn client_keys(&self) -> Vec<&str> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Checked { client_key, .. } => client_key.as_str(),
                Item::Undecoded(_) => "",
            })
            .collect()
    }

    /// Whether each item is ready to be written: a valid frame with an
    /// acceptable client key that needs nothing of the blob service.
    #[getter]
    fn ready(&self) -> Vec<bool> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Checked {
                    key_problem: None,
                    checked,
                    ..
                } => checked
                    .get()
                    .valid
                    .as_ref()
                    .is_some_and(|v| v.inline.is_empty() && v.referenced.is_empty()),
                _ => false,
            })
            .collect()
    }

    /// The item at `position`: (client key, why the key is refused, the
    /// checked frame, or the item's bytes when it does not decode).
    fn item<'py>(&self, py: Python<'py>, position: usize) -> PyResult<SplitItem<'py>> {
        match self.items.get(position) {
            Some(Item::Checked {
                client_key,
                key_problem,
                checked,
            }) => Ok((
                client_key.clone(),
                key_problem.clone(),
                Some(checked.clone_ref(py)),
                None,
            )),
            Some(Item::Undecoded(data)) => Ok((String::new(), None, None, Some(data.bind(py).clone()))),
            None => Err(pyo3::exceptions::PyIndexError::new_err("no item at this position")),
        }
    }

    /// The revision documents (BSON) of the valid frames at `positions`,
    /// written by `version_id` of `dataset_id` at `saved_ms`, in that order.
    fn documents<'py>(
        &self,
        py: Python<'py>,
        positions: Vec<usize>,
        dataset_id: &str,
        version_id: &str,
        saved_ms: i64,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        positions
            .into_iter()
            .map(|position| {
                let valid = self
                    .checked(position)
                    .and_then(|c| c.get().valid.as_ref())
                    .ok_or_else(|| PyValueError::new_err(format!("the frame at {position} is not valid")))?;
                Ok(PyBytes::new(
                    py,
                    &valid.encoded.document.write(dataset_id, version_id, saved_ms),
                ))
            })
            .collect()
    }
}

/// The request's bytes without its items, and its items (`UploadItems`), in
/// order; None when the request's own framing is broken. The items are
/// decoded, checked and encoded without holding the GIL, so a request can be
/// taken apart on a thread while the interpreter does other work.
#[pyfunction]
pub fn split_upload_items<'py>(
    py: Python<'py>,
    codec: &FrameCodec,
    request: &[u8],
    max_client_key_bytes: usize,
) -> PyResult<Option<(Bound<'py, PyBytes>, UploadItems)>> {
    let Some((header, spans)) = split(request) else {
        return Ok(None);
    };
    let limits = codec.limits;
    let outcomes: Vec<Result<(String, Option<String>, CheckedFrame), Range<usize>>> = py.detach(|| {
        spans
            .into_iter()
            .map(|span| {
                let item = UploadItem::decode(&request[span.clone()]).map_err(|_| span)?;
                let key_problem = rules::text_problem(&item.client_key, max_client_key_bytes, false);
                let checked = rules::check_frame(item.frame.unwrap_or_default(), "", &limits, &AttachingText);
                Ok((item.client_key, key_problem, checked_frame(checked)))
            })
            .collect()
    });
    let mut items = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        items.push(match outcome {
            Ok((client_key, key_problem, checked)) => Item::Checked {
                client_key,
                key_problem,
                checked: Py::new(py, checked)?,
            },
            Err(span) => Item::Undecoded(PyBytes::new(py, &request[span]).unbind()),
        });
    }
    Ok(Some((PyBytes::new(py, &header), UploadItems { items })))
}

/// `framevault.v1.FrameResult`; `error` is a `google.rpc.Status` as encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct FrameResult {
    #[prost(int64, tag = "1")]
    index: i64,
    #[prost(string, tag = "2")]
    client_key: String,
    #[prost(string, tag = "3")]
    frame_id: String,
    #[prost(int32, tag = "4")]
    outcome: i32,
    #[prost(int32, tag = "5")]
    attempts: i32,
    #[prost(bytes = "vec", optional, tag = "6")]
    error: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct UploadResults {
    #[prost(message, repeated, tag = "1")]
    results: Vec<FrameResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct UploadFramesResponse {
    #[prost(message, optional, tag = "2")]
    results: Option<UploadResults>,
}

/// An `UploadFramesResponse` (protobuf bytes) carrying one result per frame:
/// the lists are parallel; `errors` are encoded `google.rpc.Status`es or
/// None.
#[pyfunction]
pub fn upload_results_response<'py>(
    py: Python<'py>,
    indexes: Vec<i64>,
    client_keys: Vec<String>,
    frame_ids: Vec<String>,
    outcomes: Vec<i32>,
    attempts: Vec<i32>,
    errors: Vec<Option<Vec<u8>>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let count = indexes.len();
    if [
        client_keys.len(),
        frame_ids.len(),
        outcomes.len(),
        attempts.len(),
        errors.len(),
    ]
    .iter()
    .any(|&n| n != count)
    {
        return Err(PyValueError::new_err("the result lists differ in length"));
    }
    let results = indexes
        .into_iter()
        .zip(client_keys)
        .zip(frame_ids)
        .zip(outcomes)
        .zip(attempts)
        .zip(errors)
        .map(
            |(((((index, client_key), frame_id), outcome), attempts), error)| FrameResult {
                index,
                client_key,
                frame_id,
                outcome,
                attempts,
                error,
            },
        )
        .collect();
    let response = UploadFramesResponse {
        results: Some(UploadResults { results }),
    };
    Ok(PyBytes::new(py, &response.encode_to_vec()))
}
