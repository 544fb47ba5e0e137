//! The work: naive recursive Fibonacci, on purpose (the CPU-bound load of seed 003).

/// The largest `n` whose `fib(n)` fits a `u64` exactly (`fib(93) = 12200160415121876738`).
///
/// Servers never answer above it (no silent overflow); their own limit, `--max-n`, defaults lower
/// ([`DEFAULT_MAX_N`]) because the naive recursion takes exponential time.
pub const MAX_N: u32 = 93;

/// The default per-server limit on `n`: `fib(40)` takes about half a second of one core in Rust
/// (and a minute in CPython), so one client cannot occupy a core for hours.
pub const DEFAULT_MAX_N: u32 = 40;

/// `fib(n)` by naive recursion, as the seed's `fib.py`: `fib(n) = 1` for `n <= 2`.
///
/// Takes about `fib(n)` calls: fine for the load at `n = 25`, hopeless at `n = 60`.
///
/// ```
/// assert_eq!(crew_lab::fib::fib(10), 55);
/// assert_eq!(crew_lab::fib::fib(1), 1);
/// ```
///
/// # Panics
/// If `n > MAX_N` (in debug builds, by overflow; release builds would wrap and run for years,
/// which is why servers check [`MAX_N`] first).
pub fn fib(n: u32) -> u64 {
    if n <= 2 {
        1
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// `fib(n)` in linear time, for checking replies and for servers that precompute them. `None` above [`MAX_N`].
///
/// ```
/// assert_eq!(crew_lab::fib::fib_fast(93), Some(12_200_160_415_121_876_738));
/// assert_eq!(crew_lab::fib::fib_fast(94), None);
/// ```
pub fn fib_fast(n: u32) -> Option<u64> {
    if n > MAX_N {
        return None;
    }
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 2..n.max(2) {
        (a, b) = (b, a + b);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_and_fast_agree() {
        for n in 0..=27 {
            assert_eq!(Some(fib(n)), fib_fast(n), "n = {n}");
        }
    }

    #[test]
    fn max_n_is_the_exact_bound() {
        assert!(fib_fast(MAX_N).is_some());
        let f92 = fib_fast(92).unwrap();
        let f93 = fib_fast(93).unwrap();
        assert!(f92.checked_add(f93).is_none(), "fib(94) must overflow u64");
    }
}
