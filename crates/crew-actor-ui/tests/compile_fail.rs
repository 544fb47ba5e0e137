//! The shapes `#[crew::actor]` refuses, with the errors it gives: generic methods, `&mut self`
//! in a stateless actor, `instances(n)` of a stateful actor, async methods.

#[test]
fn refused_actor_shapes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/actor_ui/*.rs");
}
