//! A validated frame as its MongoDB revision document (BSON), in the layout
//! of STORAGE.md: caller metadata is a native sub-document so filters can
//! address `meta.<key>` directly. Also the frame's content hash (etag) and
//! the encoded sizes of its parts.

#![allow(deprecated)] // Roi.mask is deprecated in the contract and still stored.

use prost::encoding::{self, WireType};
use sha2::{Digest, Sha256};

use crate::pb;
use crate::rules::hex;

// BSON element types, of the documents written here and read in decode.rs.
pub(crate) const DOUBLE: u8 = 0x01;
pub(crate) const STRING: u8 = 0x02;
pub(crate) const DOCUMENT: u8 = 0x03;
pub(crate) const ARRAY: u8 = 0x04;
pub(crate) const BINARY: u8 = 0x05;
pub(crate) const BOOLEAN: u8 = 0x08;
pub(crate) const NULL: u8 = 0x0A;
pub(crate) const INT32: u8 = 0x10;
pub(crate) const INT64: u8 = 0x12;

/// A revision document without its version: the fields after `dataset_id`
/// and `version_id`, and the place of the `saved` time (set when it is
/// written, again on a retry).
pub struct Document {
    body: Vec<u8>,
    saved_at: usize,
}

impl Document {
    /// The whole document, written by `version_id` of `dataset_id` at `saved_ms`.
    pub fn write(&self, dataset_id: &str, version_id: &str, saved_ms: i64) -> Vec<u8> {
        let mut w = Writer {
            buf: Vec::with_capacity(self.body.len() + dataset_id.len() + version_id.len() + 40),
        };
        let top = w.begin();
        w.string("dataset_id", dataset_id);
        w.string("version_id", version_id);
        let saved_at = w.buf.len() + self.saved_at;
        w.buf.extend_from_slice(&self.body);
        w.buf[saved_at..saved_at + 8].copy_from_slice(&saved_ms.to_le_bytes());
        w.end(top);
        w.buf
    }
}

/// Encoded sizes of a frame's parts, to name the largest when a frame is too
/// large to store.
pub struct PartSizes {
    pub sources: usize,
    pub rois: usize,
    pub meta: usize,
    pub blob: usize,
}

pub struct Encoded {
    pub document: Document,
    pub etag: String,
    pub sizes: PartSizes,
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn key(&mut self, kind: u8, name: &str) {
        self.buf.push(kind);
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
    }

