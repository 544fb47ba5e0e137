//! The operating-system layer: every system call crew makes about processes and sockets goes
//! through here, on one crate (`rustix`), so that pool workers, [`process::spawn`] and
//! [`subprocess`] share one supervisor instead of each keeping their own.
//!
//! [`process::spawn`]: crate::process::spawn
//! [`subprocess`]: crate::subprocess

pub(crate) mod socket;
pub(crate) mod spin;
pub(crate) mod supervise;
