//! The validation and normalisation rules of frames written by callers.
//!
//! Every problem of a frame is reported with its full field path under the
//! prefix the caller chooses (`frames[17]` in an upload stream, `frame` in
//! UpdateFrame), so one round trip shows all mistakes of a frame. Field paths
//! are built only for a violation: frames are checked in bulk and almost all
//! of them are valid.
//!
//! Normalisation happens on the decoded frame, on the same pass:
//! - output-only fields are cleared (they are never stored from a caller);
//! - an empty source id becomes `default`;
//! - inline bytes are replaced by the `blob:` URI of their content, so the
//!   frame id and etag do not depend on when the bytes are stored; the bytes
//!   travel beside the frame until they are stored;
//! - an empty frame id is derived from the first source URI and an empty
//!   context id defaults to that URI.

#![allow(deprecated)] // Roi.mask is deprecated in the contract and still checked.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::pb;
use crate::text::Text;

pub const MAX_FRAME_ID_BYTES: usize = 512;
pub const MAX_CONTEXT_ID_BYTES: usize = 4096;
pub const MAX_URI_BYTES: usize = 4096;
pub const MAX_SOURCE_ID_BYTES: usize = 256;
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;
pub const MAX_LABEL_BYTES: usize = 256;
pub const MAX_ROI_ID_BYTES: usize = 512;
pub const MAX_FRAME_BLOB_BYTES: usize = 64 * 1024;
pub const MAX_SOURCES: usize = 256;
pub const MAX_MASKS_PER_SOURCE: usize = 64;
pub const MAX_LABELS_PER_ROI: usize = 256;
pub const MAX_META_KEY_BYTES: usize = 256;
/// Nesting depth of a metadata value: a top-level member is depth 1, every
/// object or list around it adds one. Each object level costs three protobuf
/// message levels on the wire, so 20 stays well inside the 100-level decode
/// limit of the protobuf runtimes, whatever message carries the metadata. A
/// key path (`key_path_segments`) has at most this many segments: a longer one
/// addresses nothing that can be stored.
pub const MAX_META_DEPTH: usize = 20;
pub const DEFAULT_SOURCE_ID: &str = "default";
pub const DERIVED_ID_HEX_CHARS: usize = 32;
pub const BLOB_URI_PREFIX: &str = "blob:sha256/";
/// Sizes travel as protobuf int64.
pub const MAX_BLOB_SIZE: i64 = i64::MAX;

/// Limits that come from the service's settings rather than from the contract.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_inline_bytes: usize,
    /// The largest blob a `blob:` URI may name (the blob service's limit).
    pub max_blob_bytes: i64,
    /// The metadata of one frame, its sources' and ROIs' included, encoded.
    pub max_meta_bytes: usize,
}

/// A blob named by its content: lowercase hex SHA-256 and size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobDigest {
    pub hash: String,
    pub size: i64,
}

impl BlobDigest {
    pub fn of(data: &[u8]) -> Self {
        BlobDigest {
            hash: hex(&Sha256::digest(data)),
            size: data.len() as i64,
        }
    }

    pub fn uri(&self) -> String {
        format!("{BLOB_URI_PREFIX}{}/{}", self.hash, self.size)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 15) as usize] as char);
    }
    out
}

/// The id of a frame uploaded without one: the first 32 hex characters of the
/// SHA-256 of its first source URI.
pub fn derive_frame_id(uri: &str) -> String {
    let mut id = hex(&Sha256::digest(uri.as_bytes()));
    id.truncate(DERIVED_ID_HEX_CHARS);
    id
}

pub struct Violation {
    pub field: String,
    pub description: String,
}

/// A valid, normalised frame and what must happen in the blob service first.
pub struct Prepared {
    pub frame: pb::Frame,
    /// `blob:` references the caller gave (they must already exist), without
    /// those the frame also carries inline.
    pub referenced: Vec<BlobDigest>,
    /// Inline bytes to store, by the digest their URI names, in order of
    /// first appearance.
    pub inline: Vec<(BlobDigest, Vec<u8>)>,
}

