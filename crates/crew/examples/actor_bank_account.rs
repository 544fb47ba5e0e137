//! Seed 004's bank balance, with an actor instead of a lock: two threads each deposit and
//! withdraw the same amount many times; every change is a message to the account actor, which
//! applies them one at a time, so the balance ends at 0 with no `Mutex` anywhere.
//!
//! Prints:
//! ```text
//! balance: 0 after 400000 changes, no lock
//! ```

use crew::actor;

const ROUNDS: u32 = 100_000;

struct Account {
    balance: i64,
    changes: u64,
}

#[crew::actor]
impl Account {
    fn new(balance: i64) -> Self {
        Account {
            balance,
            changes: 0,
        }
    }

    /// `balance = balance + n`: read and write happen inside the actor, one message at a time.
    fn deposit(&mut self, n: i64) {
        self.balance += n;
        self.changes += 1;
    }

    fn withdraw(&mut self, n: i64) {
        self.balance -= n;
        self.changes += 1;
    }

    fn balance(&self) -> (i64, u64) {
        (self.balance, self.changes)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    crew::init();
    let account = actor::spawn::<Account>(0)?;
    let run_thread = |n: i64| {
        let account = account.clone();
        std::thread::spawn(move || -> Result<(), actor::ActorError> {
            for _ in 0..ROUNDS {
                // The seed's change_it(n): deposit, then withdraw, fire-and-forget.
                account.tell_deposit(n)?;
                account.tell_withdraw(n)?;
            }
            Ok(())
        })
    };
    let (t1, t2) = (run_thread(5), run_thread(8));
    t1.join().expect("thread 1")?;
    t2.join().expect("thread 2")?;
    // Both threads' tells were in the mailbox before they were joined, so this call, queued
    // after them, sees every change.
    let (balance, changes) = account.balance().result()?;
    println!("balance: {balance} after {changes} changes, no lock");
    account.stop().result()?;
    Ok(())
}
