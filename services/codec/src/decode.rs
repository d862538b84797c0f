//! The read direction: a stored revision document (BSON, as the cursor
//! returns it) straight to its `Frame` as protobuf bytes, the frame as read
//! in a version, without building the frame field by field in Python.
//!
//! Stored documents are read as `document` writes them, and as earlier
//! services wrote them: every optional part may be missing (then the frame
//! field keeps its default), integers may be int32 or int64, numbers of
//! geometry may be ints. Top-level fields the frame does not carry
//! (`_id`, `shuffle_key`) are skipped; a member of a source, preview or mask
//! the contract does not know is an error, as a value of the wrong type is.

#![allow(deprecated)] // Roi.mask is deprecated in the contract and still stored.

use crate::document::{ARRAY, BINARY, BOOLEAN, DOCUMENT, DOUBLE, INT32, INT64, NULL, STRING};

// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

pub type Result<T> = std::result::Result<T, String>;

/// One member of a BSON document or array.
#[derive(Clone, Copy)]
struct Element<'a> {
    kind: u8,
    key: &'a str,
    value: &'a [u8],
}

/// The members of a BSON document (or array) body, in stored order.
struct Elements<'a> {
    data: &'a [u8],
    at: usize,
}

fn elements(document: &[u8]) -> Result<Elements<'_>> {
    if document.len() < 5 {
        return Err("truncated BSON document".into());
    }
    let declared = i32::from_le_bytes(document[..4].try_into().unwrap());
    if declared as usize != document.len() || document[document.len() - 1] != 0 {
        return Err("malformed BSON document length".into());
    }
    Ok(Elements {
        data: &document[..document.len() - 1],
        at: 4,
    })
}

