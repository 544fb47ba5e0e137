//! Actors: stateful objects whose methods are called as messages, on their own thread or in a
//! worker process, found again by address and uid (xoscar's and Ray's actors, typed).
//!
//! Mark an `impl` block with [`#[crew::actor]`](macro@crate::actor): it implements [`Actor`] and
//! generates a typed, cloneable, serializable reference (`CounterRef` for `Counter`) whose
//! methods mirror the actor's. Every call returns a [`TaskHandle`] to block on or `.await`;
//! `tell_*` forms send without a reply, `try_*` forms never block (they report
//! [`ActorError::Full`]), and `*_async` forms are for async code: they *await* room in a full
//! mailbox instead of blocking the runtime's thread (`counter.incr_async(5).await`).
//!
//! ```
//! use crew::actor::{self, ActorError};
//!
//! struct Counter {
//!     value: u64,
//! }
//!
//! #[crew::actor]
//! impl Counter {
//!     fn new(start: u64) -> Self {
//!         Counter { value: start }
//!     }
//!
//!     fn incr(&mut self, by: u64) -> u64 {
//!         self.value += by;
//!         self.value
//!     }
//!
//!     fn get(&self) -> u64 {
//!         self.value
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let counter = actor::spawn::<Counter>(10)?; // on its own thread
//! assert_eq!(counter.incr(5).result()?, 15);
//! counter.tell_incr(1)?; // fire and forget, in order with the calls above
//! assert_eq!(counter.get().result()?, 16);
//!
//! // Found again by address and uid.
//! let again = actor::lookup::<Counter>(counter.address(), counter.uid())?;
//! assert_eq!(again.get().result()?, 16);
//! counter.stop().result()?; // drains the mailbox, runs the stop hook
//! assert!(matches!(
//!     actor::lookup::<Counter>(counter.address(), counter.uid()),
//!     Err(ActorError::NotFound { .. })
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! # Design note
//!
//! **Semantics.** An actor has one bounded mailbox (first in, first out). `&mut self` methods
//! run one at a time; `&self` methods run concurrently with each other when the actor has
//! [`max_concurrency`](ActorOptions::max_concurrency) above 1 (the state sits behind a
//! read-write lock; a thread takes its call from the mailbox and its lock *in mailbox order*, so
//! calls from one caller start in the order sent and a `&mut self` call waits for the `&self`
//! calls before it). A stateless actor (`#[crew::actor(stateless)]`, no `&mut self` method,
//! checked at compile time) may run as [`instances(n)`](ActorOptions::instances): `n` copies
//! sharing the one mailbox. Nothing bypasses the mailbox's bound: calls and `tell`s block,
//! `*_async` calls wait without blocking (see the `room` module), and `try_*` reports `Full`
//! while it is full.
//!
//! **Lifecycle.** The constructor (`fn new(..) -> Self`) takes serde arguments, so the same
//! arguments build the actor on a thread, in a worker process, or again after a crash. The
//! start hook (`on_start`) runs before any call; if it fails, creation fails with its error.
//! [`stop`](ActorRef::stop) queues a stop behind the calls already in the mailbox, runs the
//! stop hook (`on_stop`, infallible) and ends the actor; [`kill`](ActorRef::kill) ends it after
//! the call running now, fails the queued calls with [`ActorError::Stopped`] and runs no hook.
//! A method that panics fails its call with [`TaskError::Panicked`]; the actor lives on with
//! its state as the method left it (as in xoscar and Ray). An actor in a worker process whose
//! process dies (a crash, a `SIGKILL`) is built again from its constructor, up to
//! [`max_restarts`](ActorOptions::max_restarts) times: the calls in flight fail with
//! [`TaskError::WorkerDied`], the calls not yet sent go to the new instance.
//!
//! An actor lives until it is stopped or killed (or its process ends): dropping every
//! reference does *not* stop it, since it stays findable by address and uid (as xoscar's
//! actors, unlike Ray's non-detached ones). Stop what you spawn; each thread actor holds
//! `instances × max_concurrency` threads until then.
//!
//! **Addressing.** Every actor is registered under an [`Address`] and a uid (given, or made
//! up). [`lookup`] finds it; a uid taken twice at one address is [`ActorError::DuplicateUid`]
//! at creation; a missing one is [`ActorError::NotFound`] at once. A reference serializes as
//! `(address, uid, actor name)` and deserializes by lookup in the receiving process: a
//! reference to an actor that process does not know fails every call with `NotFound`.
//!
//! **Wire.** Calls to an actor in another process travel as the frames of the task layer's
//! [codec](crate::task::codec) (`[header][payload]`, postcard), the method named by its index
//! and the argument tuple as payload; see the `process` placement module for the protocol.
//! The remote placement (a cluster node, feature `cluster`: `ActorOptions::on_cluster`,
//! `find`) is one more transport behind [`ActorRef`]: a NATS subject per `(address, uid)`,
//! these same frames, and the cluster's key-value registry answering `NotFound` /
//! `DuplicateUid`; see the `remote` module's design note.
//!
//! **Deadlock guard.** An actor that calls itself and waits would wait forever: such a call
//! fails at once with [`ActorError::SelfCall`] (a `tell` to itself is allowed, but reports
//! `Full` instead of blocking on its own full mailbox). A thread actor with several threads
//! and only `&self` methods (a stateless pool of [`instances(n)`](ActorOptions::instances), or
//! [`max_concurrency`](ActorOptions::max_concurrency) above 1) may call itself as long as one
//! of its threads stays free to serve the call: an instance calling its own pool is served by
//! another instance (as a Ray actor with `max_concurrency` above 1 may call itself). Self-calls
//! not yet settled are counted, at most one fewer than the threads; a self-call beyond that
//! (every other thread already waits on one) fails with `SelfCall` rather than hang. An actor
//! with a `&mut self` method always gets `SelfCall` (the call would wait for the caller's own
//! state lock). Cycles through other actors are not
//! detected: if actor A blocks on a call to B while B's method blocks on a call back to A, B's
//! call waits in A's mailbox behind the call A is running, and both wait forever (or until a
//! `result_timeout` gives up, which leaves B's call queued in A). Break such cycles: B sends
//! with `tell_*` instead of waiting, A does not wait on B from inside a method (hand B's
//! handle back, or use `tell_*` and have B report back), or the cyclic methods take `&self`
//! on an actor with `max_concurrency` above 1 so that another thread can serve the call.

