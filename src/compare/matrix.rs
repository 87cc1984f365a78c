//! The matrices of a comparison (idle timeouts, producer policies): each row type says its
//! columns, its cells and its sentence; the table, its alignment and the findings are built
//! here once.

/// A row of a matrix shown in `hab compare` and report.md only when it has something to say.
pub trait Matrix: Sized {
    /// Column titles; a `dup` column (tasks run more than once, a number) always follows.
    const HEAD: &'static [&'static str];
    /// The columns of text (left-aligned); every other column is a number.
    const TEXT: &'static [&'static str];
    /// Whether the matrix belongs in a report at all.
    fn worth_showing(rows: &[Self]) -> bool;
    /// The row's cells, in the order of [`Matrix::HEAD`], then `dup`.
    fn cells(&self) -> Vec<String>;
    /// The row in plain words with its numbers.
    fn finding(&self) -> String;
}

/// Which columns are numbers (right-aligned), `dup` included.
pub fn numeric<M: Matrix>() -> Vec<bool> {
    M::HEAD
        .iter()
        .map(|h| !M::TEXT.contains(h))
        .chain(std::iter::once(true))
        .collect()
}

/// The table: [`Matrix::HEAD`] plus `dup`, one line per row.
pub fn table<M: Matrix>(rows: &[M]) -> (Vec<String>, Vec<Vec<String>>) {
    let head = M::HEAD
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once("dup".to_string()))
        .collect();
    (head, rows.iter().map(M::cells).collect())
}

/// The table as aligned text, for the terminal.
pub fn text_table<M: Matrix>(rows: &[M]) -> String {
    let (head, body) = table(rows);
    super::terminal::aligned(&head, &body, &numeric::<M>())
}

/// One finding per row, none when the matrix is not [worth showing](Matrix::worth_showing).
pub fn findings<M: Matrix>(rows: &[M]) -> Vec<String> {
    if !M::worth_showing(rows) {
        return Vec::new();
    }
    rows.iter().map(M::finding).collect()
}