/// The outcome of checking one frame.
pub struct Checked {
    /// Given or derived; empty when neither is possible.
    pub frame_id: String,
    pub prepared: Option<Prepared>,
    pub violations: Vec<Violation>,
}

struct Errors<'t, T: Text> {
    violations: Vec<Violation>,
    text: &'t T,
}

impl<T: Text> Errors<'_, T> {
    fn add(&mut self, field: String, description: impl Into<String>) {
        self.violations.push(Violation {
            field,
            description: description.into(),
        });
    }
}

/// Why `value` is not an acceptable identifier-like string, or None.
pub fn text_problem(value: &str, max_bytes: usize, required: bool) -> Option<String> {
    if value.is_empty() {
        return if required {
            Some("must not be empty".into())
        } else {
            None
        };
    }
    if value.len() > max_bytes {
        return Some(format!("must be at most {max_bytes} bytes"));
    }
    if value.contains('\0') {
        return Some("must not contain NUL".into());
    }
    None
}

fn check_text<T: Text>(value: &str, max_bytes: usize, path: &str, suffix: &str, errors: &mut Errors<T>) {
    if let Some(problem) = text_problem(value, max_bytes, true) {
        errors.add(format!("{path}{suffix}"), problem);
    }
}

/// Validates and normalises `frame`; see the module documentation.
pub fn check_frame<T: Text>(mut frame: pb::Frame, prefix: &str, limits: &Limits, text: &T) -> Checked {
    let mut errors = Errors {
        violations: Vec::new(),
        text,
    };
    clear_output_only(&mut frame);
    let mut uris = UriCollector {
        referenced: Vec::new(),
        inline: Vec::new(),
        limits,
    };

    if !frame.id.is_empty() {
        check_text(&frame.id, MAX_FRAME_ID_BYTES, prefix, ".id", &mut errors);
    }
    if !frame.context_id.is_empty() {
        check_text(
            &frame.context_id,
            MAX_CONTEXT_ID_BYTES,
            prefix,
            ".context_id",
            &mut errors,
        );
    }
    if frame.timestamp < 0 {
        errors.add(format!("{prefix}.timestamp"), "must be >= 0");
    }
    let source_ids = check_sources(&mut frame.sources, prefix, &mut errors, &mut uris);
    for (i, roi) in frame.rois.iter_mut().enumerate() {
        check_roi(roi, prefix, i, &source_ids, &mut errors);
    }
    if let Some(meta) = &frame.meta {
        validate_metadata(meta, &format!("{prefix}.meta"), &mut errors);
    }
    check_meta_size(&frame, prefix, limits.max_meta_bytes, &mut errors);
    if frame.blob.len() > MAX_FRAME_BLOB_BYTES {
        errors.add(
            format!("{prefix}.blob"),
            format!("must be at most {MAX_FRAME_BLOB_BYTES} bytes"),
        );
    }

    let first_uri = frame.sources.first().map(|s| s.uri.clone()).unwrap_or_default();
    if !errors.violations.is_empty() {
        let uri_at = format!("{prefix}.sources[0].uri");
        let inline_at = format!("{prefix}.sources[0].inline_content");
        let first_uri_ok = !first_uri.is_empty()
            && !errors
                .violations
                .iter()
                .any(|v| v.field.starts_with(&uri_at) || v.field.starts_with(&inline_at));
        let mut frame_id = std::mem::take(&mut frame.id);
        if frame_id.is_empty() && first_uri_ok {
            frame_id = derive_frame_id(&first_uri);
        }
        let id_at = format!("{prefix}.id");
        let id_ok = !errors.violations.iter().any(|v| v.field == id_at);
        return Checked {
            frame_id: if id_ok { frame_id } else { String::new() },
            prepared: None,
            violations: errors.violations,
        };
    }
    if frame.id.is_empty() {
        // Without violations the first source has a URI (given or computed).
        frame.id = derive_frame_id(&first_uri);
    }
    if frame.context_id.is_empty() {
        // URIs are never longer than context ids may be.
        frame.context_id = first_uri;
    }
    let UriCollector { referenced, inline, .. } = uris;
    let mut seen: HashSet<&BlobDigest> = inline.iter().map(|(digest, _)| digest).collect();
    let mut unique = Vec::with_capacity(referenced.len());
    for digest in &referenced {
        if seen.insert(digest) {
            unique.push(digest.clone());
        }
    }
    Checked {
        frame_id: frame.id.clone(),
        prepared: Some(Prepared {
            frame,
            referenced: unique,
            inline,
        }),
        violations: Vec::new(),
    }
}