mod caller;
mod ending;
mod local;
mod process;
mod registry;
#[cfg(feature = "cluster")]
mod remote;
mod room;
mod stream;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TaskError;
use crate::executor::Message;
use crate::task::TaskHandle;

pub use registry::lookup;
#[cfg(feature = "cluster")]
pub use remote::PROBE_AFTER;
pub use stream::ActorStream;

#[doc(hidden)]
pub use process::{host_actor, HostTransport};
#[cfg(feature = "cluster")]
pub(crate) use remote::serve_actors as serve_cluster_actors;

/// The default mailbox bound: calls queued (and, for a process actor, in flight) at most.
pub const DEFAULT_MAILBOX: usize = 1024;

/// An actor: what `#[crew::actor]` implements, and what you implement by hand without it.
///
/// By hand: give the constructor's argument type and the method table, and call methods
/// through [`ActorRef::ask`] and friends with the method's index in [`methods`](Actor::methods).
///
/// ```
/// use crew::actor::{self, Actor, ActorRef, Method, MethodCall};
///
/// struct Adder {
///     total: i64,
/// }
///
/// fn add(actor: &mut Adder, by: i64) -> i64 {
///     actor.total += by;
///     actor.total
/// }
///
/// impl Actor for Adder {
///     type Args = i64;
///     type Ref = ActorRef<Adder>;
///     const NAME: &'static str = "docs::Adder";
///     fn new(start: i64) -> Self {
///         Adder { total: start }
///     }
///     fn methods() -> &'static [Method<Self>] {
///         static METHODS: [Method<Adder>; 1] = [Method {
///             name: "add",
///             argument: std::any::type_name::<i64>,
///             result: std::any::type_name::<i64>,
///             call: MethodCall::Exclusive(|actor, input| {
///                 let by = crew::task::codec::decode(input)?;
///                 crew::task::codec::encode(&add(actor, by))
///             }),
///         }];
///         &METHODS
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let adder = actor::spawn::<Adder>(1)?;
/// assert_eq!(adder.ask(0, 41, add).result()?, 42);
/// adder.stop().result()?;
/// # Ok(())
/// # }
/// ```
pub trait Actor: Sized + Send + Sync + 'static {
    /// The constructor's arguments (a tuple for several, `()` for none).
    type Args: Message + Clone + Sync;
    /// The typed reference handed out by [`spawn`]: `ActorRef<Self>` itself, or a wrapper
    /// with a method per actor method (what `#[crew::actor]` generates).
    type Ref: From<ActorRef<Self>>;
    /// The stable name a worker process finds the actor type by.
    const NAME: &'static str;

    /// Builds the actor from its arguments.
    fn new(args: Self::Args) -> Self;

    /// Runs before any call; an error (or a panic, here or in the constructor) fails the
    /// actor's creation with [`ActorError::StartFailed`].
    ///
    /// # Errors
    /// Why the actor cannot start.
    fn on_start(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Runs at a graceful [`stop`](ActorRef::stop), after the mailbox drained; never at a kill
    /// or crash. It cannot fail: a panic in it is reported on standard error (the worker's,
    /// for an actor in a worker process), and the actor still ends and `stop()` succeeds.
    fn on_stop(&mut self) {}

    /// The methods callable from another process, by index: what the worker dispatches on.
    fn methods() -> &'static [Method<Self>];
}

/// A stateless actor: no `&mut self` method, so copies of it may serve one mailbox
/// ([`ActorOptions::instances`]). `#[crew::actor(stateless)]` implements it and refuses a
/// `&mut self` method at compile time.
pub trait StatelessActor: Actor {}

/// One method of an actor, for dispatch by index from encoded arguments.
pub struct Method<A> {
    /// The method's name.
    pub name: &'static str,
    /// `std::any::type_name` of the argument tuple.
    pub argument: fn() -> &'static str,
    /// `std::any::type_name` of the result (the item type of a stream).
    pub result: fn() -> &'static str,
    /// How to call it.
    pub call: MethodCall<A>,
}

impl<A> fmt::Debug for Method<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("argument", &(self.argument)())
            .field("result", &(self.result)())
            .finish_non_exhaustive()
    }
}

/// An iterator of encoded stream items.
pub type EncodedItems = Box<dyn Iterator<Item = Result<Vec<u8>, String>> + Send>;

