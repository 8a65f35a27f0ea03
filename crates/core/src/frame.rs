//! The per-customer table that flows from the engine into scoring: one row per customer,
//! one column per metric (numbers or text), plus each customer's tags.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Num(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Self::Num(v) => v.len(),
            Self::Text(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Num(_) => "number",
            Self::Text(_) => "text",
        }
    }
    pub fn value(&self, row: usize) -> Value<'_> {
        match self {
            Self::Num(v) => v[row].map_or(Value::Null, Value::Num),
            Self::Text(v) => v[row].as_deref().map_or(Value::Null, Value::Text),
        }
    }
    pub fn num(&self, row: usize) -> Option<f64> {
        match self {
            Self::Num(v) => v[row],
            Self::Text(_) => None,
        }
    }
}

/// One cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Num(f64),
    Text(&'a str),
    Null,
}

impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Num(n) => f.write_str(&fmt_num(*n)),
            Value::Text(t) => write!(f, "'{t}'"),
            Value::Null => f.write_str("null"),
        }
    }
}

/// Customer ids in frame order, kept as one text buffer with an end offset per id: a million
/// ids as separate strings cost a million allocations to build and a million to free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    text: String,
    ends: Vec<usize>,
}

impl Ids {
    /// Room for `ids` ids of `bytes` bytes in all.
    pub fn with_capacity(ids: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(ids),
        }
    }
    pub fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }
    /// Appends the id that `write` appends to the buffer (a number formatted in place).
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
    }
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// The id on `row`; panics past the end, as slices do.
    pub fn get(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.text[start..self.ends[row]]
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// The rows in byte order of their ids (the order the store keeps a run in, so that SQL's
    /// text comparison finds a customer's chunk), or `None` when they are in it already.
    /// Frames of integer keys are in numeric order, which is not byte order ("10" < "9").
    /// Sorted on every core by the ids' first eight bytes, the whole ids only where those tie.
    pub fn byte_order(&self) -> Option<Vec<u32>> {
        use rayon::slice::ParallelSliceMut;
        let n = self.len();
        if (1..n).all(|row| self.get(row - 1) < self.get(row)) {
            return None;
        }
        let mut keyed: Vec<(u64, u32)> = (0..n)
            .map(|row| (byte_prefix(self.get(row)), row as u32))
            .collect();
        keyed.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.get(a.1 as usize).cmp(self.get(b.1 as usize)))
        });
        Some(keyed.into_iter().map(|(_, row)| row).collect())
    }
}

/// An id's first eight bytes as a big-endian number, zero-padded: ordered as the ids are
/// wherever the numbers differ (a shorter id pads with zeros, which sort first).
fn byte_prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let head = &id.as_bytes()[..id.len().min(8)];
    bytes[..head.len()].copy_from_slice(head);
    u64::from_be_bytes(bytes)
}

impl std::ops::Index<usize> for Ids {
    type Output = str;
    fn index(&self, row: usize) -> &str {
        self.get(row)
    }
}

