//! The serde shapes of the codec's contract (the module note): each one that works round-trips,
//! each one that cannot is refused with a message naming the type, the cause and the fix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::{decode, encode};

fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    decode(&encode(value).unwrap()).unwrap()
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sparse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<u8>,
    pair: (u8, Vec<u8>),
}

#[test]
fn skip_serializing_if_is_refused_when_it_skips_since_postcard_would_misread_it() {
    // Why: postcard alone writes the value without `tags` and reads it back as other values,
    // without any error.
    let sent = Sparse {
        tags: vec![],
        pair: (1, vec![7, 0]),
    };
    let misread: Sparse = postcard::from_bytes(&postcard::to_stdvec(&sent).unwrap()).unwrap();
    assert_eq!(
        misread,
        Sparse {
            tags: vec![2],
            pair: (7, vec![])
        }
    );
    // The codec refuses it, naming the type, the field and the fix.
    let error = encode(&sent).unwrap_err();
    assert!(error.contains("codec::tests::Sparse`"), "{error}");
    assert!(error.contains("field `tags` of `Sparse`"), "{error}");
    assert!(error.contains("skip_serializing_if"), "{error}");
    assert!(error.contains("Remove `skip_serializing_if`"), "{error}");
    // When the field is not skipped the value goes through.
    let full = Sparse {
        tags: vec![3],
        pair: (1, vec![7, 0]),
    };
    assert_eq!(round_trip(&full), full);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Event {
    Moved {
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<u32>,
    },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Outer {
    events: Vec<Event>,
}

#[test]
fn a_skipped_field_deep_inside_is_refused_with_its_path() {
    let value = Outer {
        events: vec![Event::Moved { by: Some(1) }, Event::Moved { by: None }],
    };
    let error = encode(&value).unwrap_err();
    assert!(error.contains("field `by` of `Moved`"), "{error}");
    assert!(
        error.contains(
            "(at field `events` of `Outer`: `alloc::vec::Vec<crew::task::codec::tests::Event>`, \
             element 1: `crew::task::codec::tests::Event`)"
        ),
        "{error}"
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Extra {
    colour: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Flattened {
    id: u64,
    #[serde(flatten)]
    extra: Extra,
}

#[test]
fn flatten_is_refused_at_encoding_with_the_fix() {
    let error = encode(&Flattened {
        id: 1,
        extra: Extra {
            colour: "red".into(),
        },
    })
    .unwrap_err();
    assert!(
        error.contains("`crew::task::codec::tests::Flattened`"),
        "{error}"
    );
    assert!(error.contains("map of unknown length"), "{error}");
    assert!(error.contains("nest the flattened struct"), "{error}");
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Text(String),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
enum InternallyTagged {
    Circle { radius: f64 },
}

fn assert_needs_a_self_describing_format<T>(value: &T, type_name: &str)
where
    T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // These write fine; only reading needs `deserialize_any`.
    let bytes = encode(value).unwrap();
    let error = decode::<T>(&bytes).unwrap_err();
    assert!(error.contains(&format!("`{type_name}`")), "{error}");
    assert!(error.contains("self-describing"), "{error}");
    assert!(error.contains("untagged"), "{error}");
    assert!(error.contains("adjacently tagged"), "{error}");
    assert!(error.contains("externally tagged enum"), "{error}");
    assert!(error.contains("serde_json::to_string"), "{error}");
}

#[test]
fn untagged_tagged_and_json_values_fail_to_decode_with_the_fix() {
    assert_needs_a_self_describing_format(
        &Untagged::Number(3),
        "crew::task::codec::tests::Untagged",
    );
    assert_needs_a_self_describing_format(
        &InternallyTagged::Circle { radius: 1.0 },
        "crew::task::codec::tests::InternallyTagged",
    );
    for value in [
        AdjacentlyTagged::Pair(1, 2),
        AdjacentlyTagged::Named { name: "n".into() },
        AdjacentlyTagged::Empty,
    ] {
        assert_needs_a_self_describing_format(&value, "crew::task::codec::tests::AdjacentlyTagged");
    }
    assert_needs_a_self_describing_format(
        &serde_json::json!({"a": [1, 2]}),
        "serde_json::value::Value",
    );
    // Inside a container the outer type is named.
    assert_needs_a_self_describing_format(
        &vec![Some(Untagged::Text("x".into()))],
        "alloc::vec::Vec<core::option::Option<crew::task::codec::tests::Untagged>>",
    );
    // The fix the message gives works: the JSON as text.
    let text = serde_json::json!({"a": [1, 2]}).to_string();
    let back: String = round_trip(&text);
    let value: serde_json::Value = serde_json::from_str(&back).unwrap();
    assert_eq!(value["a"][1], 2);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum AdjacentlyTagged {
    Pair(u8, u8),
    Named { name: String },
    Empty,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum External {
    Unit,
    Newtype(Vec<i8>),
    Tuple(u8, Option<char>),
    Struct { a: i128, b: Box<External> },
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Defaults {
    kept_name: String,
    #[serde(skip)]
    cache: Option<u64>,
    #[serde(rename = "n")]
    count: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct Meters(f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u8, u8)", into = "(u8, u8)")]
struct Version {
    major: u8,
    minor: u8,
}

impl From<(u8, u8)> for Version {
    fn from((major, minor): (u8, u8)) -> Self {
        Version { major, minor }
    }
}

impl From<Version> for (u8, u8) {
    fn from(version: Version) -> Self {
        (version.major, version.minor)
    }
}

#[test]
fn the_shapes_that_work_round_trip() {
    assert_eq!(round_trip(&Meters(2.5)), Meters(2.5));
    let version = Version { major: 1, minor: 2 };
    assert_eq!(round_trip(&version), version);
    let set: HashSet<String> = ["a".to_owned(), "b".to_owned()].into();
    assert_eq!(round_trip(&set), set);
    let external = External::Struct {
        a: -(1 << 100),
        b: Box::new(External::Tuple(7, Some('é'))),
    };
    assert_eq!(round_trip(&external), external);
    assert_eq!(round_trip(&External::Unit), External::Unit);
    assert_eq!(
        round_trip(&External::Newtype(vec![-1, 2])),
        External::Newtype(vec![-1, 2])
    );
    // `#[serde(skip)]` sends nothing and reads the default; `default` and renames are harmless.
    let defaults = Defaults {
        kept_name: "k".into(),
        cache: Some(9),
        count: 4,
    };
    assert_eq!(
        round_trip(&defaults),
        Defaults {
            cache: None,
            ..defaults
        }
    );
    // Maps with non-string keys, tuples, durations, unit.
    let mut map = HashMap::new();
    map.insert((1u8, -2i64), vec![Duration::from_millis(1500)]);
    assert_eq!(round_trip(&map), map);
    let tree: BTreeMap<u64, Option<()>> = [(1, Some(())), (2, None)].into_iter().collect();
    assert_eq!(round_trip(&tree), tree);
}

#[test]
fn the_checked_encoding_is_postcard_byte_for_byte() {
    let value = (
        External::Struct {
            a: 5,
            b: Box::new(External::Newtype(vec![1, -1])),
        },
        Some("text"),
        [1.5f32; 2],
        BTreeMap::from([(3u16, 'x')]),
        (),
    );
    assert_eq!(
        encode(&value).unwrap(),
        postcard::to_stdvec(&value).unwrap()
    );
}

struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("the lock is poisoned"))
    }
}

#[derive(Serialize)]
struct Holder {
    inner: Refuses,
}

struct Filtered(Vec<u8>);

impl Serialize for Filtered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().filter(|x| **x > 1))
    }
}

#[test]
fn a_serialize_impls_own_error_and_unknown_lengths_are_explained() {
    // postcard alone says only "Serde Serialization Error"; the impl's message is kept.
    let error = encode(&Holder { inner: Refuses }).unwrap_err();
    assert!(
        error.contains("`crew::task::codec::tests::Holder`: its `Serialize` failed (at field `inner` of `Holder`: `crew::task::codec::tests::Refuses`): the lock is poisoned"),
        "{error}"
    );
    let error = encode(&Filtered(vec![1, 2, 3])).unwrap_err();
    assert!(error.contains("sequence of unknown length"), "{error}");
    assert!(error.contains("collect into a `Vec` first"), "{error}");
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct WriteOnly {
    #[serde(skip_serializing)]
    secret: u64,
    visible: u64,
}

#[test]
fn misread_bytes_name_the_likely_causes() {
    // `skip_serializing` alone: the field is not written but is read.
    let bytes = encode(&WriteOnly {
        secret: 1,
        visible: 2,
    })
    .unwrap();
    let error = decode::<WriteOnly>(&bytes).unwrap_err();
    assert!(
        error.contains("`crew::task::codec::tests::WriteOnly`"),
        "{error}"
    );
    assert!(error.contains("use `#[serde(skip)]`"), "{error}");
    // Another type sent than read.
    let error = decode::<u8>(&encode(&(1u64, 2u64)).unwrap()).unwrap_err();
    assert!(error.contains("trailing bytes"), "{error}");
    assert!(error.contains("another type"), "{error}");
    let error = decode::<bool>(&[7]).unwrap_err();
    assert!(error.contains("`bool`"), "{error}");
}
