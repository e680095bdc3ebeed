//! Turning a `nodes` row into a [`Node`], or into the reason it is invalid.

use rusqlite::Row;
use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};

use crate::alias::AliasList;
use crate::node::{Content, Node, NodeId, validate_name};

/// The column list every node query selects, in the order [`parse`] reads.
pub(crate) const NODE_COLUMNS: &str = "id, parent_id, name, kind, size, mtime_ns, aliases_json";

/// A row that breaks the schema's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InvalidRow {
    /// The row's id, or 0 when the id itself is unusable.
    pub id: i64,
    /// What is wrong, naming the column.
    pub reason: String,
}

/// A row read from `nodes`: its raw name and id (for ordering) and the parsed node.
pub(crate) struct RawNode {
    /// The `name` value as stored, used to resume an ordered listing after it.
    pub position: Position,
    /// The `id` value as stored, which orders rows of one name.
    pub raw_id: Position,
    /// The node, or why the row cannot be one.
    pub node: Result<Node, InvalidRow>,
}

/// A `name` (or `id`) value exactly as stored, bound back into a query to resume a
/// listing after it. Text is kept as bytes: a row whose name is not valid UTF-8 is skipped,
/// but the listing must still move past it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Position {
    /// A text value (its bytes, valid UTF-8 or not).
    Text(Vec<u8>),
    /// Any other value (a blob, a number, NULL).
    Other(Value),
}

impl From<String> for Position {
    fn from(name: String) -> Self {
        Self::Text(name.into_bytes())
    }
}

impl ToSql for Position {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Text(bytes) => ValueRef::Text(bytes),
            Self::Other(value) => value.into(),
        }))
    }
}

/// Reads the [`NODE_COLUMNS`] of `row`.
pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<RawNode> {
    Ok(RawNode {
        position: Position::of(row.get_ref(2)?),
        raw_id: Position::of(row.get_ref(0)?),
        node: parse(row)?,
    })
}

impl Position {
    /// The value exactly as stored. Not `row.get::<Value>`: that fails on text that is
    /// not UTF-8, and one such row would make the whole directory unlistable.
    fn of(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Text(bytes) => Self::Text(bytes.to_vec()),
            ValueRef::Blob(bytes) => Self::Other(Value::Blob(bytes.to_vec())),
            ValueRef::Integer(i) => Self::Other(Value::Integer(i)),
            ValueRef::Real(r) => Self::Other(Value::Real(r)),
            ValueRef::Null => Self::Other(Value::Null),
        }
    }
}

/// Parses the [`NODE_COLUMNS`] of `row` into a node, checking every rule of schema v1.
pub(crate) fn parse(row: &Row<'_>) -> rusqlite::Result<Result<Node, InvalidRow>> {
    let raw_id = row.get_ref(0)?;
    let id = match raw_id {
        ValueRef::Integer(id) => id,
        other => {
            return Ok(Err(InvalidRow {
                id: 0,
                reason: format!("id is {}, not an integer", describe(other)),
            }));
        }
    };
    let invalid = |reason: String| Ok(Err(InvalidRow { id, reason }));
    let Some(node_id) = NodeId::from_sql(id) else {
        return invalid(format!("id {id} is not a positive integer"));
    };

    let parent = match row.get_ref(1)? {
        ValueRef::Null if node_id == NodeId::ROOT => None,
        ValueRef::Null => {
            return invalid("parent_id is NULL but only the root (id 1) has no parent".into());
        }
        ValueRef::Integer(p) => match NodeId::from_sql(p) {
            Some(p) => Some(p),
            None => return invalid(format!("parent_id {p} is not a positive integer")),
        },
        other => return invalid(format!("parent_id is {}, not an integer", describe(other))),
    };

    let name = match row.get_ref(2)? {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(name) => name,
            Err(_) => return invalid("name is not valid UTF-8".into()),
        },
        other => return invalid(format!("name is {}, not text", describe(other))),
    };
    if parent.is_some()
        && let Err(err) = validate_name(name)
    {
        return invalid(format!("name {name:?} is not allowed: {err}"));
    }

    let kind = match row.get_ref(3)? {
        ValueRef::Text(b"dir") => KindColumn::Dir,
        ValueRef::Text(b"file") => KindColumn::File,
        ValueRef::Text(other) => {
            return invalid(format!(
                "kind {:?} is neither 'dir' nor 'file'",
                String::from_utf8_lossy(other)
            ));
        }
        other => return invalid(format!("kind is {}, not text", describe(other))),
    };

    let recorded_size = match row.get_ref(4)? {
        ValueRef::Null => 0,
        ValueRef::Integer(size) => match u64::try_from(size) {
            Ok(size) => size,
            Err(_) => return invalid(format!("size {size} is negative")),
        },
        other => return invalid(format!("size is {}, not an integer", describe(other))),
    };

    let mtime_ns = match row.get_ref(5)? {
        ValueRef::Null => 0,
        ValueRef::Integer(mtime) => mtime,
        other => return invalid(format!("mtime_ns is {}, not an integer", describe(other))),
    };

    let content = match kind {
        KindColumn::Dir => Content::Dir,
        KindColumn::File => Content::File(aliases(row.get_ref(6)?)),
    };

    Ok(Ok(Node {
        id: node_id,
        parent,
        name: name.into(),
        recorded_size,
        mtime_ns,
        content,
    }))
}

/// Parses an `aliases_json` value, saying what is wrong with one that is not text.
pub(crate) fn aliases(value: ValueRef<'_>) -> AliasList {
    match value {
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(json) => AliasList::parse(json),
            Err(_) => AliasList::Unparsable("aliases_json is not valid UTF-8".into()),
        },
        other => AliasList::Unparsable(format!("aliases_json is {}, not text", describe(other))),
    }
}

enum KindColumn {
    Dir,
    File,
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(r) => format!("the real {r}"),
        ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}
