//! Arguments that are not UTF-8 (a Latin-1 file name from `find`), carried through `crew run`'s
//! text-based templates byte for byte.
//!
//! # Design note: a reversible text form of any bytes
//!
//! Templates, replacement strings (`{.}` `{/}` ...), quoting and `--results` names all work on
//! `str`, and everything they look at (`/`, `.`, quotes, `$`, spaces) is ASCII. So instead of
//! refusing bytes that are not UTF-8, [`encode`] turns each such byte `b` into the private-use
//! character `U+10FF00 + b` (the 128 characters `U+10FF80..=U+10FFFF`; only bytes 0x80-0xFF
//! can be invalid), and [`decode`] turns those characters back into their byte when the text
//! leaves crew (a program's argument or environment, a file name, output). To keep the two
//! exact inverses, a *genuine* character in that range is encoded as its four UTF-8 bytes, each
//! escaped: decoding gives the four bytes back, which are that character. Valid UTF-8 without
//! those rare characters is unchanged, so text that never held odd bytes costs nothing.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The first character of the escape range: byte `b` is `BASE + b` (b >= 0x80).
const BASE: u32 = 0x10_FF00;

fn is_escape(c: char) -> bool {
    (BASE + 0x80..=BASE + 0xFF).contains(&(c as u32))
}

fn escape(byte: u8, out: &mut String) {
    out.push(char::from_u32(BASE + u32::from(byte)).expect("U+10FF80..=U+10FFFF are chars"));
}

/// `bytes` as text: valid UTF-8 as is, any other byte escaped (see the module note).
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_escape(c) {
                let mut utf8 = [0u8; 4];
                for &byte in c.encode_utf8(&mut utf8).as_bytes() {
                    escape(byte, &mut out);
                }
            } else {
                out.push(c);
            }
        }
        for &byte in chunk.invalid() {
            escape(byte, &mut out);
        }
    }
    out
}

/// The bytes `text` stands for (the inverse of [`encode`]).
pub(crate) fn decode_bytes(text: &str) -> Vec<u8> {
    if !text.chars().any(is_escape) {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_escape(c) {
            out.push((c as u32 - BASE) as u8);
        } else {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out
}

/// The operating-system string `text` stands for: a program name, an argument, an
/// environment value or a path.
pub(crate) fn decode(text: &str) -> OsString {
    OsString::from_vec(decode_bytes(text))
}

/// Whether `text` stands for bytes that are not UTF-8 (it holds an escape).
#[cfg(test)]
pub(crate) fn is_raw(text: &str) -> bool {
    text.chars().any(is_escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_survive_the_round_trip() {
        let cases: [&[u8]; 6] = [
            b"plain",
            b"caf\xe9 \xff.txt",
            "ünïcödé".as_bytes(),
            // A genuine U+10FF85 next to an escaped byte.
            "\u{10FF85}x".as_bytes(),
            b"\xf4\x8f\xbe\x85\x80",
            b"\xc3",
        ];
        for bytes in cases {
            let text = encode(bytes);
            assert_eq!(decode_bytes(&text), bytes, "{bytes:?} -> {text:?}");
        }
        assert_eq!(encode(b"plain"), "plain");
        assert!(!is_raw(&encode("ünïcödé".as_bytes())));
        assert!(is_raw(&encode(b"\xe9")));
        // What templates look at is untouched: `/` and `.` stay where they were.
        let text = encode(b"d\xff/f\xfe.t");
        assert_eq!(text.find('/'), Some(5));
        assert_eq!(
            decode(&text[..text.find('/').unwrap()]),
            OsString::from_vec(b"d\xff".to_vec())
        );
    }
}
