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

/// The request's bytes without its items, and its items, in order: `(header,
/// items)`; None when the request's own framing is broken. The items are
/// decoded, checked and encoded without holding the GIL, so a request can be
/// taken apart on a thread while the interpreter does other work.
#[pyfunction]
pub fn split_upload_request<'py>(
    py: Python<'py>,
    codec: &FrameCodec,
    request: &[u8],
    max_client_key_bytes: usize,
) -> PyResult<Option<(Bound<'py, PyBytes>, Vec<SplitItem<'py>>)>> {
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
            Ok((client_key, key_problem, checked)) => (client_key, key_problem, Some(Py::new(py, checked)?), None),
            Err(span) => (String::new(), None, None, Some(PyBytes::new(py, &request[span]))),
        });
    }
    Ok(Some((PyBytes::new(py, &header), items)))
}

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