fn clear_output_only(frame: &mut pb::Frame) {
    frame.num_frames = 0;
    frame.dataset_id.clear();
    frame.version_id.clear();
    frame.saved_in_version.clear();
    frame.saved = 0;
    frame.etag.clear();
}

/// The encoded size of metadata as the protobuf runtimes count it: every map
/// entry with its key and value, even empty ones.
pub fn metadata_size(meta: &pb::Metadata) -> usize {
    meta.fields
        .iter()
        .map(|(key, value)| {
            let value_len = value_size(value);
            let entry = 1 + varint_len(key.len()) + key.len() + 1 + varint_len(value_len) + value_len;
            1 + varint_len(entry) + entry
        })
        .sum()
}

fn value_size(value: &pb::MetadataValue) -> usize {
    use pb::metadata_value::Kind;
    match &value.kind {
        None => 0,
        Some(Kind::NullValue(n)) => 1 + varint_len(*n as i64 as u64 as usize),
        Some(Kind::BoolValue(_)) => 2,
        Some(Kind::IntValue(n)) => 1 + prost::encoding::encoded_len_varint(*n as u64),
        Some(Kind::DoubleValue(_)) => 9,
        Some(Kind::StringValue(s)) => 1 + varint_len(s.len()) + s.len(),
        Some(Kind::ListValue(list)) => {
            let body: usize = list
                .values
                .iter()
                .map(|v| {
                    let len = value_size(v);
                    1 + varint_len(len) + len
                })
                .sum();
            1 + varint_len(body) + body
        }
        Some(Kind::MapValue(map)) => {
            let body = metadata_size(map);
            1 + varint_len(body) + body
        }
    }
}

fn varint_len(value: usize) -> usize {
    prost::encoding::encoded_len_varint(value as u64)
}

/// Bounds the metadata a frame carries in all, so that a frame stays far
/// below the 4 MiB message limit clients have by default; the violation names
/// the largest metadata field.
fn check_meta_size<T: Text>(frame: &pb::Frame, prefix: &str, max_bytes: usize, errors: &mut Errors<T>) {
    // (path, size) of each metadata field; the path is built only when needed.
    let mut parts: Vec<(u8, usize, usize)> = Vec::new();
    if let Some(meta) = &frame.meta {
        parts.push((0, 0, metadata_size(meta)));
    }
    for (i, source) in frame.sources.iter().enumerate() {
        if let Some(meta) = &source.meta {
            parts.push((1, i, metadata_size(meta)));
        }
    }
    for (i, roi) in frame.rois.iter().enumerate() {
        if let Some(meta) = &roi.meta {
            parts.push((2, i, metadata_size(meta)));
        }
    }
    let total: usize = parts.iter().map(|p| p.2).sum();
    if total > max_bytes {
        // The first of equally large parts, in the order above.
        let mut largest = parts[0];
        for part in &parts[1..] {
            if part.2 > largest.2 {
                largest = *part;
            }
        }
        let field = match largest {
            (0, _, _) => format!("{prefix}.meta"),
            (1, i, _) => format!("{prefix}.sources[{i}].meta"),
            (_, i, _) => format!("{prefix}.rois[{i}].meta"),
        };
        errors.add(
            field,
            format!(
                "the frame's metadata (its meta and that of its sources and ROIs) must be at \
                                   most {max_bytes} bytes encoded in all; it has {total}"
            ),
        );
    }
}

