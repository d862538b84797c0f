//! The character classes and string spellings the rules share with Python:
//! `\s` and `\w` of Python's `re` on text, and `repr` of a string in
//! messages that quote a caller's value.

/// Python's whitespace (`str.isspace`, `\s`): Unicode White_Space and the
/// information separators U+001C..U+001F.
pub fn is_python_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{20}' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

pub trait Text {
    /// `\s` of Python's `re` on text.
    fn is_space(&self, c: char) -> bool {
        is_python_space(c)
    }
    /// `\w` of Python's `re` on text (`str.isalnum` or `_`).
    fn is_word(&self, c: char) -> bool;
    /// Python's `repr` of a string, as messages quote a caller's value.
    fn repr(&self, value: &str) -> String;
}
