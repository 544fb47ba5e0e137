//! An actor defined in another crate (`crew_actor_ui::counters`), used here through its
//! generated reference: `#[crew::actor]` makes `CounterRef` as public as `Counter::new`, so a
//! `pub` actor is usable outside its module and crate (it was private: E0446 in any crate that
//! made its actor type `pub`). On a thread and in a worker process (this binary, which finds
//! the other crate's actor by its registered name). `harness = false`: `main` calls
//! `crew::init()` so that the binary can serve as the worker.

use crew::actor::ActorOptions;
use crew_actor_ui::counters::{spawn_counter, Counter, CounterRef};

fn a_public_actor_is_spawned_and_called_from_another_crate() {
    // Named type: the reference is nameable here, not just usable through inference.
    let counter: CounterRef = crew::actor::spawn::<Counter>(40).expect("spawn");
    assert_eq!(counter.incr(2).result().expect("incr"), 42);
    assert_eq!(counter.value().result().expect("value"), 42);
    let other: CounterRef = spawn_counter(1).expect("spawn");
    assert_eq!(other.incr(1).result().expect("incr"), 2);
    let in_process: CounterRef = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(10)
        .expect("spawn in a worker process");
    assert_ne!(in_process.worker_pid(), Some(std::process::id()));
    assert_eq!(in_process.incr(5).result().expect("incr"), 15);
    for actor in [counter, other, in_process] {
        actor.stop().result().expect("stop");
    }
}

fn main() {
    crew::init();
    a_public_actor_is_spawned_and_called_from_another_crate();
    println!("test a_public_actor_is_spawned_and_called_from_another_crate ... ok");
}
