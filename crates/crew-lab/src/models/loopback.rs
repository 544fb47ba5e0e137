//! `loopback-limit`: a thread per connection replying from a table, doing no work: the most
//! requests/sec this load generator can see over loopback on this machine.

use crate::fib::fib_fast;

pub(super) fn compute(n: u32) -> Result<u64, String> {
    // Requests are checked against max_n <= MAX_N before they get here.
    fib_fast(n).ok_or_else(|| format!("{n} is above the largest exact fib"))
}