fn read_i32(data: &[u8], at: usize) -> Result<i32> {
    data.get(at..at + 4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .ok_or_else(|| "truncated BSON value".to_string())
}

impl<'a> Elements<'a> {
    fn value_len(&self, kind: u8, at: usize) -> Result<usize> {
        let sized = |extra: usize| -> Result<usize> {
            let n = read_i32(self.data, at)?;
            usize::try_from(n)
                .map(|n| n + extra)
                .map_err(|_| "negative BSON length".to_string())
        };
        let cstring = |from: usize| -> Result<usize> {
            self.data[from.min(self.data.len())..]
                .iter()
                .position(|&b| b == 0)
                .map(|end| end + 1)
                .ok_or_else(|| "unterminated BSON string".to_string())
        };
        Ok(match kind {
            DOUBLE | 0x09 | 0x11 | INT64 => 8,
            STRING | 0x0D | 0x0E => sized(4)?,
            DOCUMENT | ARRAY | 0x0F => sized(0)?,
            BINARY => sized(5)?,
            0x06 | NULL | 0x7F | 0xFF => 0,
            0x07 => 12,
            BOOLEAN => 1,
            0x0B => {
                let pattern = cstring(at)?;
                pattern + cstring(at + pattern)?
            }
            0x0C => sized(4)? + 12,
            INT32 => 4,
            0x13 => 16,
            other => return Err(format!("unknown BSON type 0x{other:02x}")),
        })
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.data.len() {
            return None;
        }
        let step = || -> Result<(Element<'a>, usize)> {
            let kind = self.data[self.at];
            let key_start = self.at + 1;
            let key_len = self.data[key_start..]
                .iter()
                .position(|&b| b == 0)
                .ok_or("unterminated BSON key")?;
            let key =
                std::str::from_utf8(&self.data[key_start..key_start + key_len]).map_err(|_| "BSON key is not UTF-8")?;
            let value_start = key_start + key_len + 1;
            let len = self.value_len(kind, value_start)?;
            let value = self
                .data
                .get(value_start..value_start + len)
                .ok_or("truncated BSON value")?;
            Ok((Element { kind, key, value }, value_start + len))
        };
        match step() {
            Ok((element, next)) => {
                self.at = next;
                Some(Ok(element))
            }
            Err(exc) => {
                self.at = self.data.len();
                Some(Err(exc))
            }
        }
    }
}

fn type_error(field: &str, element: &Element<'_>, wanted: &str) -> String {
    format!("stored field {field} is BSON type 0x{:02x}, not {wanted}", element.kind)
}

impl<'a> Element<'a> {
    fn is_null(&self) -> bool {
        self.kind == NULL
    }

    fn str(&self, field: &str) -> Result<&'a str> {
        if self.kind != STRING {
            return Err(type_error(field, self, "a string"));
        }
        let bytes = &self.value[4..self.value.len() - 1];
        std::str::from_utf8(bytes).map_err(|_| format!("stored field {field} is not UTF-8"))
    }

    fn int(&self, field: &str) -> Result<i64> {
        match self.kind {
            INT32 => Ok(i32::from_le_bytes(self.value.try_into().unwrap()) as i64),
            INT64 => Ok(i64::from_le_bytes(self.value.try_into().unwrap())),
            _ => Err(type_error(field, self, "an integer")),
        }
    }

    fn int32(&self, field: &str) -> Result<i32> {
        i32::try_from(self.int(field)?).map_err(|_| format!("stored field {field} does not fit in int32"))
    }

    /// A number of a float field (geometry, confidence): stored as a double,
    /// or as an int by an older writer.
    fn float(&self, field: &str) -> Result<f32> {
        match self.kind {
            DOUBLE => Ok(f64::from_le_bytes(self.value.try_into().unwrap()) as f32),
            INT32 | INT64 => Ok(self.int(field)? as f32),
            _ => Err(type_error(field, self, "a number")),
        }
    }

    fn binary(&self, field: &str) -> Result<&'a [u8]> {
        if self.kind != BINARY {
            return Err(type_error(field, self, "binary"));
        }
        Ok(&self.value[5..])
    }

    fn document(&self, field: &str) -> Result<Elements<'a>> {
        if self.kind != DOCUMENT {
            return Err(type_error(field, self, "a document"));
        }
        elements(self.value)
    }

    fn array(&self, field: &str) -> Result<Elements<'a>> {
        if self.kind != ARRAY {
            return Err(type_error(field, self, "an array"));
        }
        elements(self.value)
    }

    /// Whether the member is a non-empty document or array (what Python
    /// counts as true for these values).
    fn has_members(&self) -> bool {
        (self.kind == DOCUMENT || self.kind == ARRAY) && self.value.len() > 5
    }
}

// --- protobuf writing ----------------------------------------------------------

fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn key(buf: &mut Vec<u8>, tag: u32, wire_type: u8) {
    varint(buf, ((tag as u64) << 3) | wire_type as u64);
}

