//! Collecting field-level validation failures, so that one answer names every bad field.

use std::collections::BTreeMap;

/// Field name (a JSON path such as `layout.sections[2].rows`) to the reason it was refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// One failure, as a value ready to return.
    pub fn single(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, reason);
        errors
    }

    /// Records a failure; the first reason given for a field is kept.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| reason.into());
    }

    /// Records `reason` when `ok` is false.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, reason: impl Into<String>) {
        if !ok {
            self.add(field, reason);
        }
    }

    /// Keeps the value of a parse, or records its failure under `field`.
    pub fn take<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(reason) => {
                self.add(field, reason);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// A non-empty text of at most `max` characters as sent (spaces around it count, so the
/// bound is the one the OpenAPI document states), trimmed.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// Like [`text`], but an empty value is allowed, and so are line breaks and tabs (for
/// descriptions and addresses).
pub fn optional_text(value: &str, max: usize) -> Result<String, String> {
    if value.trim().is_empty() {
        Ok(String::new())
    } else if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err("must not contain control characters".into())
    } else {
        Ok(value.trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_for_a_field_is_kept() {
        let mut errors = FieldErrors::new();
        errors.add("name", "first");
        errors.add("name", "second");
        assert_eq!(errors.into_inner()["name"], "first");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("  Arena ", 10), Ok("Arena".into()));
        assert!(text("   ", 10).is_err());
        assert!(text("abcdefghijk", 10).is_err());
        assert!(text("a\u{0}b", 10).is_err());
        assert!(optional_text("line one\nline two", 50).is_ok());
        assert!(optional_text("nul \u{0} inside", 50).is_err());
    }
}