impl<S: AsRef<str>> FromIterator<S> for Ids {
    fn from_iter<I: IntoIterator<Item = S>>(ids: I) -> Self {
        let mut out = Ids::default();
        for id in ids {
            out.push(id.as_ref());
        }
        out
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Ids {
    fn from(ids: Vec<S>) -> Self {
        ids.into_iter().collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Frame {
    ids: Ids,
    tags: Vec<Vec<String>>,
    names: Vec<String>,
    columns: Vec<Column>,
    index: HashMap<String, usize>,
}

/// A frame was built with columns of different lengths or a duplicate name.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("column `{name}` has {got} rows, the frame has {expected}")]
    Length {
        name: String,
        got: usize,
        expected: usize,
    },
    #[error("column `{0}` appears twice")]
    Duplicate(String),
}

impl Frame {
    /// `tags` holds a list per customer, or none at all when no customer has tags (a
    /// million empty lists would cost 24 MB).
    pub fn new(ids: impl Into<Ids>, tags: Vec<Vec<String>>) -> Self {
        let ids = ids.into();
        let tags = if tags.len() == ids.len() {
            tags
        } else {
            Vec::new()
        };
        Self {
            ids,
            tags,
            ..Self::default()
        }
    }

    pub fn push(&mut self, name: impl Into<String>, column: Column) -> Result<(), FrameError> {
        let name = name.into();
        if column.len() != self.ids.len() {
            return Err(FrameError::Length {
                name,
                got: column.len(),
                expected: self.ids.len(),
            });
        }
        if self.index.contains_key(&name) {
            return Err(FrameError::Duplicate(name));
        }
        self.index.insert(name.clone(), self.columns.len());
        self.names.push(name);
        self.columns.push(column);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn ids(&self) -> &Ids {
        &self.ids
    }
    pub fn tags(&self, row: usize) -> &[String] {
        self.tags.get(row).map_or(&[], Vec::as_slice)
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.columns.iter())
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index_of(name).map(|i| &self.columns[i])
    }
    pub fn column_at(&self, idx: usize) -> &Column {
        &self.columns[idx]
    }
    pub fn row_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }
    /// Adds a tag kept outside the data (e.g. in the store); no duplicates.
    pub fn add_tag(&mut self, row: usize, tag: &str) {
        if self.tags.is_empty() {
            self.tags = vec![Vec::new(); self.ids.len()];
        }
        if !self.tags[row].iter().any(|t| t == tag) {
            self.tags[row].push(tag.to_string());
        }
    }
}

/// Formats a number for people: thousands separators; a whole number without decimals, any
/// other with two (`27,304.60`, not `27,304.6`: amounts read as money).
/// Four significant figures, for figures quoted in sentences and summaries (centres,
/// distances): 0.8213, 140.2, 2,310.
pub fn round4(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(3 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

pub fn fmt_num(n: f64) -> String {
    let mut out = String::with_capacity(16);
    push_num(&mut out, n);
    out
}

/// Appends `n` as [`fmt_num`] formats it. Explanations format several numbers for each of
/// a million customers, so this writes in place instead of building strings.
pub fn push_num(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str(&n.to_string());
        return;
    }
    let rounded = (n * 100.0).round() / 100.0;
    if rounded < 0.0 {
        out.push('-');
    }
    let abs = rounded.abs();
    let mut int_part = abs.trunc() as u128;
    // Below 0.995 before rounding, so at most 99.
    let hundredths = ((abs - abs.trunc()) * 100.0).round() as u8;
    let mut digits = [0u8; 40];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (int_part % 10) as u8;
        len += 1;
        int_part /= 10;
        if int_part == 0 {
            break;
        }
    }
    for i in (0..len).rev() {
        out.push(char::from(digits[i]));
        if i > 0 && i % 3 == 0 {
            out.push(',');
        }
    }
    if hundredths > 0 {
        out.push('.');
        out.push(char::from(b'0' + hundredths / 10));
        out.push(char::from(b'0' + hundredths % 10));
    }
}

#[cfg(test)]
mod tests {
    use super::{Ids, fmt_num};

    #[test]
    fn ids_share_one_buffer_and_read_back_one_by_one() {
        let mut ids = Ids::with_capacity(3, 8);
        ids.push("C1");
        ids.push("");
        ids.push_with(|text| text.push_str("C300"));
        assert_eq!(ids.len(), 3);
        assert_eq!((&ids[0], &ids[1], &ids[2]), ("C1", "", "C300"));
        assert_eq!(ids.iter().collect::<Vec<_>>(), ["C1", "", "C300"]);
        assert_eq!(ids, Ids::from(vec!["C1", "", "C300"]));
        assert!(Ids::default().is_empty());
    }

    #[test]
    fn byte_order_of_integer_ids_is_not_numeric_order() {
        let ids = Ids::from(vec!["9", "10", "100", "11", "1"]);
        assert_eq!(ids.byte_order(), Some(vec![4, 1, 2, 3, 0]));
        assert_eq!(Ids::from(vec!["1", "10", "9"]).byte_order(), None);
    }

    use proptest::prelude::*;

    proptest! {
        /// Ids sharing long prefixes, embedded NULs and multi-byte characters come out as
        /// sorting the strings would put them.
        #[test]
        fn byte_order_is_the_strings_order(
            arranged in prop::collection::btree_set(
                "(customer-0000|a\\x00|é)?[0-9a\\x00é]{0,10}",
                0..60,
            )
            .prop_map(|ids| ids.into_iter().collect::<Vec<String>>())
            .prop_shuffle()
        ) {
            let mut sorted = arranged.clone();
            sorted.sort();
            let order: Vec<u32> = Ids::from(arranged.clone())
                .byte_order()
                .unwrap_or_else(|| (0..arranged.len() as u32).collect());
            let placed: Vec<&String> = order.iter().map(|&r| &arranged[r as usize]).collect();
            prop_assert_eq!(placed, sorted.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(35_000.0), "35,000");
        assert_eq!(fmt_num(0.5), "0.50");
        assert_eq!(fmt_num(27_304.6), "27,304.60");
        assert_eq!(fmt_num(12.3456), "12.35");
        assert_eq!(fmt_num(-1200.1), "-1,200.10");
        assert_eq!(fmt_num(999.999), "1,000");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(-0.001), "0");
        assert_eq!(fmt_num(100.0), "100");
        assert_eq!(fmt_num(1e20), "100,000,000,000,000,000,000");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }
}
