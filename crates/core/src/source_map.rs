//! Finds the line and column of a dotted key path (`ladders.value.levels[2].when`) in TOML text,
//! so that errors found after deserialisation still point at the file.

use crate::diagnostic::Location;
use toml_edit::{Document, Item, Table, Value};

/// The parsed document with spans, kept beside the policy for locating keys.
#[derive(Debug)]
pub struct SourceMap {
    file: String,
    text: String,
    doc: Option<Document<String>>,
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(name));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                steps.push(Step::Index(i));
            }
        }
    }
    steps
}

impl SourceMap {
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let doc = Document::parse(text.clone()).ok();
        Self {
            file: file.into(),
            text,
            doc,
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Location of a byte offset in the text.
    pub fn location_of_offset(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// Location of the deepest part of `path` that exists in the document.
    pub fn locate(&self, path: &str) -> Option<Location> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<std::ops::Range<usize>> = None;
        let mut node = Node::Table(doc.as_table());
        for step in split_path(path) {
            let next = match (&node, step) {
                (Node::Table(t), Step::Key(k)) => {
                    if let Some(key) = t.key(k).and_then(|k| k.span()) {
                        best = Some(key);
                    }
                    t.get(k).map(Node::Item)
                }
                (Node::Item(item), Step::Key(k)) => match item {
                    Item::Table(t) => {
                        if let Some(key) = t.key(k).and_then(|k| k.span()) {
                            best = Some(key);
                        }
                        t.get(k).map(Node::Item)
                    }
                    Item::Value(Value::InlineTable(t)) => {
                        if let Some(key) = t.key(k).and_then(|k| k.span()) {
                            best = Some(key);
                        }
                        t.get(k).map(Node::Value)
                    }
                    _ => None,
                },
                (Node::Value(Value::InlineTable(t)), Step::Key(k)) => {
                    if let Some(key) = t.key(k).and_then(|k| k.span()) {
                        best = Some(key);
                    }
                    t.get(k).map(Node::Value)
                }
                (Node::Item(Item::ArrayOfTables(a)), Step::Index(i)) => a.get(i).map(|t| {
                    if let Some(span) = t.span() {
                        best = Some(span);
                    }
                    Node::Table(t)
                }),
                (Node::Item(Item::Value(Value::Array(a))), Step::Index(i))
                | (Node::Value(Value::Array(a)), Step::Index(i)) => a.get(i).map(|v| {
                    if let Some(span) = v.span() {
                        best = Some(span);
                    }
                    Node::Value(v)
                }),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best.map(|span| self.location_of_offset(span.start))
    }
}

enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_array_tables() {
        let text = "[policy]\nname = \"x\"\n\n[ladders.value]\nrank_by = \"score\"\n[[ladders.value.levels]]\nname = \"a\"\n[[ladders.value.levels]]\nname = \"b\"\nwhen = \"x > 1\"\n";
        let map = SourceMap::new("p.toml", text);
        assert_eq!(map.locate("policy.name").unwrap().line, 2);
        assert_eq!(map.locate("ladders.value.rank_by").unwrap().line, 5);
        let loc = map.locate("ladders.value.levels[1].when").unwrap();
        assert_eq!((loc.line, loc.column), (10, 1));
        // A missing key falls back to the deepest part found.
        assert_eq!(map.locate("ladders.value.levels[1].nope").unwrap().line, 8);
    }
}