struct UriCollector<'l> {
    referenced: Vec<BlobDigest>,
    inline: Vec<(BlobDigest, Vec<u8>)>,
    limits: &'l Limits,
}

impl UriCollector<'_> {
    /// Checks the location of a source, preview or mask (`uri` and
    /// `inline_content`), turning inline bytes into their `blob:` URI.
    fn check<T: Text>(
        &mut self,
        uri: &mut String,
        inline: &mut Vec<u8>,
        path: &dyn Fn() -> String,
        errors: &mut Errors<T>,
    ) {
        if !inline.is_empty() {
            if !uri.is_empty() {
                errors.add(format!("{}.uri", path()), "set either uri or inline_content, not both");
                return;
            }
            if inline.len() > self.limits.max_inline_bytes {
                errors.add(
                    format!("{}.inline_content", path()),
                    format!("must be at most {} bytes", self.limits.max_inline_bytes),
                );
                return;
            }
            let data = std::mem::take(inline);
            let digest = BlobDigest::of(&data);
            *uri = digest.uri();
            if !self.inline.iter().any(|(known, _)| *known == digest) {
                self.inline.push((digest, data));
            }
            return;
        }
        match checked_uri(uri, self.limits.max_blob_bytes, errors.text) {
            Err(problem) => errors.add(format!("{}.uri", path()), problem),
            Ok(Some(digest)) => self.referenced.push(digest),
            Ok(None) => {}
        }
    }
}

/// Why `uri` is not an acceptable location of raw data, or the blob it names
/// when it is a `blob:` URI.
pub fn checked_uri<T: Text>(uri: &str, max_blob_bytes: i64, text: &T) -> Result<Option<BlobDigest>, String> {
    if uri.is_empty() {
        return Err("required (a blob: URI or an s3, https, http or file URI), unless inline_content is set".into());
    }
    if uri.len() > MAX_URI_BYTES {
        return Err(format!("must be at most {MAX_URI_BYTES} bytes"));
    }
    if uri.chars().any(|c| c == '\0' || text.is_space(c)) {
        return Err("must not contain NUL or whitespace".into());
    }
    if uri.starts_with("blob:") {
        return parse_blob_uri(uri, max_blob_bytes).map(Some);
    }
    let (scheme, rest) = uri.split_once(':').unwrap_or((uri, ""));
    // Lowercase letters outside ASCII never make one of these schemes.
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "s3" | "https" | "http" | "file") {
        return Err("scheme must be blob, s3, https, http or file".into());
    }
    let Some(after) = rest.strip_prefix("//") else {
        return Err(format!("must have the form {scheme}://..."));
    };
    let (authority, path) = after.split_once('/').unwrap_or((after, ""));
    if scheme != "file" && authority.is_empty() {
        return Err(format!(
            "{scheme} URIs need a host or bucket ({scheme}://<host>/<path>)"
        ));
    }
    if scheme == "file" && path.is_empty() {
        return Err("file URIs need a path (file:///<path>)".into());
    }
    Ok(None)
}

