//! The shapes `#[crew::actor]` refuses, with the errors it gives: generic methods, a generic
//! impl block, a trait impl, a by-value receiver, `&mut self` in a stateless actor,
//! `instances(n)` of a stateful actor, async methods, an unknown argument or visibility, a
//! method that would hide the reference's own (`stop`, `clone`, ...) or whose generated forms
//! collide with another's (`send` and `tell_send`), and a
//! `pub` actor type whose reference follows a private `fn new`, and the mirror case, a private
//! type with `pub fn new` (each E0446 points at `new`). One
//! test function for every case: each is one `rustc` run against one build of crew.

#[test]
fn refused_actor_shapes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