/// How a [`Method`] is called on encoded arguments (panics propagate to the runtime, which
/// reports them as [`TaskError::Panicked`]).
pub enum MethodCall<A> {
    /// A `&mut self` method returning one value.
    Exclusive(fn(&mut A, &[u8]) -> Result<Vec<u8>, String>),
    /// A `&self` method returning one value.
    Shared(fn(&A, &[u8]) -> Result<Vec<u8>, String>),
    /// A `&mut self` method returning a stream of values.
    ExclusiveStream(fn(&mut A, &[u8]) -> Result<EncodedItems, String>),
    /// A `&self` method returning a stream of values.
    SharedStream(fn(&A, &[u8]) -> Result<EncodedItems, String>),
}

impl<A> fmt::Debug for MethodCall<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MethodCall::Exclusive(_) => "Exclusive",
            MethodCall::Shared(_) => "Shared",
            MethodCall::ExclusiveStream(_) => "ExclusiveStream",
            MethodCall::SharedStream(_) => "SharedStream",
        })
    }
}

/// Where actors live: a namespace for uids. [`Address::local`] is this process's threads;
/// [`Address::processes`] its worker-process actors; any other name is yours to choose (a
/// remote placement will use pool and node names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address(String);

impl Address {
    /// An address of your own naming.
    pub fn new(name: impl Into<String>) -> Self {
        Address(name.into())
    }

    /// Actors on threads of this process (the default of [`spawn`]).
    pub fn local() -> Self {
        Address::new("local")
    }

    /// Actors in worker processes of this process (the default of [`ActorOptions::in_process`]).
    pub fn processes() -> Self {
        Address::new("processes")
    }

    /// Actors on any worker of a cluster (the default of
    /// `ActorOptions::on_cluster`, feature `cluster`); a worker's name is the address of that
    /// worker alone.
    pub fn cluster() -> Self {
        Address::new("cluster")
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Address {
    fn from(name: &str) -> Self {
        Address::new(name)
    }
}

/// Why an actor could not be created, found or called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// No actor has this uid at this address (never created, or stopped).
    #[error("no actor `{uid}` at address `{address}` (never created, or stopped); create it first or check the uid")]
    NotFound {
        /// The address looked in.
        address: Address,
        /// The uid looked for.
        uid: String,
    },
    /// A reference to a cluster actor was read from bytes (serde): it cannot reach the
    /// cluster by itself; look the actor up with `find` on a `Cluster` (feature `cluster`).
    #[error("actor `{uid}` at `{address}` is on a cluster, which a reference read from bytes cannot reach; look it up with crew::actor::find(&cluster, &address, uid)")]
    OnCluster {
        /// The actor's address.
        address: Address,
        /// The actor's uid.
        uid: String,
    },
    /// The actor at this address and uid is of another type.
    #[error("actor `{uid}` at `{address}` is a `{found}`, not a `{wanted}`; look it up as a `{found}`, or give the `{wanted}` another uid")]
    WrongType {
        /// The address.
        address: Address,
        /// The uid.
        uid: String,
        /// The actor's type name.
        found: String,
        /// The type asked for.
        wanted: String,
    },
    /// An actor with this uid already exists at this address.
    #[error("an actor `{uid}` already exists at address `{address}`; choose another uid or look the existing one up")]
    DuplicateUid {
        /// The address.
        address: Address,
        /// The uid taken twice.
        uid: String,
    },
    /// The constructor panicked, the start hook failed or panicked, or the worker process
    /// could not host the actor: nothing was created, the uid is free again.
    #[error("actor `{uid}` failed to start: {message}; it was not created (fix the cause and spawn it again)")]
    StartFailed {
        /// The actor's uid.
        uid: String,
        /// The hook's error.
        message: String,
    },
    /// The mailbox is at its bound (only from `try_*` calls, and a `tell` to oneself).
    #[error("the mailbox of actor `{uid}` is full; retry later or use the blocking call")]
    Full {
        /// The actor's uid.
        uid: String,
    },
    /// The actor was stopped or killed (or its process died past `max_restarts`).
    #[error("actor `{uid}` is stopped: {reason}; it takes no more calls (spawn it again to have it back)")]
    Stopped {
        /// The actor's uid.
        uid: String,
        /// How it ended.
        reason: String,
    },
    /// The actor called itself and would have waited for itself forever: no thread of it was
    /// free to serve the call (see the deadlock guard in the [module docs](self)).
    #[error("actor `{uid}` called its own method `{method}` and would wait for itself forever (none of its threads is free to serve the call); call the method on self directly, send it with tell_{method}, or, for a stateless pool, give it more instances")]
    SelfCall {
        /// The actor's uid.
        uid: String,
        /// The method called.
        method: String,
    },
    /// Options that cannot work together, or a placement that cannot be made.
    #[error("invalid actor options: {0}")]
    Invalid(String),
    /// A call to a cluster actor is larger than one NATS message may be (the server's
    /// `max_payload`, 1 MiB by default): nothing was sent.
    #[error("a call to actor `{uid}` carries {bytes} bytes of arguments, more than the {limit} bytes one message of the cluster's NATS server holds (its max_payload, less crew's framing); pass a reference to the data instead (a path, an object-store key), or raise the server's max_payload")]
    TooLarge {
        /// The actor's uid.
        uid: String,
        /// The encoded arguments' size.
        bytes: usize,
        /// The most argument bytes one message holds: the server's `max_payload` less the
        /// call's frame prefix and header.
        limit: usize,
    },
    /// The connection to the cluster's NATS server failed under a call to a cluster actor
    /// (the server went away, or the reference's connection closed); the message says what
    /// became of the call (not sent, or in flight: it may have run) and whether the
    /// reference can be used again.
    #[error("actor `{uid}`: the connection to the cluster's NATS server failed: {message}")]
    ConnectionLost {
        /// The actor's uid.
        uid: String,
        /// What happened, what became of the call and what to do.
        message: String,
    },
    /// A call's arguments could not be encoded to reach an actor in another process (their
    /// `Serialize` failed): nothing was sent.
    #[error("the arguments of a call to actor `{uid}` cannot be encoded ({message}); a process or cluster actor gets every argument through serde: fix the argument's Serialize implementation or pass a value it can encode")]
    Encode {
        /// The actor's uid.
        uid: String,
        /// The encoder's error.
        message: String,
    },
}

/// A handle that is already settled with `error` (calls fail at once, never hang).
pub(crate) fn failed<T: 'static>(error: TaskError) -> TaskHandle<T> {
    let (handle, completer) = crate::task::pair();
    completer.complete(Err(error));
    handle
}

