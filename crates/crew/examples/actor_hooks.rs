//! Seed 000's xoscar actor, ported: a stateful actor with its hooks (`__post_create__` →
//! `on_start`, `__pre_destroy__` → `on_stop`), created in a worker process at an address with
//! a uid (`xo.create_actor(MyActor, 1, 2, address=..., uid=...)`), found again by address +
//! uid (`xo.actor_ref(address, uid)`) and called (`actor_ref.method_a.send(1, 2)`).
//!
//! Prints:
//! ```text
//! method_a(1, 2) = 3
//! method_b(1, 2) = 4 (calls so far: 2)
//! the actor ran in another process: true
//! stopped
//! ```
//! (The hooks print from the worker process, on its standard error.)

use crew::actor::{self, ActorOptions, Address};

struct MyActor {
    a: i64,
    b: i64,
    calls: u32,
}

#[crew::actor]
impl MyActor {
    fn new(a: i64, b: i64) -> Self {
        MyActor { a, b, calls: 0 }
    }

    /// `__post_create__`: runs before any call; an error here fails the creation.
    fn on_start(&mut self) -> Result<(), String> {
        eprintln!(
            "[actor {}] created with a={}, b={}",
            std::process::id(),
            self.a,
            self.b
        );
        Ok(())
    }

    /// `__pre_destroy__`: runs at a graceful stop, after the mailbox drained.
    fn on_stop(&mut self) {
        eprintln!(
            "[actor {}] destroyed after {} calls",
            std::process::id(),
            self.calls
        );
    }

    fn method_a(&mut self, arg_1: i64, arg_2: i64) -> i64 {
        self.calls += 1;
        arg_1 + arg_2 * self.a
    }

    fn method_b(&mut self, arg_1: i64, arg_2: i64) -> (i64, u32) {
        self.calls += 1;
        (arg_1 * self.b + arg_2, self.calls)
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    crew::init(); // the actor's worker process is this program started again
    let address = Address::new("pool-1");
    let created = ActorOptions::<MyActor>::new()
        .in_process()
        .address(address.clone())
        .uid("UniqueActorName")
        .spawn((1, 2))?;
    // Anywhere in this process: find it by address and uid.
    let actor_ref = actor::lookup::<MyActor>(&address, "UniqueActorName")?;
    println!("method_a(1, 2) = {}", actor_ref.method_a(1, 2).result()?);
    let (b, calls) = actor_ref.method_b(1, 2).result()?;
    println!("method_b(1, 2) = {b} (calls so far: {calls})");
    let pid = actor_ref.pid().result()?;
    println!(
        "the actor ran in another process: {}",
        pid != std::process::id()
    );
    created.stop().result()?;
    println!("stopped");
    Ok(())
}