fn bytes_field(buf: &mut Vec<u8>, tag: u32, value: &[u8]) {
    key(buf, tag, LENGTH_DELIMITED);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// A singular string or bytes field of proto3: left out when empty.
fn nonempty(buf: &mut Vec<u8>, tag: u32, value: &[u8]) {
    if !value.is_empty() {
        bytes_field(buf, tag, value);
    }
}

/// A singular int64 or int32 field of proto3: left out when zero.
fn int_field(buf: &mut Vec<u8>, tag: u32, value: i64) {
    if value != 0 {
        key(buf, tag, VARINT);
        varint(buf, value as u64);
    }
}

/// A singular float of proto3, left out when its bits are all zero (so a
/// negative zero is kept, as Python's runtime keeps it).
fn float_field(buf: &mut Vec<u8>, tag: u32, value: f32) {
    if value.to_bits() != 0 {
        key(buf, tag, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A sub-message in field `tag`, its body written by `body` (always
/// present, also when empty).
fn message(buf: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    key(buf, tag, LENGTH_DELIMITED);
    // One byte is kept for the length, which fits it for bodies below 128
    // bytes (most sub-messages); a longer length moves the body up.
    let at = buf.len();
    buf.push(0);
    body(buf)?;
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut prefix = [0u8; 10];
        let mut n = 0;
        let mut value = len as u64;
        while value >= 0x80 {
            prefix[n] = (value as u8) | 0x80;
            value >>= 7;
            n += 1;
        }
        prefix[n] = value as u8;
        n += 1;
        buf.splice(at..at + 1, prefix[..n].iter().copied());
    }
    Ok(())
}

fn packed_floats(buf: &mut Vec<u8>, tag: u32, values: &Element<'_>, field: &str) -> Result<()> {
    let mut count = 0;
    let mut body = Vec::new();
    for item in values.array(field)? {
        body.extend_from_slice(&item?.float(field)?.to_le_bytes());
        count += 1;
    }
    if count > 0 {
        bytes_field(buf, tag, &body);
    }
    Ok(())
}

fn packed_int32s(buf: &mut Vec<u8>, tag: u32, values: &Element<'_>, field: &str) -> Result<()> {
    let mut body = Vec::new();
    for item in values.array(field)? {
        varint(&mut body, item?.int32(field)? as i64 as u64);
    }
    if !body.is_empty() {
        bytes_field(buf, tag, &body);
    }
    Ok(())
}

fn strings(buf: &mut Vec<u8>, tag: u32, values: &Element<'_>, field: &str) -> Result<()> {
    for item in values.array(field)? {
        bytes_field(buf, tag, item?.str(field)?.as_bytes());
    }
    Ok(())
}

/// The members of a stored document named in `names`, by position (a null
/// member as absent). A member of another name is skipped when `unknown` is
/// None, else refused as an unknown field of the part `unknown` names.
fn named_members<'a, const N: usize>(
    members: Elements<'a>,
    names: &[&str; N],
    unknown: Option<&str>,
) -> Result<[Option<Element<'a>>; N]> {
    let mut found: [Option<Element<'a>>; N] = [None; N];
    for element in members {
        let element = element?;
        match names.iter().position(|name| *name == element.key) {
            Some(i) if !element.is_null() => found[i] = Some(element),
            Some(_) => {}
            None => {
                if let Some(part) = unknown {
                    return Err(format!("stored {part} has an unknown field {}", element.key).into());
                }
            }
        }
    }
    Ok(found)
}

// --- the frame -------------------------------------------------------------------

/// The `Frame` (protobuf bytes) of a stored revision document as read in
/// `version_id` (which may have inherited it from the version that wrote it).
pub fn frame(document: &[u8], version_id: &str) -> Result<Vec<u8>> {
    // Top-level fields the frame does not carry (`_id`, `shuffle_key`) are skipped.
    let found = named_members(
        elements(document)?,
        &[
            "frame_id",
            "context_id",
            "timestamp",
            "sources",
            "rois",
            "meta",
            "blob",
            "num_frames",
            "dataset_id",
            "version_id",
            "saved",
            "etag",
        ],
        None,
    )?;
    let [frame_id, context_id, timestamp, sources, rois, meta, blob, num_frames, dataset_id, saved_in_version, saved, etag] =
        found;
    let mut buf = Vec::with_capacity(document.len() + version_id.len() + 16);
    if let Some(e) = frame_id {
        nonempty(&mut buf, 1, e.str("frame_id")?.as_bytes());
    }
    if let Some(e) = context_id {
        nonempty(&mut buf, 2, e.str("context_id")?.as_bytes());
    }
    if let Some(e) = timestamp {
        int_field(&mut buf, 3, e.int("timestamp")?);
    }
    if let Some(e) = sources {
        for item in e.array("sources")? {
            let item = item?;
            message(&mut buf, 4, |b| source(b, &item))?;
        }
    }
    if let Some(e) = rois {
        for item in e.array("rois")? {
            let item = item?;
            message(&mut buf, 5, |b| roi(b, &item))?;
        }
    }
    if let Some(e) = meta.filter(Element::has_members) {
        message(&mut buf, 6, |b| metadata(b, &e, "meta"))?;
    }
    if let Some(e) = blob {
        nonempty(&mut buf, 7, e.binary("blob")?);
    }
    if let Some(e) = num_frames {
        int_field(&mut buf, 8, e.int32("num_frames")? as i64);
    }
    if let Some(e) = dataset_id {
        nonempty(&mut buf, 9, e.str("dataset_id")?.as_bytes());
    }
    nonempty(&mut buf, 10, version_id.as_bytes());
    if let Some(e) = saved_in_version {
        nonempty(&mut buf, 11, e.str("version_id")?.as_bytes());
    }
    if let Some(e) = saved {
        int_field(&mut buf, 12, e.int("saved")?);
    }
    if let Some(e) = etag {
        nonempty(&mut buf, 13, e.str("etag")?.as_bytes());
    }
    Ok(buf)
}

fn source(buf: &mut Vec<u8>, stored: &Element<'_>) -> Result<()> {
    let [id, uri, content_type, width, height, timestamp, meta, preview, masks, inline_content] = named_members(
        stored.document("sources[]")?,
        &[
            "id",
            "uri",
            "content_type",
            "width",
            "height",
            "timestamp",
            "meta",
            "preview",
            "masks",
            "inline_content",
        ],
        Some("source"),
    )?;
    if let Some(e) = id {
        nonempty(buf, 1, e.str("sources[].id")?.as_bytes());
    }
    if let Some(e) = uri {
        nonempty(buf, 2, e.str("sources[].uri")?.as_bytes());
    }
    if let Some(e) = content_type {
        nonempty(buf, 3, e.str("sources[].content_type")?.as_bytes());
    }
    if let Some(e) = width {
        int_field(buf, 4, e.int32("sources[].width")? as i64);
    }
    if let Some(e) = height {
        int_field(buf, 5, e.int32("sources[].height")? as i64);
    }
    if let Some(e) = timestamp {
        int_field(buf, 6, e.int("sources[].timestamp")?);
    }
    if let Some(e) = meta.filter(Element::has_members) {
        message(buf, 7, |b| metadata(b, &e, "sources[].meta"))?;
    }
    if let Some(e) = preview {
        message(buf, 8, |b| location(b, &e, "sources[].preview", false))?;
    }
    if let Some(e) = masks {
        for item in e.array("sources[].masks")? {
            let item = item?;
            message(buf, 9, |b| location(b, &item, "sources[].masks[]", true))?;
        }
    }
    if let Some(e) = inline_content {
        nonempty(buf, 10, e.binary("sources[].inline_content")?);
    }
    Ok(())
}

/// A `Preview` (uri 1, content_type 2, timestamp 3, inline_content 4) or,
/// with `with_id`, a `Mask` (id 1, then the same fields one number later).
fn location(buf: &mut Vec<u8>, stored: &Element<'_>, field: &str, with_id: bool) -> Result<()> {
    let members = stored.document(field)?;
    // A preview has no id: a stored one is an unknown field.
    let [id, uri, content_type, timestamp, inline_content] = if with_id {
        named_members(
            members,
            &["id", "uri", "content_type", "timestamp", "inline_content"],
            Some(field),
        )?
    } else {
        let [uri, content_type, timestamp, inline_content] = named_members(
            members,
            &["uri", "content_type", "timestamp", "inline_content"],
            Some(field),
        )?;
        [None, uri, content_type, timestamp, inline_content]
    };
    let shift = with_id as u32;
    if let Some(e) = id {
        nonempty(buf, 1, e.str(field)?.as_bytes());
    }
    if let Some(e) = uri {
        nonempty(buf, 1 + shift, e.str(field)?.as_bytes());
    }
    if let Some(e) = content_type {
        nonempty(buf, 2 + shift, e.str(field)?.as_bytes());
    }
    if let Some(e) = timestamp {
        int_field(buf, 3 + shift, e.int(field)?);
    }
    if let Some(e) = inline_content {
        nonempty(buf, 4 + shift, e.binary(field)?);
    }
    Ok(())
}

/// The geometry members of a stored ROI, in the order they are looked for
/// (the first one present is the ROI's geometry), with their Roi field numbers.
const GEOMETRIES: [(&str, u32); 6] = [
    ("polygon", 4),
    ("box", 5),
    ("ellipse", 6),
    ("keypoints", 7),
    ("keypoints_3d", 8),
    ("box_3d", 9),
];

fn present(element: Option<Element<'_>>) -> Option<Element<'_>> {
    element.filter(|e| !e.is_null())
}

fn roi(buf: &mut Vec<u8>, stored: &Element<'_>) -> Result<()> {
    let (mut id, mut labels, mut confidence, mut sources, mut meta, mut mask, mut visibility) =
        (None, None, None, None, None, None, None);
    let mut geometry: [Option<Element<'_>>; 6] = [None; 6];
    for element in stored.document("rois[]")? {
        let element = element?;
        match element.key {
            "id" => id = Some(element),
            "labels" => labels = Some(element),
            "confidence" => confidence = Some(element),
            "sources" => sources = Some(element),
            "meta" => meta = Some(element),
            "mask" => mask = Some(element),
            "visibility" => visibility = Some(element),
            name => {
                if let Some(i) = GEOMETRIES.iter().position(|(g, _)| *g == name) {
                    geometry[i] = Some(element);
                }
            }
        }
    }
    if let Some(e) = present(id) {
        nonempty(buf, 1, e.str("rois[].id")?.as_bytes());
    }
    if let Some(e) = present(labels) {
        strings(buf, 2, &e, "rois[].labels")?;
    }
    if let Some(e) = present(confidence) {
        key(buf, 3, FIXED32);
        buf.extend_from_slice(&e.float("rois[].confidence")?.to_le_bytes());
    }
    if let Some((i, e)) = geometry.iter().enumerate().find_map(|(i, e)| e.map(|e| (i, e))) {
        let (name, tag) = GEOMETRIES[i];
        message(buf, tag, |b| geometry_message(b, name, &e, visibility))?;
    }
    if let Some(e) = present(sources) {
        strings(buf, 10, &e, "rois[].sources")?;
    }
    if let Some(e) = present(meta).filter(Element::has_members) {
        message(buf, 11, |b| metadata(b, &e, "rois[].meta"))?;
    }
    if let Some(e) = present(mask) {
        message(buf, 12, |b| {
            let (mut mask_id, mut value) = (None, None);
            for element in e.document("rois[].mask")? {
                let element = element?;
                match element.key {
                    "id" => mask_id = Some(element),
                    "value" => value = Some(element),
                    _ => {}
                }
            }
            let (Some(mask_id), Some(value)) = (mask_id, value) else {
                return Err("stored rois[].mask lacks its id or value".into());
            };
            if !mask_id.is_null() {
                nonempty(b, 1, mask_id.str("rois[].mask.id")?.as_bytes());
            }
            if !value.is_null() {
                packed_int32s(b, 2, &value, "rois[].mask.value")?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn fixed_floats(buf: &mut Vec<u8>, values: &Element<'_>, field: &str, count: usize) -> Result<()> {
    let mut n = 0;
    for item in values.array(field)? {
        n += 1;
        if n > count {
            break;
        }
        float_field(buf, n as u32, item?.float(field)?);
    }
    if n != count {
        return Err(format!("stored {field} has not {count} numbers"));
    }
    Ok(())
}

fn geometry_message(
    buf: &mut Vec<u8>,
    name: &str,
    stored: &Element<'_>,
    visibility: Option<Element<'_>>,
) -> Result<()> {
    match name {
        "polygon" => {
            for part in stored.array("rois[].polygon")? {
                let part = part?;
                message(buf, 1, |b| packed_floats(b, 1, &part, "rois[].polygon[]"))?;
            }
            Ok(())
        }
        "box" => fixed_floats(buf, stored, "rois[].box", 4),
        "ellipse" => fixed_floats(buf, stored, "rois[].ellipse", 5),
        "keypoints" => {
            packed_floats(buf, 1, stored, "rois[].keypoints")?;
            if let Some(v) = visibility.filter(|v| !v.is_null()) {
                packed_int32s(buf, 2, &v, "rois[].visibility")?;
            }
            Ok(())
        }
        "keypoints_3d" => packed_floats(buf, 1, stored, "rois[].keypoints_3d"),
        _ => fixed_floats(buf, stored, "rois[].box_3d", 10),
    }
}

// --- caller metadata ----------------------------------------------------------------

/// A stored metadata document as a `Metadata` body: one map entry per member.
fn metadata(buf: &mut Vec<u8>, stored: &Element<'_>, field: &str) -> Result<()> {
    for element in stored.document(field)? {
        let element = element?;
        message(buf, 1, |entry| {
            bytes_field(entry, 1, element.key.as_bytes());
            message(entry, 2, |value| metadata_value(value, &element, field))
        })?;
    }
    Ok(())
}

/// A `MetadataValue` body: the oneof member the stored value's type stands for.
fn metadata_value(buf: &mut Vec<u8>, stored: &Element<'_>, field: &str) -> Result<()> {
    match stored.kind {
        NULL => {
            key(buf, 1, VARINT);
            buf.push(0);
        }
        BOOLEAN => {
            key(buf, 2, VARINT);
            buf.push((stored.value[0] != 0) as u8);
        }
        INT32 | INT64 => {
            key(buf, 3, VARINT);
            varint(buf, stored.int(field)? as u64);
        }
        DOUBLE => {
            key(buf, 4, FIXED64);
            buf.extend_from_slice(stored.value);
        }
        STRING => bytes_field(buf, 5, stored.str(field)?.as_bytes()),
        ARRAY => message(buf, 6, |list| {
            for item in stored.array(field)? {
                let item = item?;
                message(list, 1, |value| metadata_value(value, &item, field))?;
            }
            Ok(())
        })?,
        DOCUMENT => message(buf, 7, |map| metadata(map, stored, field))?,
        _ => return Err(type_error(field, stored, "a metadata value")),
    }
    Ok(())
}

// --- messages that carry frames --------------------------------------------------------

/// An `IterateFramesResponse` (frames 1, selection_indexes 2, cursor 3,
/// frame_cursors 4, start_cursor 5) around frames already encoded.
pub fn iterate_frames_response(
    frames: &[&[u8]],
    selection_indexes: &[i32],
    cursor: &str,
    frame_cursors: &[String],
    start_cursor: &str,
) -> Vec<u8> {
    let size: usize = frames.iter().map(|f| f.len() + 6).sum::<usize>()
        + frame_cursors.iter().map(|c| c.len() + 3).sum::<usize>()
        + selection_indexes.len() * 5
        + cursor.len()
        + start_cursor.len()
        + 16;
    let mut buf = Vec::with_capacity(size);
    for frame in frames {
        bytes_field(&mut buf, 1, frame);
    }
    if !selection_indexes.is_empty() {
        let mut packed = Vec::with_capacity(selection_indexes.len());
        for index in selection_indexes {
            varint(&mut packed, *index as i64 as u64);
        }
        bytes_field(&mut buf, 2, &packed);
    }
    nonempty(&mut buf, 3, cursor.as_bytes());
    for frame_cursor in frame_cursors {
        bytes_field(&mut buf, 4, frame_cursor.as_bytes());
    }
    nonempty(&mut buf, 5, start_cursor.as_bytes());
    buf
}

/// `frame_id`, `context_id` and `timestamp` of a stored revision document
/// (None where missing or of another type): a frame's place in sequential
/// order, read without decoding the rest of the document.
pub fn revision_keys(document: &[u8]) -> Result<(Option<&str>, Option<&str>, Option<i64>)> {
    let (mut frame_id, mut context_id, mut timestamp) = (None, None, None);
    for element in elements(document)? {
        let element = element?;
        match element.key {
            "frame_id" => frame_id = element.str("frame_id").ok(),
            "context_id" => context_id = element.str("context_id").ok(),
            "timestamp" => timestamp = element.int("timestamp").ok(),
            _ => continue,
        }
        if frame_id.is_some() && context_id.is_some() && timestamp.is_some() {
            break;
        }
    }
    Ok((frame_id, context_id, timestamp))
}