/// Where the actor behind a reference runs.
pub(crate) enum Target<A: Actor> {
    Local(Arc<local::Local<A>>),
    /// In a worker process or on a cluster worker: the caller side both share.
    Remote(Arc<dyn caller::Transport>),
    Missing(ActorError),
}

/// A reference to an actor: clone it, send it to another thread, serialize it.
///
/// `#[crew::actor]` wraps it in a typed reference whose methods mirror the actor's; the
/// methods here ([`stop`](Self::stop), [`kill`](Self::kill), [`uid`](Self::uid), ...) are
/// reachable from that wrapper too.
pub struct ActorRef<A: Actor> {
    inner: Arc<RefInner<A>>,
}

pub(crate) struct RefInner<A: Actor> {
    address: Address,
    uid: String,
    target: Target<A>,
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("actor", &A::NAME)
            .field("address", &self.inner.address)
            .field("uid", &self.inner.uid)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct WireRef {
    address: Address,
    uid: String,
    actor: String,
    /// The actor lives on a cluster: this process's registry cannot know it.
    on_cluster: bool,
}

impl<A: Actor> Serialize for ActorRef<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef {
            address: self.inner.address.clone(),
            uid: self.inner.uid.clone(),
            actor: A::NAME.to_owned(),
            on_cluster: matches!(&self.inner.target, Target::Remote(remote) if remote.on_cluster()),
        }
        .serialize(serializer)
    }
}

