//! A serde `Serializer` over postcard's that refuses the shapes postcard would write but could
//! not read back, and says where they are.
//!
//! # Design note
//!
//! postcard writes a struct as its fields in order, with no names and no count, so a field that
//! is left out when writing shifts every field after it when reading: the reader gets an error
//! or, worse, other values that happen to decode. serde's derive tells the serializer when it
//! leaves a field out for `#[serde(skip_serializing_if = ...)]` (`SerializeStruct::skip_field`),
//! which postcard ignores; this wrapper turns that call into an error naming the struct and the
//! field, so the value is refused by the sender instead of being misread by the receiver.
//!
//! It also keeps what postcard drops: the message of a `Serialize` impl's own error (postcard
//! has one variant for all of them) and the path to the failing value, built only as an error
//! travels up (``field `b` of `Outer`: `Vec<Inner>`, element 3: `Inner` ``). A value that
//! encodes pays for none of it: every method forwards to postcard's serializer and is inlined,
//! and the error is one boxed pointer (the measurement is in the codec's design note).

use std::fmt::{self, Display};

use postcard::ser_flavors::AllocVec;
use serde::ser::{self, Serialize};

type Postcard = postcard::Serializer<AllocVec>;

/// Why a value could not be encoded, and where in it. Boxed: every serializer method returns
/// it, and a one-pointer `Result` keeps the path of a value that encodes as cheap as postcard's
/// own one-byte error (an unboxed one measured 1.1-1.5x postcard's time on small structs).
#[derive(Debug)]
pub(crate) struct EncodeError(Box<Failure>);

#[derive(Debug)]
struct Failure {
    cause: Cause,
    /// Innermost first: `field `x` of `Inner``, then `field `inner` of `Outer``...
    path: Vec<String>,
}

#[derive(Debug)]
enum Cause {
    /// `#[serde(skip_serializing_if = ...)]` left this field out.
    Skipped {
        container: &'static str,
        field: &'static str,
    },
    /// A sequence or map whose length is not known before its elements.
    UnknownLength { map: bool },
    /// A `Serialize` impl failed with this message.
    Custom(String),
    /// postcard's own error.
    Postcard(postcard::Error),
}

impl EncodeError {
    #[cold]
    fn new(cause: Cause) -> Self {
        Self(Box::new(Failure {
            cause,
            path: Vec::new(),
        }))
    }

    #[cold]
    fn within(mut self, place: impl FnOnce() -> String) -> Self {
        self.0.path.push(place());
        self
    }

    /// The whole message for a value of type `type_name`: what, where, and what to do.
    pub(crate) fn describe(&self, type_name: &str) -> String {
        let place = if self.0.path.is_empty() {
            String::new()
        } else {
            let path: Vec<&str> = self.0.path.iter().rev().map(String::as_str).collect();
            format!(" (at {})", path.join(", "))
        };
        match &self.0.cause {
            Cause::Skipped { container, field } => format!(
                "cannot encode a `{type_name}`: field `{field}` of `{container}` was left out by \
                 `#[serde(skip_serializing_if = ...)]`{place}; crew's codec (postcard) writes \
                 fields by position, without names, so the receiver would misread the fields \
                 after it. Remove `skip_serializing_if` from types that cross a process (an \
                 `Option` costs one byte when `None`), or use `#[serde(skip)]` to never send \
                 the field"
            ),
            Cause::UnknownLength { map } => format!(
                "cannot encode a `{type_name}`: a {} of unknown length{place}; crew's codec \
                 (postcard) writes the length first. A struct with a `#[serde(flatten)]` field \
                 is written as such a map (and cannot be read back either): nest the flattened \
                 struct as a named field instead. A custom `serialize_with` that collects an \
                 iterator without an exact size: collect into a `Vec` first",
                if *map { "map" } else { "sequence" }
            ),
            Cause::Custom(message) => {
                format!("cannot encode a `{type_name}`: its `Serialize` failed{place}: {message}")
            }
            Cause::Postcard(error) => {
                format!("cannot encode a `{type_name}`{place}: {error}")
            }
        }
    }
}

impl Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("value"))
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: Display>(message: T) -> Self {
        Self::new(Cause::Custom(message.to_string()))
    }
}