/// Parses `blob:sha256/{hash}/{size}` in its one spelling (size in ASCII
/// decimal without leading zeros, at most `max_size`).
pub fn parse_blob_uri(uri: &str, max_size: i64) -> Result<BlobDigest, String> {
    let malformed = || format!("blob URI must be {BLOB_URI_PREFIX}<sha256 hex>/<size in decimal, no leading zeros>");
    let rest = uri.strip_prefix(BLOB_URI_PREFIX).ok_or_else(malformed)?;
    let mut parts = rest.split('/');
    let (Some(hash), Some(size), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let hash_ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let size_ok =
        size == "0" || (!size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && !size.starts_with('0'));
    if !hash_ok || !size_ok {
        return Err(malformed());
    }
    let limit = max_size.min(MAX_BLOB_SIZE);
    // Compared as text first, so a size of any length is never parsed.
    let too_large = || format!("blob size must be at most {limit} bytes");
    if size.len() > limit.to_string().len() {
        return Err(too_large());
    }
    let value: i128 = size.parse().map_err(|_| too_large())?;
    if value > limit as i128 {
        return Err(too_large());
    }
    Ok(BlobDigest {
        hash: hash.to_owned(),
        size: value as i64,
    })
}

/// Why a non-empty `value` is not an acceptable MIME type, or None.
pub fn content_type_problem<T: Text>(value: &str, text: &T) -> Option<String> {
    if value.len() > MAX_CONTENT_TYPE_BYTES {
        return Some(format!("must be at most {MAX_CONTENT_TYPE_BYTES} bytes"));
    }
    if !is_mime_type(value, text) {
        return Some("must be a MIME type such as image/jpeg".into());
    }
    None
}

/// `[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;.*)?` as a whole, with `\w` and `\s` of
/// Unicode text (`Text`), and `.` any character but a line feed.
fn is_mime_type<T: Text>(value: &str, text: &T) -> bool {
    let token = |c: char| text.is_word(c) || matches!(c, '.' | '+' | '-');
    let mut chars = value.chars().peekable();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    // The type: the first character's token class includes every character
    // allowed after it, and stops at '/'.
    loop {
        match chars.next() {
            Some('/') => break,
            Some(c) if token(c) => {}
            _ => return false,
        }
    }
    let mut subtype = 0;
    while let Some(&c) = chars.peek() {
        if token(c) {
            subtype += 1;
            chars.next();
        } else {
            break;
        }
    }
    if subtype == 0 {
        return false;
    }
    // Optional parameters: whitespace, ';', then anything but a line feed.
    let rest: Vec<char> = chars.collect();
    if rest.is_empty() {
        return true;
    }
    let mut i = 0;
    while i < rest.len() && text.is_space(rest[i]) {
        i += 1;
    }
    if i >= rest.len() || rest[i] != ';' {
        return false;
    }
    rest[i + 1..].iter().all(|&c| c != '\n')
}

fn check_content_type<T: Text>(value: &str, path: &dyn Fn() -> String, suffix: &str, errors: &mut Errors<T>) {
    if value.is_empty() {
        return;
    }
    if let Some(problem) = content_type_problem(value, errors.text) {
        errors.add(format!("{}{suffix}", path()), problem);
    }
}

/// Adds a malformed id's problem at `path.id`; true when `value` was already
/// seen (the caller words that violation). Records `value` either way.
fn id_problem<T: Text>(
    value: &str,
    seen: &mut HashSet<String>,
    path: &dyn Fn() -> String,
    required: bool,
    errors: &mut Errors<T>,
) -> bool {
    let mut duplicate = false;
    if let Some(problem) = text_problem(value, MAX_SOURCE_ID_BYTES, required) {
        errors.add(format!("{}.id", path()), problem);
    } else if seen.contains(value) {
        duplicate = true;
    }
    if !seen.contains(value) {
        seen.insert(value.to_owned());
    }
    duplicate
}

fn check_sources<T: Text>(
    sources: &mut [pb::Source],
    prefix: &str,
    errors: &mut Errors<T>,
    uris: &mut UriCollector,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    if sources.is_empty() {
        errors.add(format!("{prefix}.sources"), "at least one source is required");
        return seen;
    }
    if sources.len() > MAX_SOURCES {
        errors.add(format!("{prefix}.sources"), format!("at most {MAX_SOURCES} sources"));
        return seen;
    }
    for (i, source) in sources.iter_mut().enumerate() {
        let at = || format!("{prefix}.sources[{i}]");
        if source.id.is_empty() {
            source.id = DEFAULT_SOURCE_ID.to_owned();
        }
        if id_problem(&source.id, &mut seen, &at, true, errors) {
            let shown = errors.text.repr(&source.id);
            errors.add(
                format!("{}.id", at()),
                format!("duplicate source id {shown} (an empty id means '{DEFAULT_SOURCE_ID}')"),
            );
        }
        uris.check(&mut source.uri, &mut source.inline_content, &at, errors);
        check_content_type(&source.content_type, &at, ".content_type", errors);
        if source.width < 0 {
            errors.add(format!("{}.width", at()), "must be >= 0");
        }
        if source.height < 0 {
            errors.add(format!("{}.height", at()), "must be >= 0");
        }
        if source.timestamp < 0 {
            errors.add(format!("{}.timestamp", at()), "must be >= 0");
        }
        if let Some(meta) = &source.meta {
            validate_metadata(meta, &format!("{}.meta", at()), errors);
        }
        if let Some(preview) = &mut source.preview {
            let preview_at = || format!("{}.preview", at());
            uris.check(&mut preview.uri, &mut preview.inline_content, &preview_at, errors);
            check_content_type(&preview.content_type, &at, ".preview.content_type", errors);
            if preview.timestamp < 0 {
                errors.add(format!("{}.preview.timestamp", at()), "must be >= 0");
            }
        }
        if !source.masks.is_empty() {
            check_masks(&mut source.masks, &|| format!("{}.masks", at()), errors, uris);
        }
    }
    seen
}

fn check_masks<T: Text>(
    masks: &mut [pb::Mask],
    path: &dyn Fn() -> String,
    errors: &mut Errors<T>,
    uris: &mut UriCollector,
) {
    if masks.len() > MAX_MASKS_PER_SOURCE {
        errors.add(path(), format!("at most {MAX_MASKS_PER_SOURCE} masks per source"));
        return;
    }
    let mut seen = HashSet::new();
    for (i, mask) in masks.iter_mut().enumerate() {
        let at = || format!("{}[{i}]", path());
        if id_problem(&mask.id, &mut seen, &at, false, errors) {
            let shown = errors.text.repr(&mask.id);
            errors.add(
                format!("{}.id", at()),
                format!("duplicate mask id {shown} within the source"),
            );
        }
        uris.check(&mut mask.uri, &mut mask.inline_content, &at, errors);
        check_content_type(&mask.content_type, &at, ".content_type", errors);
        if mask.timestamp < 0 {
            errors.add(format!("{}.timestamp", at()), "must be >= 0");
        }
    }
}

fn check_roi<T: Text>(
    roi: &mut pb::Roi,
    prefix: &str,
    index: usize,
    source_ids: &HashSet<String>,
    errors: &mut Errors<T>,
) {
    let path = || format!("{prefix}.rois[{index}]");
    // Output only: label ids come from a view's label enumeration.
    roi.label_ids.clear();
    if !roi.id.is_empty() {
        if let Some(problem) = text_problem(&roi.id, MAX_ROI_ID_BYTES, true) {
            errors.add(format!("{}.id", path()), problem);
        }
    }
    if roi.labels.len() > MAX_LABELS_PER_ROI {
        errors.add(
            format!("{}.labels", path()),
            format!("at most {MAX_LABELS_PER_ROI} labels per ROI"),
        );
    } else {
        for (i, label) in roi.labels.iter().enumerate() {
            if let Some(problem) = text_problem(label, MAX_LABEL_BYTES, true) {
                errors.add(format!("{}.labels[{i}]", path()), problem);
            }
        }
    }
    if let Some(confidence) = roi.confidence {
        if !(confidence.is_finite() && (0.0..=1.0).contains(&confidence)) {
            errors.add(format!("{}.confidence", path()), "must be a finite number in [0, 1]");
        }
    }
    if let Some(geometry) = &roi.geometry {
        check_geometry(geometry, &path, errors);
    }
    for (i, source_id) in roi.sources.iter().enumerate() {
        if !source_ids.contains(source_id) {
            let shown = errors.text.repr(source_id);
            errors.add(
                format!("{}.sources[{i}]", path()),
                format!("names no source of the frame ({shown})"),
            );
        }
    }
    if let Some(meta) = &roi.meta {
        validate_metadata(meta, &format!("{}.meta", path()), errors);
    }
    if let Some(mask) = &roi.mask {
        if !mask.id.is_empty() {
            if let Some(problem) = text_problem(&mask.id, MAX_SOURCE_ID_BYTES, true) {
                errors.add(format!("{}.mask.id", path()), problem);
            }
        }
        if mask.value.len() != 3 || mask.value.iter().any(|v| !(0..=255).contains(v)) {
            errors.add(format!("{}.mask.value", path()), "must be three integers in 0..255");
        }
    }
}

fn check_geometry<T: Text>(geometry: &pb::roi::Geometry, path: &dyn Fn() -> String, errors: &mut Errors<T>) {
    use pb::roi::Geometry;
    let all_finite = |values: &[f32]| values.iter().all(|v| v.is_finite());
    match geometry {
        Geometry::Polygon(polygon) => {
            if polygon.parts.is_empty() {
                errors.add(format!("{}.polygon.parts", path()), "a polygon needs at least one part");
            }
            for (i, part) in polygon.parts.iter().enumerate() {
                let count = part.xy.len();
                if count < 6 || count % 2 != 0 {
                    errors.add(
                        format!("{}.polygon.parts[{i}].xy", path()),
                        "needs an even count of at least 6 numbers (x1, y1, x2, y2, ...)",
                    );
                } else if !all_finite(&part.xy) {
                    errors.add(format!("{}.polygon.parts[{i}].xy", path()), "numbers must be finite");
                }
            }
        }
        Geometry::Box(b) => {
            let at = format!("{}.box", path());
            check_numbers(
                &at,
                &[("x", b.x), ("y", b.y), ("w", b.w), ("h", b.h)],
                &["w", "h"],
                errors,
            );
        }
        Geometry::Ellipse(e) => {
            let at = format!("{}.ellipse", path());
            check_numbers(
                &at,
                &[
                    ("cx", e.cx),
                    ("cy", e.cy),
                    ("rx", e.rx),
                    ("ry", e.ry),
                    ("theta", e.theta),
                ],
                &["rx", "ry"],
                errors,
            );
        }
        Geometry::Keypoints(k) => {
            let at = format!("{}.keypoints", path());
            if k.xy.is_empty() || k.xy.len() % 2 != 0 {
                errors.add(
                    format!("{at}.xy"),
                    "needs an even, non-zero count of numbers (x1, y1, x2, y2, ...)",
                );
            } else if !all_finite(&k.xy) {
                errors.add(format!("{at}.xy"), "numbers must be finite");
            } else if !k.visibility.is_empty() && k.visibility.len() != k.xy.len() / 2 {
                errors.add(
                    format!("{at}.visibility"),
                    format!("must be empty or have one entry per point ({})", k.xy.len() / 2),
                );
            }
            if k.visibility.iter().any(|v| !(0..=2).contains(v)) {
                errors.add(
                    format!("{at}.visibility"),
                    "entries must be 0 (absent), 1 (occluded) or 2 (visible)",
                );
            }
        }
        Geometry::Keypoints3d(k) => {
            let at = format!("{}.keypoints_3d", path());
            if k.xyz.is_empty() || k.xyz.len() % 3 != 0 {
                errors.add(
                    format!("{at}.xyz"),
                    "needs a non-zero count of numbers divisible by 3 (x1, y1, z1, ...)",
                );
            } else if !all_finite(&k.xyz) {
                errors.add(format!("{at}.xyz"), "numbers must be finite");
            }
        }
        Geometry::Box3d(b) => {
            let at = format!("{}.box_3d", path());
            check_numbers(
                &at,
                &[
                    ("x", b.x),
                    ("y", b.y),
                    ("z", b.z),
                    ("size_x", b.size_x),
                    ("size_y", b.size_y),
                    ("size_z", b.size_z),
                    ("qw", b.qw),
                    ("qx", b.qx),
                    ("qy", b.qy),
                    ("qz", b.qz),
                ],
                &["size_x", "size_y", "size_z"],
                errors,
            );
        }
    }
}

/// Every number must be finite; those named in `non_negative` also >= 0.
fn check_numbers<T: Text>(path: &str, numbers: &[(&str, f32)], non_negative: &[&str], errors: &mut Errors<T>) {
    for (name, value) in numbers {
        if !value.is_finite() {
            errors.add(format!("{path}.{name}"), "must be finite");
        }
    }
    for (name, value) in numbers {
        if non_negative.contains(name) && value.is_finite() && *value < 0.0 {
            errors.add(format!("{path}.{name}"), "must be >= 0");
        }
    }
}

/// Why `key` may not be stored (it could act as an operator or a path in
/// MongoDB), or None.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        Some("keys must not be empty".into())
    } else if key.len() > MAX_META_KEY_BYTES {
        Some(format!("keys must be at most {MAX_META_KEY_BYTES} bytes"))
    } else if key.contains('$') {
        Some("keys must not contain '$'".into())
    } else if key.contains('.') {
        Some("keys must not contain '.'".into())
    } else if key.contains('\0') {
        Some("keys must not contain NUL".into())
    } else {
        None
    }
}