impl<'de, A: Actor> Deserialize<'de> for ActorRef<A> {
    /// Looks the actor up in this process; a reference to an actor this process does not know
    /// still deserializes, and every call on it fails with [`ActorError::NotFound`] (or
    /// [`ActorError::OnCluster`] for a cluster actor: look it up with `find`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireRef::deserialize(deserializer)?;
        if wire.actor != A::NAME {
            return Err(serde::de::Error::custom(format!(
                "a reference to a `{}` actor cannot be read as a `{}` one",
                wire.actor,
                A::NAME
            )));
        }
        Ok(
            registry::lookup_ref::<A>(&wire.address, &wire.uid).unwrap_or_else(|error| {
                let error = match error {
                    ActorError::NotFound { address, uid } if wire.on_cluster => {
                        ActorError::OnCluster { address, uid }
                    }
                    other => other,
                };
                ActorRef::new(wire.address, wire.uid, Target::Missing(error))
            }),
        )
    }
}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn new(address: Address, uid: String, target: Target<A>) -> Self {
        Self {
            inner: Arc::new(RefInner {
                address,
                uid,
                target,
            }),
        }
    }

    /// The address the actor is registered at.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The actor's uid.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The process id of the worker hosting the actor now (`None` on a thread of this process).
    pub fn worker_pid(&self) -> Option<u32> {
        match &self.inner.target {
            Target::Remote(remote) => remote.pid(),
            _ => None,
        }
    }

    /// How many times the actor's worker process was restarted after dying.
    pub fn restarts(&self) -> u32 {
        match &self.inner.target {
            Target::Remote(remote) => remote.restarts(),
            _ => 0,
        }
    }

    fn method_name(&self, index: u32) -> &'static str {
        A::methods()
            .get(index as usize)
            .map_or("?", |method| method.name)
    }

    /// Calls the `&mut self` method number `index` of [`Actor::methods`]; `run` is the same
    /// method as a function, used when the actor is on a thread here (no encoding).
    pub fn ask<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
    ) -> TaskHandle<R> {
        ask_result(self.exclusive(index, args, run, Mode::Blocking))
    }

    /// Calls the `&self` method number `index`; see [`ask`](Self::ask).
    pub fn ask_shared<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
    ) -> TaskHandle<R> {
        ask_result(self.shared(index, args, run, Mode::Blocking))
    }

    /// Like [`ask`](Self::ask) for async code: waits for room in a full mailbox without
    /// blocking the runtime's thread, then for the result. The call is queued when the
    /// future is first polled (so calls from one task run in the order awaited).
    ///
    /// # Errors
    /// The call's failure, or why the actor cannot be called ([`TaskError::Actor`]).
    pub fn ask_async<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
    ) -> impl Future<Output = Result<R, TaskError>> + Send + 'static {
        let this = self.clone();
        async move {
            let handle = match &this.inner.target {
                Target::Local(local) => {
                    let call = local::Call::<_, fn(&A) -> R>::Exclusive(move |actor: &mut A| {
                        run(actor, args)
                    });
                    local.call_async(this.method_name(index), call).await
                }
                Target::Remote(remote) => remote.call_async(index, args).await,
                Target::Missing(error) => Err(error.clone()),
            };
            handle?.await
        }
    }

    /// Like [`ask_shared`](Self::ask_shared) for async code; see [`ask_async`](Self::ask_async).
    ///
    /// # Errors
    /// The call's failure, or why the actor cannot be called ([`TaskError::Actor`]).
    pub fn ask_shared_async<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
    ) -> impl Future<Output = Result<R, TaskError>> + Send + 'static {
        let this = self.clone();
        async move {
            let handle = match &this.inner.target {
                Target::Local(local) => {
                    let call = local::Call::<fn(&mut A) -> R, _>::Shared(move |actor: &A| {
                        run(actor, args)
                    });
                    local.call_async(this.method_name(index), call).await
                }
                Target::Remote(remote) => remote.call_async(index, args).await,
                Target::Missing(error) => Err(error.clone()),
            };
            handle?.await
        }
    }

    /// Like [`ask`](Self::ask), but never blocks: [`ActorError::Full`] when the mailbox is full.
    ///
    /// # Errors
    /// `Full`, or why the actor cannot be called (stopped, not found).
    pub fn try_ask<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
    ) -> Result<TaskHandle<R>, ActorError> {
        self.exclusive(index, args, run, Mode::Try)
            .map(|handle| handle.expect("a call has a handle"))
    }

    /// Like [`ask_shared`](Self::ask_shared), but never blocks.
    ///
    /// # Errors
    /// `Full`, or why the actor cannot be called (stopped, not found).
    pub fn try_ask_shared<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
    ) -> Result<TaskHandle<R>, ActorError> {
        self.shared(index, args, run, Mode::Try)
            .map(|handle| handle.expect("a call has a handle"))
    }

    /// Sends a `&mut self` call without waiting for its result (blocks while the mailbox is
    /// full). A failure of the method is dropped.
    ///
    /// # Errors
    /// Why the call could not be queued (stopped, not found; `Full` for a tell to oneself).
    pub fn tell<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
    ) -> Result<(), ActorError> {
        self.exclusive(index, args, run, Mode::Tell).map(drop)
    }

    /// Sends a `&self` call without waiting for its result; see [`tell`](Self::tell).
    ///
    /// # Errors
    /// Why the call could not be queued.
    pub fn tell_shared<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
    ) -> Result<(), ActorError> {
        self.shared(index, args, run, Mode::Tell).map(drop)
    }

    /// Like [`tell`](Self::tell) for async code: waits for room in a full mailbox without
    /// blocking the runtime's thread, then returns once the call is queued (not run). A tell
    /// an actor sends itself does not wait: [`ActorError::Full`] when its mailbox is full.
    ///
    /// # Errors
    /// Why the call could not be queued (stopped, not found; `Full` for a tell to oneself).
    pub fn tell_async<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
    ) -> impl Future<Output = Result<(), ActorError>> + Send + 'static {
        let this = self.clone();
        async move {
            match &this.inner.target {
                Target::Local(local) => {
                    let call = local::Call::<_, fn(&A) -> R>::Exclusive(move |actor: &mut A| {
                        run(actor, args)
                    });
                    local.tell_async(this.method_name(index), call).await
                }
                Target::Remote(remote) => remote.tell_async(index, args).await,
                Target::Missing(error) => Err(error.clone()),
            }
        }
    }

    /// Like [`tell_shared`](Self::tell_shared) for async code; see
    /// [`tell_async`](Self::tell_async).
    ///
    /// # Errors
    /// Why the call could not be queued.
    pub fn tell_shared_async<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
    ) -> impl Future<Output = Result<(), ActorError>> + Send + 'static {
        let this = self.clone();
        async move {
            match &this.inner.target {
                Target::Local(local) => {
                    let call = local::Call::<fn(&mut A) -> R, _>::Shared(move |actor: &A| {
                        run(actor, args)
                    });
                    local.tell_async(this.method_name(index), call).await
                }
                Target::Remote(remote) => remote.tell_async(index, args).await,
                Target::Missing(error) => Err(error.clone()),
            }
        }
    }

    /// Calls a streaming `&mut self` method: its items arrive at the caller as an iterator and
    /// an async stream.
    pub fn ask_stream<Args: Message, T: Message, I>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> I,
    ) -> ActorStream<T>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        match &self.inner.target {
            Target::Local(local) => {
                let call = local::Call::<_, fn(&A) -> stream::LocalItems<T>>::Exclusive(
                    move |actor: &mut A| -> stream::LocalItems<T> { Box::new(run(actor, args)) },
                );
                ActorStream::from_local(local.call(self.method_name(index), call, Mode::Blocking))
            }
            Target::Remote(remote) => remote.stream(index, &args),
            Target::Missing(error) => ActorStream::failed(error.clone().into()),
        }
    }

    /// Calls a streaming `&self` method; see [`ask_stream`](Self::ask_stream).
    pub fn ask_stream_shared<Args: Message, T: Message, I>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> I,
    ) -> ActorStream<T>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        match &self.inner.target {
            Target::Local(local) => {
                let call = local::Call::<fn(&mut A) -> stream::LocalItems<T>, _>::Shared(
                    move |actor: &A| -> stream::LocalItems<T> { Box::new(run(actor, args)) },
                );
                ActorStream::from_local(local.call(self.method_name(index), call, Mode::Blocking))
            }
            Target::Remote(remote) => remote.stream(index, &args),
            Target::Missing(error) => ActorStream::failed(error.clone().into()),
        }
    }

    fn exclusive<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&mut A, Args) -> R,
        mode: Mode,
    ) -> Result<Option<TaskHandle<R>>, ActorError> {
        match &self.inner.target {
            Target::Local(local) => {
                let call =
                    local::Call::<_, fn(&A) -> R>::Exclusive(move |actor: &mut A| run(actor, args));
                local.call(self.method_name(index), call, mode)
            }
            Target::Remote(remote) => remote.call(index, &args, mode),
            Target::Missing(error) => Err(error.clone()),
        }
    }

    fn shared<Args: Message, R: Message>(
        &self,
        index: u32,
        args: Args,
        run: fn(&A, Args) -> R,
        mode: Mode,
    ) -> Result<Option<TaskHandle<R>>, ActorError> {
        match &self.inner.target {
            Target::Local(local) => {
                let call =
                    local::Call::<fn(&mut A) -> R, _>::Shared(move |actor: &A| run(actor, args));
                local.call(self.method_name(index), call, mode)
            }
            Target::Remote(remote) => remote.call(index, &args, mode),
            Target::Missing(error) => Err(error.clone()),
        }
    }

    /// Stops the actor gracefully: the calls already in its mailbox run, then the stop hook,
    /// then it ends and is unregistered. The handle settles when it has; later calls fail with
    /// [`ActorError::Stopped`]. `stop` never blocks, not even on a full mailbox: it returns
    /// the handle at once and the stop queues behind the bound (the actor ends once the calls
    /// in its mailbox ran). An actor stopping itself must not wait on the handle, which
    /// settles after its current call returned.
    pub fn stop(&self) -> TaskHandle<()> {
        match &self.inner.target {
            Target::Local(local) => local.stop(false),
            Target::Remote(remote) => remote.stop(false),
            Target::Missing(error) => failed(error.clone().into()),
        }
    }

    /// Ends the actor now: the call running finishes (a thread cannot be interrupted; a worker
    /// process is killed), the queued calls fail with [`ActorError::Stopped`], no hook runs.
    pub fn kill(&self) -> TaskHandle<()> {
        match &self.inner.target {
            Target::Local(local) => local.stop(true),
            Target::Remote(remote) => remote.stop(true),
            Target::Missing(error) => failed(error.clone().into()),
        }
    }
}