impl From<postcard::Error> for EncodeError {
    fn from(error: postcard::Error) -> Self {
        Self::new(match error {
            postcard::Error::SerializeSeqLengthUnknown => Cause::UnknownLength { map: false },
            other => Cause::Postcard(other),
        })
    }
}

/// Encodes `value` with postcard through [`Checked`].
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut serializer = Postcard {
        output: AllocVec::new(),
    };
    value.serialize(Checked(&mut serializer))?;
    Ok(postcard::ser_flavors::Flavor::finalize(serializer.output)?)
}

/// The serializer: postcard's, plus the refusals and error paths of the module note.
pub(crate) struct Checked<'a>(&'a mut Postcard);

/// A sequence, tuple, map or struct being written; `name` is the struct's or variant's.
pub(crate) struct Compound<'a> {
    serializer: &'a mut Postcard,
    name: &'static str,
    index: usize,
}

impl<'a> Compound<'a> {
    fn new(serializer: &'a mut Postcard, name: &'static str) -> Self {
        Self {
            serializer,
            name,
            index: 0,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let index = self.index;
        self.index += 1;
        value
            .serialize(Checked(&mut *self.serializer))
            .map_err(|error| error.within(|| format!("element {index}: {}", type_of::<T>())))
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let name = self.name;
        value
            .serialize(Checked(&mut *self.serializer))
            .map_err(|error| {
                error.within(|| format!("field `{key}` of `{name}`: {}", type_of::<T>()))
            })
    }

    fn skip(&mut self, field: &'static str) -> Result<(), EncodeError> {
        Err(EncodeError::new(Cause::Skipped {
            container: self.name,
            field,
        }))
    }
}

/// How a path entry names the type of the value at it.
fn type_of<T: ?Sized>() -> String {
    // Sequences hand their elements over by reference: name the element's own type.
    format!("`{}`", std::any::type_name::<T>().trim_start_matches('&'))
}

/// Forwards a method with no nested value to postcard's serializer.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline]
            fn $method(self, $($arg: $ty),*) -> Result<(), EncodeError> {
                ser::Serializer::$method(&mut *self.0, $($arg),*)?;
                Ok(())
            }
        )*
    };
}

impl<'a> ser::Serializer for Checked<'a> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        ser::Serializer::serialize_some(&mut *self.0, &Unit)?;
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        // postcard writes a newtype variant as its index, then the value.
        ser::Serializer::serialize_unit_variant(&mut *self.0, name, index, variant)?;
        value.serialize(self).map_err(|error| {
            error.within(|| format!("variant `{name}::{variant}`: {}", type_of::<T>()))
        })
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_seq(&mut *self.0, len)?;
        Ok(Compound::new(self.0, ""))
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_tuple(&mut *self.0, len)?;
        Ok(Compound::new(self.0, ""))
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_tuple_struct(&mut *self.0, name, len)?;
        Ok(Compound::new(self.0, name))
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_tuple_variant(&mut *self.0, name, index, variant, len)?;
        Ok(Compound::new(self.0, variant))
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        if len.is_none() {
            return Err(EncodeError::new(Cause::UnknownLength { map: true }));
        }
        ser::Serializer::serialize_map(&mut *self.0, len)?;
        Ok(Compound::new(self.0, ""))
    }

    #[inline]
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_struct(&mut *self.0, name, len)?;
        Ok(Compound::new(self.0, name))
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        ser::Serializer::serialize_struct_variant(&mut *self.0, name, index, variant, len)?;
        Ok(Compound::new(self.0, variant))
    }

    #[inline]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        ser::Serializer::collect_str(&mut *self.0, value)?;
        Ok(())
    }
}

/// Writes nothing: `serialize_some` asks postcard for its `Some` tag only, the value follows
/// through [`Checked`].
struct Unit;

impl Serialize for Unit {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        let index = self.index;
        key.serialize(Checked(&mut *self.serializer))
            .map_err(|error| error.within(|| format!("key {index}: {}", type_of::<T>())))
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.field(key, value)
    }

    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), EncodeError> {
        self.skip(key)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.field(key, value)
    }

    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), EncodeError> {
        self.skip(key)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}