/// The segments of a dotted key path that addresses a metadata value
/// (`weather.rain`: `rain` inside `weather`), or why it addresses none: every
/// segment is a key that may be stored (`key_problem`), and there are at most
/// `MAX_META_DEPTH` of them, as deep as metadata nests. Every key path a
/// caller writes (view rules, orders and queries, statistics keys, update
/// masks) is checked here.
pub fn key_path_segments<'p, T: Text>(path: &'p str, text: &T) -> Result<Vec<&'p str>, String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() > MAX_META_DEPTH {
        return Err(format!("at most {MAX_META_DEPTH} segments"));
    }
    for segment in &segments {
        if let Some(problem) = key_problem(segment) {
            return Err(format!("segment {}: {problem}", text.repr(segment)));
        }
    }
    Ok(segments)
}

fn validate_metadata<T: Text>(meta: &pb::Metadata, field: &str, errors: &mut Errors<T>) {
    validate_members(meta, field, errors, 1);
}

/// The violations of caller metadata kept outside frames (a dataset's, a
/// version's, a view rule's value) at `field`: the rules of frame metadata.
pub fn metadata_violations<T: Text>(meta: &pb::Metadata, field: &str, text: &T) -> Vec<Violation> {
    let mut errors = Errors {
        violations: Vec::new(),
        text,
    };
    validate_metadata(meta, field, &mut errors);
    errors.violations
}