fn ask_result<R: 'static>(result: Result<Option<TaskHandle<R>>, ActorError>) -> TaskHandle<R> {
    match result {
        Ok(handle) => handle.expect("a call has a handle"),
        Err(error) => failed(error.into()),
    }
}

/// How a call waits for room in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Block while full; the caller wants the result.
    Blocking,
    /// Report `Full` at once.
    Try,
    /// Block while full; nobody wants the result.
    Tell,
    /// A process actor's permit is held already (an async call waited for it).
    Held,
    /// A process actor's permit is held already (an async tell waited for it).
    HeldTell,
}

impl Mode {
    /// Whether the caller holds a process actor's permit already (to give back on failure).
    pub(crate) fn holds_permit(self) -> bool {
        matches!(self, Mode::Held | Mode::HeldTell)
    }
}

/// Finds the actor `uid` at `address` on `cluster` (created there by any process with
/// [`ActorOptions::on_cluster`]), as the typed reference: the same methods as every placement.
/// Calls from this reference are bounded by a mailbox of [`DEFAULT_MAILBOX`] calls in flight.
///
/// Each reference this returns opens a NATS connection of its own, driven by the caller that
/// blocks on it (so a blocking call wakes this process once): find an actor once and clone
/// the reference (clones share the connection) rather than finding it again for every call.
///
/// # Errors
/// [`ActorError::NotFound`] at once when there is none (never created, stopped, or its worker
/// died); [`ActorError::WrongType`] when it is another actor type; [`ActorError::Invalid`]
/// when the cluster has no NATS server or fails.
#[cfg(feature = "cluster")]
pub fn find<A: Actor>(
    cluster: &crate::cluster::Cluster,
    address: &Address,
    uid: &str,
) -> Result<A::Ref, ActorError> {
    let link = remote::Link::of(cluster)?;
    remote::find::<A>(&link, address, uid, DEFAULT_MAILBOX).map(A::Ref::from)
}

/// Creates an actor on its own thread with default options, at [`Address::local`] under a
/// generated uid. See [`ActorOptions`] for the rest.
///
/// # Errors
/// [`ActorError::StartFailed`] when the start hook fails.
pub fn spawn<A: Actor>(args: A::Args) -> Result<A::Ref, ActorError> {
    ActorOptions::<A>::new().spawn(args)
}

/// How and where to create an actor: one builder for every placement.
///
/// ```
/// use crew::actor::{ActorOptions, Address};
///
/// struct Greeter;
///
/// #[crew::actor(stateless)]
/// impl Greeter {
///     fn new(_: ()) -> Self {
///         Greeter
///     }
///
///     fn greet(&self, name: String) -> String {
///         format!("hello, {name}")
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let greeters = ActorOptions::<Greeter>::new()
///     .address(Address::new("frontend"))
///     .uid("greeters")
///     .instances(4) // stateless: four copies share one mailbox
///     .mailbox(64)
///     .spawn(())?;
/// assert_eq!(greeters.greet("crew".into()).result()?, "hello, crew");
/// greeters.stop().result()?;
/// # Ok(())
/// # }
/// ```
pub struct ActorOptions<A: Actor> {
    pub(crate) address: Option<Address>,
    pub(crate) uid: Option<String>,
    pub(crate) mailbox: usize,
    pub(crate) instance_count: usize,
    pub(crate) max_concurrency: usize,
    pub(crate) process: Option<process::ProcessOptions>,
    /// The builder methods that asked for a worker process (`in_process`, `max_restarts`,
    /// `worker_program`), named in the error when they meet `on_cluster`.
    process_asked_by: Vec<&'static str>,
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<Result<remote::Link, ActorError>>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> fmt::Debug for ActorOptions<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorOptions")
            .field("actor", &A::NAME)
            .field("address", &self.address)
            .field("uid", &self.uid)
            .field("mailbox", &self.mailbox)
            .field("instances", &self.instance_count)
            .field("max_concurrency", &self.max_concurrency)
            .field("process", &self.process)
            .finish()
    }
}

