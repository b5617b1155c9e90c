//! Renders any `Serialize` value as human-readable fields, without building an intermediate
//! tree: `key=value key2=[a,b]` on one line ([`Style::Inline`]) or one field per line with
//! nested records indented ([`Style::Lines`], for `--show`).

use std::fmt::{self, Write};

use serde::ser::{self, Serialize};

/// How fields are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `a=1 b=x c=[1,2] d={e=1 f=2}`
    Inline,
    /// One `name: value` per line, nested records and lists indented by two spaces.
    Lines,
}

/// Writes the fields of `value` (a struct or map) to `out`. For [`Style::Inline`] each field is
/// preceded by a space; for [`Style::Lines`] each line starts with `indent` spaces.
/// Top-level fields named in `skip` are left out.
pub fn write_fields<T: Serialize + ?Sized>(
    out: &mut String,
    value: &T,
    style: Style,
    indent: usize,
    skip: &'static [&'static str],
) {
    let mut s = Ser {
        out: std::mem::take(out),
        style,
        indent,
        depth: 0,
        first: true,
        skip,
        dash: false,
        kind: KeyKind::Plain,
    };
    // A failing Serialize impl only truncates the output.
    let _ = value.serialize(&mut s);
    *out = s.out;
}

struct Ser {
    /// [`Style::Lines`]: a list item's `- ` was just written; its first key goes on that line.
    dash: bool,
    skip: &'static [&'static str],
    out: String,
    style: Style,
    indent: usize,
    /// 0 = the top-level record whose fields are being listed.
    depth: usize,
    /// No element written yet in the current inline container.
    first: bool,
    /// What the last key says about its value.
    kind: KeyKind,
}

/// Values written in a readable form, recognised by their key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum KeyKind {
    #[default]
    Plain,
    /// `…zxid`: `0x100000002 (1:2)`, as everywhere in text.
    Zxid,
    /// `ctime`, `mtime` (ms since the epoch): ISO-8601 UTC.
    Millis,
}

impl KeyKind {
    fn of(key: &str) -> KeyKind {
        if key.contains("zxid") {
            KeyKind::Zxid
        } else if key == "ctime" || key == "mtime" {
            KeyKind::Millis
        } else {
            KeyKind::Plain
        }
    }
}

#[derive(Debug)]
struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field rendering failed")
    }
}
impl std::error::Error for Error {}
impl ser::Error for Error {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Error
    }
}

type R = Result<(), Error>;

impl Ser {
    fn pad(&mut self, level: usize) {
        for _ in 0..self.indent + 2 * level {
            self.out.push(' ');
        }
    }