    fn index_key(&mut self, kind: u8, index: usize) {
        self.buf.push(kind);
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = index;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[at..]);
        self.buf.push(0);
    }

    fn begin(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    fn end(&mut self, at: usize) {
        self.buf.push(0);
        let len = (self.buf.len() - at) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn string_value(&mut self, value: &str) {
        self.buf.extend_from_slice(&((value.len() + 1) as i32).to_le_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
    }

    fn string(&mut self, name: &str, value: &str) {
        self.key(STRING, name);
        self.string_value(value);
    }

    fn int64(&mut self, name: &str, value: i64) {
        self.key(INT64, name);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A Python int as pymongo encodes it: int32 when it fits.
    fn int(&mut self, name: &str, value: i64) {
        if let Ok(small) = i32::try_from(value) {
            self.key(INT32, name);
            self.buf.extend_from_slice(&small.to_le_bytes());
        } else {
            self.int64(name, value);
        }
    }

    fn double(&mut self, name: &str, value: f64) {
        self.key(DOUBLE, name);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn doubles(&mut self, name: &str, values: impl IntoIterator<Item = f32>) {
        self.key(ARRAY, name);
        let at = self.begin();
        for (i, value) in values.into_iter().enumerate() {
            self.index_key(DOUBLE, i);
            self.buf.extend_from_slice(&(value as f64).to_le_bytes());
        }
        self.end(at);
    }

    fn ints(&mut self, name: &str, values: &[i32]) {
        self.key(ARRAY, name);
        let at = self.begin();
        for (i, value) in values.iter().enumerate() {
            self.index_key(INT32, i);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
        self.end(at);
    }

    fn strings(&mut self, name: &str, values: &[String]) {
        self.key(ARRAY, name);
        let at = self.begin();
        for (i, value) in values.iter().enumerate() {
            self.index_key(STRING, i);
            self.string_value(value);
        }
        self.end(at);
    }
}

/// The revision document of a validated frame, its etag and part sizes.
pub fn encode(frame: &pb::Frame) -> Encoded {
    let (etag, sizes) = content_etag(frame);
    let mut w = Writer {
        buf: Vec::with_capacity(2048),
    };
    w.string("frame_id", &frame.id);
    w.string("context_id", &frame.context_id);
    w.int64("timestamp", frame.timestamp);
    w.key(ARRAY, "sources");
    let array = w.begin();
    for (i, source) in frame.sources.iter().enumerate() {
        w.index_key(DOCUMENT, i);
        source_document(&mut w, source);
    }
    w.end(array);
    w.int("num_frames", frame.sources.len() as i64);
    w.key(INT64, "saved");
    let saved_at = w.buf.len();
    w.buf.extend_from_slice(&0i64.to_le_bytes());
    w.string("etag", &etag);
    w.int64("shuffle_key", shuffle_key(&frame.id));
    if !frame.rois.is_empty() {
        w.key(ARRAY, "rois");
        let array = w.begin();
        for (i, roi) in frame.rois.iter().enumerate() {
            w.index_key(DOCUMENT, i);
            roi_document(&mut w, roi);
        }
        w.end(array);
    }
    if let Some(meta) = frame.meta.as_ref().filter(|m| !m.fields.is_empty()) {
        w.key(DOCUMENT, "meta");
        metadata_document(&mut w, meta);
    }
    if !frame.blob.is_empty() {
        w.key(BINARY, "blob");
        w.buf.extend_from_slice(&(frame.blob.len() as i32).to_le_bytes());
        w.buf.push(0);
        w.buf.extend_from_slice(&frame.blob);
    }
    Encoded {
        document: Document { body: w.buf, saved_at },
        etag,
        sizes,
    }
}

/// A stable, uniformly spread non-negative int63 per frame id: random order
/// and sharding are derived from it, so they need no state.
pub fn shuffle_key(frame_id: &str) -> i64 {
    let digest = Sha256::digest(frame_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1) as i64
}

fn source_document(w: &mut Writer, source: &pb::Source) {
    let at = w.begin();
    if !source.id.is_empty() {
        w.string("id", &source.id);
    }
    if !source.uri.is_empty() {
        w.string("uri", &source.uri);
    }
    if !source.content_type.is_empty() {
        w.string("content_type", &source.content_type);
    }
    if source.width != 0 {
        w.int("width", source.width as i64);
    }
    if source.height != 0 {
        w.int("height", source.height as i64);
    }
    if source.timestamp != 0 {
        w.int64("timestamp", source.timestamp);
    }
    if let Some(meta) = source.meta.as_ref().filter(|m| !m.fields.is_empty()) {
        w.key(DOCUMENT, "meta");
        metadata_document(w, meta);
    }
    if let Some(preview) = &source.preview {
        w.key(DOCUMENT, "preview");
        let at = w.begin();
        location(w, &preview.uri, &preview.content_type, preview.timestamp);
        w.end(at);
    }
    if !source.masks.is_empty() {
        w.key(ARRAY, "masks");
        let array = w.begin();
        for (i, mask) in source.masks.iter().enumerate() {
            w.index_key(DOCUMENT, i);
            let at = w.begin();
            if !mask.id.is_empty() {
                w.string("id", &mask.id);
            }
            location(w, &mask.uri, &mask.content_type, mask.timestamp);
            w.end(at);
        }
        w.end(array);
    }
    w.end(at);
}

/// The set `uri`, `content_type` and `timestamp` of a preview or mask.
fn location(w: &mut Writer, uri: &str, content_type: &str, timestamp: i64) {
    if !uri.is_empty() {
        w.string("uri", uri);
    }
    if !content_type.is_empty() {
        w.string("content_type", content_type);
    }
    if timestamp != 0 {
        w.int64("timestamp", timestamp);
    }
}

fn roi_document(w: &mut Writer, roi: &pb::Roi) {
    use pb::roi::Geometry;
    let at = w.begin();
    w.strings("labels", &roi.labels);
    if !roi.id.is_empty() {
        w.string("id", &roi.id);
    }
    if let Some(confidence) = roi.confidence {
        w.double("confidence", confidence as f64);
    }
    match &roi.geometry {
        Some(Geometry::Polygon(polygon)) => {
            w.key(ARRAY, "polygon");
            let array = w.begin();
            for (i, part) in polygon.parts.iter().enumerate() {
                w.doubles(&i.to_string(), part.xy.iter().copied());
            }
            w.end(array);
        }
        Some(Geometry::Box(b)) => w.doubles("box", [b.x, b.y, b.w, b.h]),
        Some(Geometry::Ellipse(e)) => w.doubles("ellipse", [e.cx, e.cy, e.rx, e.ry, e.theta]),
        Some(Geometry::Keypoints(k)) => {
            w.doubles("keypoints", k.xy.iter().copied());
            if !k.visibility.is_empty() {
                w.ints("visibility", &k.visibility);
            }
        }
        Some(Geometry::Keypoints3d(k)) => w.doubles("keypoints_3d", k.xyz.iter().copied()),
        Some(Geometry::Box3d(b)) => w.doubles(
            "box_3d",
            [b.x, b.y, b.z, b.size_x, b.size_y, b.size_z, b.qw, b.qx, b.qy, b.qz],
        ),
        None => {}
    }
    if !roi.sources.is_empty() {
        w.strings("sources", &roi.sources);
    }
    if let Some(meta) = roi.meta.as_ref().filter(|m| !m.fields.is_empty()) {
        w.key(DOCUMENT, "meta");
        metadata_document(w, meta);
    }
    if let Some(mask) = &roi.mask {
        w.key(DOCUMENT, "mask");
        let at = w.begin();
        w.string("id", &mask.id);
        w.ints("value", &mask.value);
        w.end(at);
    }
    w.end(at);
}

fn metadata_document(w: &mut Writer, meta: &pb::Metadata) {
    let at = w.begin();
    for (key, value) in &meta.fields {
        metadata_value(w, Some(key), 0, value);
    }
    w.end(at);
}

/// One member (`key`) or list element (`index`) of caller metadata, typed as
/// the Python value it stands for is stored.
fn metadata_value(w: &mut Writer, key: Option<&str>, index: usize, value: &pb::MetadataValue) {
    use pb::metadata_value::Kind;
    let name = |w: &mut Writer, kind: u8| match key {
        Some(key) => w.key(kind, key),
        None => w.index_key(kind, index),
    };
    match &value.kind {
        None | Some(Kind::NullValue(_)) => name(w, NULL),
        Some(Kind::BoolValue(v)) => {
            name(w, BOOLEAN);
            w.buf.push(*v as u8);
        }
        Some(Kind::IntValue(v)) => match i32::try_from(*v) {
            Ok(small) => {
                name(w, INT32);
                w.buf.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => {
                name(w, INT64);
                w.buf.extend_from_slice(&v.to_le_bytes());
            }
        },
        Some(Kind::DoubleValue(v)) => {
            name(w, DOUBLE);
            w.buf.extend_from_slice(&v.to_le_bytes());
        }
        Some(Kind::StringValue(s)) => {
            name(w, STRING);
            w.string_value(s);
        }
        Some(Kind::ListValue(list)) => {
            name(w, ARRAY);
            let at = w.begin();
            for (i, item) in list.values.iter().enumerate() {
                metadata_value(w, None, i, item);
            }
            w.end(at);
        }
        Some(Kind::MapValue(map)) => {
            name(w, DOCUMENT);
            metadata_document(w, map);
        }
    }
}

/// The hash of everything the caller wrote (equal etags mean equal content):
/// the first 32 hex characters of the SHA-256 of the normalised frame in the
/// deterministic protobuf encoding (fields in number order, map entries in
/// key order, a singular number present whenever its bits are not all zero).
/// Also the encoded sizes of the frame's parts, from the same pass.
fn content_etag(frame: &pb::Frame) -> (String, PartSizes) {
    let mut buf = Vec::with_capacity(2048);
    if !frame.id.is_empty() {
        encoding::string::encode(1, &frame.id, &mut buf);
    }
    if !frame.context_id.is_empty() {
        encoding::string::encode(2, &frame.context_id, &mut buf);
    }
    if frame.timestamp != 0 {
        encoding::int64::encode(3, &frame.timestamp, &mut buf);
    }
    let mut sources = 0;
    let mut part = Vec::with_capacity(512);
    for source in &frame.sources {
        part.clear();
        encode_source(source, &mut part);
        sources += part.len();
        length_delimited(4, &part, &mut buf);
    }
    let mut rois = 0;
    for roi in &frame.rois {
        part.clear();
        encode_roi(roi, &mut part);
        rois += part.len();
        length_delimited(5, &part, &mut buf);
    }
    let mut meta = 0;
    if let Some(m) = &frame.meta {
        part.clear();
        encode_metadata(m, &mut part);
        meta = part.len();
        length_delimited(6, &part, &mut buf);
    }
    if !frame.blob.is_empty() {
        encoding::bytes::encode(7, &frame.blob, &mut buf);
    }
    // The output-only fields (8..13) are never part of the content.
    let mut etag = hex(&Sha256::digest(&buf));
    etag.truncate(32);
    (
        etag,
        PartSizes {
            sources,
            rois,
            meta,
            blob: frame.blob.len(),
        },
    )
}

/// An ROI in the deterministic encoding. Its geometry messages with singular
/// floats are encoded here: prost leaves out a negative zero, the protobuf
/// runtimes of the other languages keep it.
fn encode_roi(roi: &pb::Roi, buf: &mut Vec<u8>) {
    use pb::roi::Geometry;
    if !roi.id.is_empty() {
        encoding::string::encode(1, &roi.id, buf);
    }
    encoding::string::encode_repeated(2, &roi.labels, buf);
    if let Some(confidence) = &roi.confidence {
        encoding::float::encode(3, confidence, buf);
    }
    match &roi.geometry {
        Some(Geometry::Polygon(p)) => encoding::message::encode(4, p, buf),
        Some(Geometry::Box(b)) => floats_message(5, &[b.x, b.y, b.w, b.h], buf),
        Some(Geometry::Ellipse(e)) => floats_message(6, &[e.cx, e.cy, e.rx, e.ry, e.theta], buf),
        Some(Geometry::Keypoints(k)) => encoding::message::encode(7, k, buf),
        Some(Geometry::Keypoints3d(k)) => encoding::message::encode(8, k, buf),
        Some(Geometry::Box3d(b)) => floats_message(
            9,
            &[b.x, b.y, b.z, b.size_x, b.size_y, b.size_z, b.qw, b.qx, b.qy, b.qz],
            buf,
        ),
        None => {}
    }
    encoding::string::encode_repeated(10, &roi.sources, buf);
    if let Some(meta) = &roi.meta {
        let mut body = Vec::new();
        encode_metadata(meta, &mut body);
        length_delimited(11, &body, buf);
    }
    if let Some(mask) = &roi.mask {
        encoding::message::encode(12, mask, buf);
    }
    // Output only: validation clears them; a frame encoded as it is keeps them.
    encoding::int32::encode_packed(13, &roi.label_ids, buf);
}

/// A message of singular floats numbered 1, 2, ... in field `tag`.
fn floats_message(tag: u32, values: &[f32], buf: &mut Vec<u8>) {
    let present = values.iter().filter(|v| v.to_bits() != 0).count();
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint((present * 5) as u64, buf);
    for (i, value) in values.iter().enumerate() {
        if value.to_bits() != 0 {
            encoding::float::encode(i as u32 + 1, value, buf);
        }
    }
}

fn length_delimited(tag: u32, body: &[u8], buf: &mut Vec<u8>) {
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint(body.len() as u64, buf);
    buf.extend_from_slice(body);
}

/// A source in the deterministic encoding (its metadata in the map order below).
fn encode_source(source: &pb::Source, buf: &mut Vec<u8>) {
    if !source.id.is_empty() {
        encoding::string::encode(1, &source.id, buf);
    }
    if !source.uri.is_empty() {
        encoding::string::encode(2, &source.uri, buf);
    }
    if !source.content_type.is_empty() {
        encoding::string::encode(3, &source.content_type, buf);
    }
    if source.width != 0 {
        encoding::int32::encode(4, &source.width, buf);
    }
    if source.height != 0 {
        encoding::int32::encode(5, &source.height, buf);
    }
    if source.timestamp != 0 {
        encoding::int64::encode(6, &source.timestamp, buf);
    }
    if let Some(meta) = &source.meta {
        let mut body = Vec::new();
        encode_metadata(meta, &mut body);
        length_delimited(7, &body, buf);
    }
    if let Some(preview) = &source.preview {
        encoding::message::encode(8, preview, buf);
    }
    for mask in &source.masks {
        encoding::message::encode(9, mask, buf);
    }
    if !source.inline_content.is_empty() {
        encoding::bytes::encode(10, &source.inline_content, buf);
    }
}

/// The order of map entries in the deterministic encoding of Python's
/// protobuf runtime (upb), which the stored etags follow: by the bytes of
/// their keys, but a key before those it is a prefix of (`nested`, `none`,
/// `n`).
fn map_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let common = a.len().min(b.len());
    a[..common].cmp(&b[..common]).then_with(|| b.len().cmp(&a.len()))
}

/// Metadata in the deterministic encoding: every entry with its key and
/// value, in `map_key_order`.
fn encode_metadata(meta: &pb::Metadata, buf: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &pb::MetadataValue)> = meta.fields.iter().collect();
    entries.sort_by(|a, b| map_key_order(a.0, b.0));
    let mut value = Vec::new();
    for (key, item) in entries {
        value.clear();
        encode_metadata_value(item, &mut value);
        let entry = 1
            + encoding::encoded_len_varint(key.len() as u64)
            + key.len()
            + 1
            + encoding::encoded_len_varint(value.len() as u64)
            + value.len();
        encoding::encode_key(1, WireType::LengthDelimited, buf);
        encoding::encode_varint(entry as u64, buf);
        encoding::string::encode(1, key, buf);
        length_delimited(2, &value, buf);
    }
}

fn encode_metadata_value(value: &pb::MetadataValue, buf: &mut Vec<u8>) {
    use pb::metadata_value::Kind;
    match &value.kind {
        None => {}
        Some(Kind::NullValue(n)) => encoding::int32::encode(1, n, buf),
        Some(Kind::BoolValue(v)) => encoding::bool::encode(2, v, buf),
        Some(Kind::IntValue(v)) => encoding::int64::encode(3, v, buf),
        Some(Kind::DoubleValue(v)) => encoding::double::encode(4, v, buf),
        Some(Kind::StringValue(v)) => encoding::string::encode(5, v, buf),
        Some(Kind::ListValue(list)) => {
            let mut body = Vec::new();
            let mut item_body = Vec::new();
            for item in &list.values {
                item_body.clear();
                encode_metadata_value(item, &mut item_body);
                length_delimited(1, &item_body, &mut body);
            }
            length_delimited(6, &body, buf);
        }
        Some(Kind::MapValue(map)) => {
            let mut body = Vec::new();
            encode_metadata(map, &mut body);
            length_delimited(7, &body, buf);
        }
    }
}