impl<A: Actor> Default for ActorOptions<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Actor> ActorOptions<A> {
    /// On its own thread, at [`Address::local`], a generated uid, a mailbox of
    /// [`DEFAULT_MAILBOX`], one instance, one call at a time.
    pub fn new() -> Self {
        Self {
            address: None,
            uid: None,
            mailbox: DEFAULT_MAILBOX,
            instance_count: 1,
            max_concurrency: 1,
            process: None,
            process_asked_by: Vec::new(),
            #[cfg(feature = "cluster")]
            cluster: None,
            _actor: PhantomData,
        }
    }

    /// Registers the actor at `address` (default [`Address::local`], or
    /// [`Address::processes`] in a worker process).
    pub fn address(mut self, address: impl Into<Address>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Registers the actor under `uid` (default: the actor's name and a number).
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Bounds the mailbox at `calls` (at least 1): calls queued and, in a worker process, in
    /// flight.
    pub fn mailbox(mut self, calls: usize) -> Self {
        self.mailbox = calls;
        self
    }

    /// Lets up to `n` calls run at once: `&self` calls run concurrently, each `&mut self` call
    /// alone (Ray's `max_concurrency`). Default 1.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Places the actor in a worker process of its own (this executable started again, as a
    /// [`ProcessPool`](crate::ProcessPool) worker is; `main` must call
    /// [`crew::init()`](crate::init) first). A crash restarts it from its constructor.
    pub fn in_process(mut self) -> Self {
        self.process_options("in_process()");
        self
    }

    /// The process placement's settings, asked for by the builder method `by`.
    fn process_options(&mut self, by: &'static str) -> &mut process::ProcessOptions {
        if !self.process_asked_by.contains(&by) {
            self.process_asked_by.push(by);
        }
        self.process.get_or_insert_with(Default::default)
    }

    /// How many times a worker process that died is replaced (default 3; 0: the actor ends
    /// with its first worker); implies [`in_process`](Self::in_process). A cluster actor
    /// (`on_cluster`, feature `cluster`) is never restarted, so this is refused with it.
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.process_options("max_restarts(..)").max_restarts = n;
        self
    }

    /// The worker program (default: this executable); implies [`in_process`](Self::in_process).
    pub fn worker_program(mut self, program: impl Into<std::path::PathBuf>) -> Self {
        self.process_options("worker_program(..)").program = Some(program.into());
        self
    }

    /// Places the actor on a worker of `cluster` (a [`serve_worker`](crate::cluster::serve_worker)
    /// or `crew worker` whose program has the actor), registered in the cluster under the
    /// address (default [`Address::cluster`]: any worker; a worker's name: that worker) and
    /// the uid; [`find`] reaches it from any process. With
    /// [`instances(n)`](Self::instances), `n` members on the workers serving the address share
    /// the calls (a NATS queue group).
    ///
    /// ```no_run
    /// # struct Counter { value: u64 }
    /// # #[crew::actor]
    /// # impl Counter {
    /// #     fn new(start: u64) -> Self { Counter { value: start } }
    /// #     fn incr(&mut self, by: u64) -> u64 { self.value += by; self.value }
    /// # }
    /// use crew::actor::{self, ActorOptions, Address};
    /// use crew::cluster::Cluster;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = Cluster::local(2)?;
    /// let counter = ActorOptions::<Counter>::new()
    ///     .uid("counter-1")
    ///     .on_cluster(&cluster)
    ///     .spawn(0)?;
    /// // From any process connected to the deployment:
    /// let same = actor::find::<Counter>(&cluster, &Address::cluster(), "counter-1")?;
    /// assert_eq!(same.incr(5).result()?, 5);
    /// counter.stop().result()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "cluster")]
    pub fn on_cluster(mut self, cluster: &crate::cluster::Cluster) -> Self {
        self.cluster = Some(remote::Link::of(cluster));
        self
    }

    /// Creates the actor: builds it, runs its start hook, registers it.
    ///
    /// # Errors
    /// [`ActorError::DuplicateUid`] when the uid is taken at the address;
    /// [`ActorError::StartFailed`] when the start hook fails or the worker cannot start;
    /// [`ActorError::Invalid`] for a zero mailbox, instance or concurrency count, an empty
    /// uid or address (or one with a NUL byte), or `on_cluster` with a process placement's
    /// option (`in_process`, `max_restarts`, `worker_program`).
    pub fn spawn(self, args: A::Args) -> Result<A::Ref, ActorError> {
        for (what, count) in [
            ("mailbox", self.mailbox),
            ("instances", self.instance_count),
            ("max_concurrency", self.max_concurrency),
        ] {
            if count == 0 {
                return Err(ActorError::Invalid(format!(
                    ".{what}(0) leaves the actor no room to work: give .{what}(..) at least 1, \
                     or omit it for the default"
                )));
            }
        }
        // An empty name cannot be looked up sensibly, and a NUL byte cannot name the actor's
        // threads (std panics on it): refused here rather than panicking in the caller.
        for (what, name) in [
            ("uid", self.uid.as_deref()),
            ("address", self.address.as_ref().map(Address::as_str)),
        ] {
            if let Some(name) = name.filter(|name| name.is_empty() || name.contains('\0')) {
                return Err(ActorError::Invalid(format!(
                    "an actor's {what} must be non-empty and without NUL bytes, got {name:?}; \
                     give another, or omit .{what}(..) for the default"
                )));
            }
        }
        #[cfg(feature = "cluster")]
        if let Some(link) = &self.cluster {
            if self.process.is_some() {
                return Err(ActorError::Invalid(on_cluster_with_process_options(
                    &self.process_asked_by,
                )));
            }
            let link = link.clone()?;
            return remote::spawn(&link, &self, args).map(A::Ref::from);
        }
        let address = self.address.clone().unwrap_or_else(|| {
            if self.process.is_some() {
                Address::processes()
            } else {
                Address::local()
            }
        });
        let uid = self.uid.clone().unwrap_or_else(registry::new_uid::<A>);
        let reservation = registry::reserve::<A>(&address, &uid)?;
        let target = match &self.process {
            None => local::Local::start(&uid, args, &self, reservation.clone()).map(Target::Local),
            Some(options) => {
                process::Remote::start(&uid, args, &self, options.clone(), reservation.clone())
                    .map(|remote| Target::Remote(remote))
            }
        };
        let target = match target {
            Ok(target) => target,
            Err(error) => {
                reservation.release();
                return Err(error);
            }
        };
        let actor_ref = ActorRef::new(address, uid, target);
        reservation.fill(actor_ref.clone());
        Ok(A::Ref::from(actor_ref))
    }
}

impl<A: StatelessActor> ActorOptions<A> {
    /// Runs `n` copies of a stateless actor sharing one mailbox (each built from the same
    /// arguments). Only stateless actors have this option, so a stateful one cannot be copied.
    /// On threads, an instance may call its own pool and wait while another instance is free
    /// to serve the call; the call that would leave none free fails with
    /// [`ActorError::SelfCall`] (see the deadlock guard in the [module docs](self)).
    pub fn instances(mut self, n: usize) -> Self {
        self.instance_count = n;
        self
    }
}

/// Why `on_cluster` cannot go with the process placement's options `asked_by` (builder
/// methods as written), and what to do instead.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
fn on_cluster_with_process_options(asked_by: &[&str]) -> String {
    let named: Vec<String> = asked_by.iter().map(|by| format!(".{by}")).collect();
    let mut message = format!(
        "{} place{} the actor in a worker process of this machine, .on_cluster(..) on a \
         cluster worker: choose one placement",
        named.join(" and "),
        if named.len() == 1 { "s" } else { "" }
    );
    if asked_by.contains(&"max_restarts(..)") {
        message.push_str(
            "; a cluster actor is never restarted (when its worker dies its calls fail with \
             WorkerDied, later ones with Stopped): drop .max_restarts(..) and create it again \
             after a death, or drop .on_cluster(..) for a restarted actor in a local worker \
             process",
        );
    } else if asked_by.contains(&"worker_program(..)") {
        message.push_str(
            "; a cluster actor runs in the program of the worker serving its address: drop \
             .worker_program(..) and start that program as a cluster worker instead",
        );
    }
    message
}

/// What `#[crew::actor]` expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::process::ActorEntry;
    pub use super::stream::{encode_items, LocalItems};
}

