//! An actor defined in another crate (`crew_actor_ui::counters`), used here through its
//! generated reference: `#[crew::actor]` makes `CounterRef` as public as `Counter::new`, so a
//! `pub` actor is usable outside its module and crate (it was private: E0446 in any crate that
//! made its actor type `pub`).

use crew_actor_ui::counters::{spawn_counter, Counter, CounterRef};

#[test]
fn a_public_actor_is_spawned_and_called_from_another_crate() {
    // Named type: the reference is nameable here, not just usable through inference.
    let counter: CounterRef = crew::actor::spawn::<Counter>(40).expect("spawn");
    assert_eq!(counter.incr(2).result().expect("incr"), 42);
    assert_eq!(counter.value().result().expect("value"), 42);
    let other: CounterRef = spawn_counter(1).expect("spawn");
    assert_eq!(other.incr(1).result().expect("incr"), 2);
    counter.stop().result().expect("stop");
    other.stop().result().expect("stop");
}