fn validate_members<T: Text>(meta: &pb::Metadata, field: &str, errors: &mut Errors<T>, depth: usize) {
    for (key, value) in &meta.fields {
        if let Some(problem) = key_problem(key) {
            errors.add(
                if key.is_empty() {
                    field.to_owned()
                } else {
                    format!("{field}.{key}")
                },
                problem,
            );
            continue;
        }
        validate_value(value, &format!("{field}.{key}"), errors, depth);
    }
}

fn validate_value<T: Text>(value: &pb::MetadataValue, field: &str, errors: &mut Errors<T>, depth: usize) {
    use pb::metadata_value::Kind;
    if depth > MAX_META_DEPTH {
        errors.add(
            field.to_owned(),
            format!("nested deeper than {MAX_META_DEPTH} levels (objects and lists count)"),
        );
        return;
    }
    match &value.kind {
        None => errors.add(field.to_owned(), "value has no kind set"),
        Some(Kind::DoubleValue(v)) if !v.is_finite() => errors.add(field.to_owned(), "numbers must be finite"),
        Some(Kind::MapValue(map)) => validate_members(map, field, errors, depth + 1),
        Some(Kind::ListValue(list)) => {
            for (i, item) in list.values.iter().enumerate() {
                validate_value(item, &format!("{field}[{i}]"), errors, depth + 1);
            }
        }
        Some(_) => {}
    }
}