#[cfg(test)]
mod tests {
    use super::on_cluster_with_process_options;

    /// `.max_restarts(..)` with `.on_cluster(..)` said "either on_cluster or in_process", though
    /// the caller never asked for `in_process`: the error names what they wrote and what to do.
    #[test]
    fn process_options_with_on_cluster_are_named_with_what_to_do() {
        let message = on_cluster_with_process_options(&["max_restarts(..)"]);
        assert!(message.starts_with(".max_restarts(..) places the actor in a worker process"));
        assert!(message.contains("never restarted"), "{message}");
        assert!(message.contains("drop .max_restarts(..)"), "{message}");
        let message = on_cluster_with_process_options(&["in_process()", "worker_program(..)"]);
        assert!(
            message.starts_with(".in_process() and .worker_program(..) place the actor"),
            "{message}"
        );
        assert!(message.contains("drop .worker_program(..)"), "{message}");
    }

    /// Through `spawn`, as a user meets it (a cluster link that is never reached: the options
    /// are refused first).
    #[cfg(feature = "cluster")]
    #[test]
    fn spawn_refuses_max_restarts_on_a_cluster_saying_why() {
        struct Nothing;
        impl super::Actor for Nothing {
            type Args = ();
            type Ref = super::ActorRef<Nothing>;
            const NAME: &'static str = "tests::Nothing";
            fn new((): ()) -> Self {
                Nothing
            }
            fn methods() -> &'static [super::Method<Self>] {
                &[]
            }
        }
        let mut options = super::ActorOptions::<Nothing>::new().max_restarts(5);
        options.cluster = Some(Err(super::ActorError::Invalid("unreached".to_owned())));
        match options.spawn(()) {
            Err(super::ActorError::Invalid(message)) => {
                assert!(message.contains(".max_restarts(..)"), "{message}");
                assert!(message.contains("never restarted"), "{message}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