    fn str_value(&mut self, v: &str) {
        let plain = !v.is_empty()
            && v.chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"\"=,[]{}".contains(c));
        if plain {
            self.out.push_str(v);
        } else {
            self.out.push('"');
            for c in v.chars() {
                match c {
                    '"' => self.out.push_str("\\\""),
                    '\\' => self.out.push_str("\\\\"),
                    '\n' => self.out.push_str("\\n"),
                    c if c.is_control() => {
                        let _ = write!(self.out, "\\u{{{:x}}}", c as u32);
                    }
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
    }

    /// Starts a field named `key` of the record at the current depth.
    fn key(&mut self, key: &str) {
        self.kind = KeyKind::of(key);
        match (self.style, self.depth) {
            (Style::Lines, _) => {
                if self.dash {
                    self.dash = false;
                } else {
                    if !self.out.is_empty() && !self.out.ends_with('\n') {
                        self.out.push('\n');
                    }
                    self.pad(self.depth.saturating_sub(1));
                }
                self.out.push_str(key);
                self.out.push_str(": ");
            }
            (Style::Inline, 1) => {
                self.out.push(' ');
                self.out.push_str(key);
                self.out.push('=');
            }
            (Style::Inline, _) => {
                if !self.first {
                    self.out.push(' ');
                }
                self.first = false;
                self.out.push_str(key);
                self.out.push('=');
            }
        }
    }
}

macro_rules! display_value {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(self, v: $t) -> R {
            let _ = write!(self.out, "{v}");
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Ser {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Rec<'a>;
    type SerializeStruct = Rec<'a>;
    type SerializeStructVariant = Rec<'a>;

    display_value!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64);

    fn serialize_i64(self, v: i64) -> R {
        match std::mem::take(&mut self.kind) {
            KeyKind::Zxid if v >= 0 => {
                let _ = write!(self.out, "{v:#x} ({}:{})", v >> 32, v & 0xffff_ffff);
            }
            KeyKind::Millis => match chrono::DateTime::from_timestamp_millis(v) {
                Some(t) => {
                    let _ = write!(self.out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
                }
                None => {
                    let _ = write!(self.out, "{v}");
                }
            },
            _ => {
                let _ = write!(self.out, "{v}");
            }
        }
        Ok(())
    }

    fn serialize_char(self, v: char) -> R {
        self.str_value(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> R {
        self.str_value(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        let _ = write!(self.out, "<{} bytes>", v.len());
        Ok(())
    }
    fn serialize_none(self) -> R {
        self.out.push('-');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        self.out.push('-');
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
        self.str_value(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Error> {
        Seq::open(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Rec<'a>, Error> {
        Rec::open(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Rec<'a>, Error> {
        Rec::open(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Rec<'a>, Error> {
        Rec::open(self)
    }
}

/// A record (struct or map) being written.
struct Rec<'a> {
    ser: &'a mut Ser,
    saved_first: bool,
    skipping: bool,
}

/// A list being written.
struct Seq<'a> {
    ser: &'a mut Ser,
    saved_first: bool,
    index: usize,
}

impl<'a> Rec<'a> {
    fn open(ser: &'a mut Ser) -> Result<Self, Error> {
        let saved_first = ser.first;
        ser.depth += 1;
        if ser.depth > 1 && ser.style == Style::Inline {
            ser.out.push('{');
        }
        if ser.style == Style::Lines && ser.out.ends_with(": ") {
            ser.out.pop();
        }
        ser.first = true;
        Ok(Rec {
            ser,
            saved_first,
            skipping: false,
        })
    }

    fn close(self) -> R {
        if self.ser.depth > 1 && self.ser.style == Style::Inline {
            self.ser.out.push('}');
        }
        self.ser.depth -= 1;
        self.ser.first = self.saved_first;
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> R {
        // `*_hex` twins are for JSON: text writes the value itself in hex
        if (self.ser.depth == 1 && self.ser.skip.contains(&key)) || key.ends_with("_hex") {
            return Ok(());
        }
        let mark = self.ser.out.len();
        self.ser.key(key);
        let r = v.serialize(&mut *self.ser);
        // One-line output leaves out absent values of top-level fields.
        if self.ser.style == Style::Inline
            && self.ser.depth == 1
            && self.ser.out.len() == mark + key.len() + 3
            && self.ser.out.ends_with("=-")
        {
            self.ser.out.truncate(mark);
        }
        r
    }
}

impl<'a> Seq<'a> {
    fn open(ser: &'a mut Ser) -> Result<Self, Error> {
        let saved_first = ser.first;
        if ser.style == Style::Inline {
            ser.out.push('[');
        }
        ser.first = true;
        Ok(Seq {
            ser,
            saved_first,
            index: 0,
        })
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        self.index += 1;
        let depth = self.ser.depth;
        if self.ser.style == Style::Lines {
            // One item per line: `- value`, or `- key: value` with the record's other keys
            // aligned under the first.
            if self.ser.out.ends_with(": ") {
                self.ser.out.pop();
            }
            self.ser.out.push('\n');
            self.ser.pad(depth);
            self.ser.out.push_str("- ");
            self.ser.dash = true;
            self.ser.depth = depth + 1;
            let r = v.serialize(&mut *self.ser);
            self.ser.dash = false;
            self.ser.depth = depth;
            return r;
        }
        if self.index > 1 {
            self.ser.out.push(',');
        }
        self.ser.depth = depth.max(1);
        self.ser.first = true;
        let r = v.serialize(&mut *self.ser);
        self.ser.depth = depth;
        r
    }

    fn close(self) -> R {
        match self.ser.style {
            Style::Inline => self.ser.out.push(']'),
            Style::Lines if self.index == 0 => self.ser.out.push_str("[]"),
            Style::Lines => {}
        }
        self.ser.first = self.saved_first;
        Ok(())
    }
}

/// serde's four list-like traits, all writing elements the same way.
macro_rules! list_traits {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Seq<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
                self.element(v)
            }
            fn end(self) -> R {
                self.close()
            }
        }
    )*};
}

list_traits!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeStruct for Rec<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> R {
        self.field(key, v)
    }
    fn end(self) -> R {
        self.close()
    }
}

impl ser::SerializeStructVariant for Rec<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> R {
        self.field(key, v)
    }
    fn end(self) -> R {
        self.close()
    }
}

impl ser::SerializeMap for Rec<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> R {
        // Keys are rendered through a scratch serializer into plain text.
        let mut k = String::new();
        write_fields_value(&mut k, key);
        self.skipping =
            (self.ser.depth == 1 && self.ser.skip.contains(&k.as_str())) || k.ends_with("_hex");
        if !self.skipping {
            self.ser.key(&k);
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        if self.skipping {
            return Ok(());
        }
        v.serialize(&mut *self.ser)
    }
    fn end(self) -> R {
        self.close()
    }
}

/// Renders a scalar (a map key) as text.
fn write_fields_value<T: Serialize + ?Sized>(out: &mut String, v: &T) {
    let mut s = Ser {
        out: std::mem::take(out),
        style: Style::Inline,
        indent: 0,
        depth: 1,
        first: true,
        skip: &[],
        dash: false,
        kind: KeyKind::Plain,
    };
    let _ = v.serialize(&mut s);
    *out = s.out;
    if out.starts_with('"') && out.ends_with('"') && out.len() >= 2 {
        *out = out[1..out.len() - 1].to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Inner {
        a: i32,
        b: &'static str,
    }

    #[derive(Serialize)]
    struct Outer {
        path: &'static str,
        watch: bool,
        missing: Option<i32>,
        list: Vec<&'static str>,
        inner: Inner,
        recs: Vec<Inner>,
        text: &'static str,
    }

    fn sample() -> Outer {
        Outer {
            path: "/a/b",
            watch: true,
            missing: None,
            list: vec!["x", "y"],
            inner: Inner { a: 1, b: "z" },
            recs: vec![Inner { a: 2, b: "w" }],
            text: "two words",
        }
    }

    #[test]
    fn inline() {
        let mut s = String::new();
        write_fields(&mut s, &sample(), Style::Inline, 0, &[]);
        assert_eq!(
            s,
            " path=/a/b watch=true list=[x,y] inner={a=1 b=z} recs=[{a=2 b=w}] text=\"two words\""
        );
    }

    #[test]
    fn lines() {
        let mut s = String::new();
        write_fields(&mut s, &sample(), Style::Lines, 4, &[]);
        assert_eq!(
            s,
            "    path: /a/b\n    watch: true\n    missing: -\n    list:\n      - x\n      - y\n    inner:\n      a: 1\n      b: z\n    recs:\n      - a: 2\n        b: w\n    text: \"two words\""
        );
    }

    #[test]
    fn flattened_map() {
        let mut m = serde_json::Map::new();
        m.insert("k".into(), serde_json::json!(5));
        let mut s = String::new();
        write_fields(&mut s, &m, Style::Inline, 0, &[]);
        assert_eq!(s, " k=5");
    }
}
