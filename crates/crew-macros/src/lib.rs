//! Procedural macros for crew. Use them through the `crew` crate, not directly.
