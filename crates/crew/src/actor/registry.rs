//! The actors of this process by address and uid.
//!
//! A uid is *reserved* before the actor is built (so a duplicate fails before any constructor
//! runs) and *filled* with the reference once it started; the actor releases it when it ends.
//! Each reservation has a token, so a late release never removes a newer actor of the same uid.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::actor::{Actor, ActorError, ActorRef, Address};

struct Slot {
    actor: &'static str,
    token: u64,
    reference: Option<Box<dyn Any + Send + Sync>>,
}

type Table = Mutex<HashMap<(Address, String), Slot>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A uid held for an actor being created (or alive).
#[derive(Debug, Clone)]
pub(crate) struct Reservation {
    address: Address,
    uid: String,
    token: u64,
}

/// A fresh uid: the actor's short name and a number unique in this process.
pub(crate) fn new_uid<A: Actor>() -> String {
    let short = A::NAME.rsplit("::").next().unwrap_or(A::NAME);
    format!("{short}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Reserves `uid` at `address`.
///
/// # Errors
/// [`ActorError::DuplicateUid`] when it is taken.
pub(crate) fn reserve<A: Actor>(address: &Address, uid: &str) -> Result<Reservation, ActorError> {
    let mut table = table().lock();
    let key = (address.clone(), uid.to_owned());
    if table.contains_key(&key) {
        return Err(ActorError::DuplicateUid {
            address: address.clone(),
            uid: uid.to_owned(),
        });
    }
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    table.insert(
        key,
        Slot {
            actor: A::NAME,
            token,
            reference: None,
        },
    );
    Ok(Reservation {
        address: address.clone(),
        uid: uid.to_owned(),
        token,
    })
}

impl Reservation {
    /// Publishes the started actor's reference.
    pub(crate) fn fill<A: Actor>(&self, reference: ActorRef<A>) {
        let mut table = table().lock();
        if let Some(slot) = table.get_mut(&(self.address.clone(), self.uid.clone())) {
            if slot.token == self.token {
                slot.reference = Some(Box::new(reference));
            }
        }
    }

    /// Frees the uid (the actor ended, or never started).
    pub(crate) fn release(&self) {
        let removed = {
            let mut table = table().lock();
            let key = (self.address.clone(), self.uid.clone());
            match table.get(&key) {
                Some(slot) if slot.token == self.token => table.remove(&key),
                _ => None,
            }
        };
        // The reference is dropped outside the lock: it may own the actor's last parts.
        drop(removed);
    }
}

/// The actor `uid` at `address`, as the typed reference [`spawn`](super::spawn) returned.
///
/// ```
/// # struct Echo;
/// # #[crew::actor]
/// # impl Echo {
/// #     fn new(_: ()) -> Self { Echo }
/// #     fn echo(&self, s: String) -> String { s }
/// # }
/// use crew::actor::{self, ActorError, ActorOptions, Address};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let echo = ActorOptions::<Echo>::new().uid("echo").spawn(())?;
/// let found = actor::lookup::<Echo>(&Address::local(), "echo")?;
/// assert_eq!(found.echo("hi".into()).result()?, "hi");
/// assert!(matches!(
///     actor::lookup::<Echo>(&Address::local(), "nobody"),
///     Err(ActorError::NotFound { .. })
/// ));
/// echo.stop().result()?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ActorError::NotFound`] when there is none (never created, stopped, or still starting);
/// [`ActorError::WrongType`] when the actor there is of another type.
pub fn lookup<A: Actor>(address: &Address, uid: &str) -> Result<A::Ref, ActorError> {
    lookup_ref::<A>(address, uid).map(A::Ref::from)
}

pub(crate) fn lookup_ref<A: Actor>(
    address: &Address,
    uid: &str,
) -> Result<ActorRef<A>, ActorError> {
    let table = table().lock();
    let not_found = || ActorError::NotFound {
        address: address.clone(),
        uid: uid.to_owned(),
    };
    let slot = table
        .get(&(address.clone(), uid.to_owned()))
        .ok_or_else(not_found)?;
    let reference = slot.reference.as_ref().ok_or_else(not_found)?;
    reference
        .downcast_ref::<ActorRef<A>>()
        .cloned()
        .ok_or_else(|| ActorError::WrongType {
            address: address.clone(),
            uid: uid.to_owned(),
            found: slot.actor.to_owned(),
            wanted: A::NAME.to_owned(),
        })
}
