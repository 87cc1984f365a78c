//! Assertions shared by the unit tests (compiled only for `cargo test`).

/// Asserts that `text` contains each of `parts`, printing the missing part and the whole
/// text when one is not there.
#[track_caller]
pub(crate) fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

/// Asserts that each of `lines` stands as a whole line of `text` (e.g. a generated config).
#[track_caller]
pub(crate) fn assert_has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_part_fails_and_present_parts_pass() {
        assert_has("factorial(10) exceeds", &["factorial", "exceeds"]);
        assert_has_lines("a = 1\nb = 2\n", &["b = 2"]);
        let missing = std::panic::catch_unwind(|| assert_has("abc", &["abd"]));
        assert!(missing.is_err());
        let partial_line = std::panic::catch_unwind(|| assert_has_lines("a = 12\n", &["a = 1"]));
        assert!(partial_line.is_err());
    }
}
