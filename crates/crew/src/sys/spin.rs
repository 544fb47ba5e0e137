//! A short, bounded spin before a thread blocks: on a socket (a process worker waiting for its
//! next call, a caller reading its reply), on a [`TaskHandle`] (a blocked caller), on an empty
//! mailbox (a thread actor). One mechanism for every such wait.
//!
//! # Design note
//!
//! **Why.** A thread that blocks and is woken pays two system calls and a trip through the
//! scheduler (on a VM, an inter-processor interrupt): several microseconds, which is most of a
//! small task's or a small actor method's round trip. Between two processes it is more: a
//! blocking ping-pong between two processes (`perf bench sched pipe`) takes 15 µs per round
//! trip on the 2-core VM crew is measured on, 8 µs between two threads. When the other side
//! answers within microseconds (a small task's reply, the next call of a busy caller), looking
//! for it a little while first means nobody sleeps and nobody has to be woken.
//!
//! **Only while it catches.** A spin lasts at most the process's maximum (`CREW_SPIN`, below).
//! A spin that catches its condition is kept up. One that runs out turns spinning off: the
//! next [`OFF_AFTER_MISS`] waits block at once, twice as many after each further miss in a
//! row (up to [`MAX_OFF`]), then one wait spins again to probe. Measured (issue 11), the
//! earlier rule, which kept spinning as long as a blocked wait turned out shorter than the
//! maximum ("a longer spin would have caught it"), spun on a loaded machine in every wait and
//! never caught anything: a thread that wakes its partner (a call's write wakes the worker
//! blocked on its socket) and then spins has the partner queued *on its own CPU* (the kernel
//! places a woken thread next to its waker when no CPU is idle), so the spin only keeps the
//! partner from running and the answer comes just after the spinner blocks; that wait looked
//! short, and the spin went on. Counting only catches, spinning stays on where it works (a
//! quiet machine, both sides spinning on their own CPUs: no one is woken at all) and off where
//! it does not, at the cost of one probe every few hundred waits. Each waiting side keeps its
//! own `Spin` (one per socket and side, an actor thread its own, blocked callers one per
//! thread), so nothing here is shared or synchronized.
//!
//! **Oversubscribed machines.** A spin that saw a long gap between two of its looks (it lost
//! its CPU: [`PREEMPTED`]) stops at once. If its condition is not there, that is a miss like
//! one that ran out (off for a while, longer after each miss in a row); if it is, a catch.
//! (Yielding the CPU between looks, tried first, kept a thread actor's blocking p50 near
//! 7 µs; the pure spin reaches 1–2 µs on a quiet machine.)
//!
//! **Measured: a lost CPU is not a reason to stop spinning** (issue 11, process pool, one
//! task at a time, counted with `CREW_SPIN_STATS`, below). The earlier rule turned spinning
//! off for 64 waits after *any* long gap, caught or not. On the 2-core VM crew is measured on,
//! with both sides on CPUs of their own (run under `chrt -f 1`, so that the other engineers'
//! builds could not take the CPUs; that is what a quiet machine looks like), a gap longer than
//! 8 µs came once every ~150 waits on each side: the host running something else, not a
//! thread of ours. Each one kept the next 64 waits blocking, and since the two sides' pauses
//! rarely overlapped, about half of all waits on each side blocked (parent: 10,000 of 20,000
//! waits off, worker 10,500): p50 17.5–18.7 µs, 0.43–0.51 context switches per round trip
//! for the caller, 0.46–0.55 for the worker. Counting a caught gap as a catch and a missed one
//! as an ordinary miss (16 waits, doubling only in a row), 93% of the caller's waits and 90%
//! of the worker's catch: p50 9.0–9.5 µs, 0.06–0.07 and 0.10 context switches per round trip
//! (three runs each, interleaved). On a machine whose CPUs are all busy (load 9 on 2 cores, no
//! `chrt`), nothing changes: the worker is woken onto the caller's CPU (sampled: the same CPU
//! in 207 of 207 round trips), no spin catches (0 of 20,000; ~40 run out and turn spinning
//! off for the rest), each side switches once per round trip (a one-CPU hand-off, p50
//! 15–19 µs, like `perf bench sched pipe` at 12 µs).
//!
//! **Counters.** With `CREW_SPIN_STATS` set in the environment (process workers inherit it),
//! every wait counts what it did (ready at the first look, blocked at once because spinning
//! was off, caught, ran out, lost its CPU and caught or missed; and the mean spin of a catch);
//! a process pool prints its process's counts to standard error when it is dropped, a worker
//! its own when it exits. Without it a count is one predictable branch.
//!
//! **Knob.** `CREW_SPIN=N` in the environment (microseconds, read once per process; process
//! workers inherit it) sets the maximum spin (a process worker waiting for its next call
//! spins [`CALL_WAIT_STRETCH`] times as long); `CREW_SPIN=0` turns spinning off: every wait
//! blocks at once, as before spinning existed.
//!
//! **Measured: the worker's wait for its next call.** In the lab's `process-pool` server with
//! one client, a request's call comes a loopback round trip (the reply to the client, its next
//! request) after the last reply: more than 20 µs, so the worker's spin ran out every time and
//! turned off, and each call woke the worker on an idle CPU. With `CREW_SPIN=100` for the
//! whole run (two free CPUs, `chrt -f 1`) the server's 1-client rate doubled (9.6k to 20.3k
//! requests/s; Go's rose too, its client being crew's), so the worker, and only it, spins up
//! to five times the maximum (100 µs) while that catches. Same-run ratios to Go (`crew bench
//! --quick`, `chrt -f 1`, two runs each, interleaved), 1/2/4 clients: before 0.80/0.78/0.59
//! and 0.70/0.84/0.58, after 0.92/0.79/0.59 and 0.90/0.87/0.52. The pool's one-task round
//! trip gained too (the worker's spin ran out 20–40 times in 20,000 waits, now 3–4): p50
//! 7.1–7.3 µs, p90 9.4–12 µs, 0.03 and 0.06 context switches per round trip. Without `chrt`,
//! under the other builds (load 3–26), nothing measurable changed either way.
//!
//! [`TaskHandle`]: crate::task::TaskHandle

use std::time::{Duration, Instant};

/// The default maximum spin, unless `CREW_SPIN` says otherwise: above a wake-up's cost on a
/// loaded VM, far below a time slice.
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(20);
/// A gap this long between two looks means the spinning thread lost its CPU.
pub(crate) const PREEMPTED: Duration = Duration::from_micros(8);
/// Waits that block at once after a spin ran out; doubled after each further miss in a row.
pub(crate) const OFF_AFTER_MISS: u32 = 16;
/// The most waits in a row that block at once after misses.
pub(crate) const MAX_OFF: u32 = 512;
/// How many times the process's maximum a process worker waiting for its next call spins
/// ([`Spin::waiting_for_calls`]).
pub(crate) const CALL_WAIT_STRETCH: u32 = 5;
/// Spin-loop hints between two looks. A look may be a system call (a non-blocking read), so
/// the clock is read at every look, not every few.
const PAUSES: u32 = 16;

/// One waiting side's spin state (see the module's note).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spin {
    /// Waits left that block at once: a spin ran out or lost its CPU.
    off_for: u32,
    /// The next miss turns spinning off for `OFF_AFTER_MISS << misses` waits.
    misses: u32,
    /// This side spins up to this many times the process's maximum (0 counts as 1).
    stretch: u32,
}

/// What a [`Spin::spin_until`] that did not see its condition hands to [`Spin::woken`] once
/// the blocking wait is over.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct Missed {
    /// Whether it spun (and ran out), rather than blocking at once.
    spun: bool,
}

impl Spin {
    /// The spin of a process worker waiting for its next call: up to [`CALL_WAIT_STRETCH`]
    /// times the maximum. Its next call comes after the caller's whole turn (reading the
    /// reply, and in a server answering its client and reading the next request: a loopback
    /// round trip, 40–100 µs), not after a small task's run; a worker that sleeps meanwhile
    /// is woken by the call on an idle CPU, which on a VM costs tens of microseconds. Still
    /// only while it catches (a miss turns it off as any other).
    pub(crate) fn waiting_for_calls() -> Self {
        Spin {
            stretch: CALL_WAIT_STRETCH,
            ..Spin::default()
        }
    }

    /// Calls `ready` (a cheap, non-blocking look: `true` when what the thread waits for is
    /// there) until it says yes or the spin is over: `Ok` when ready (at once if it already
    /// was), `Err` when the caller should block and then report [`woken`](Self::woken).
    pub(crate) fn spin_until(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), Missed> {
        if ready() {
            stats::count(stats::READY);
            return Ok(());
        }
        let max = max_spin() * self.stretch.max(1);
        if max.is_zero() {
            stats::count(stats::OFF);
            return Err(Missed { spun: false });
        }
        if self.off_for > 0 {
            self.off_for -= 1;
            stats::count(stats::OFF);
            return Err(Missed { spun: false });
        }
        let since = Instant::now();
        let mut last = since;
        loop {
            for _ in 0..PAUSES {
                std::hint::spin_loop();
            }
            let got = ready();
            let now = Instant::now();
            if now - last > PREEMPTED {
                // Lost the CPU. Caught anyway: a catch (on a VM the gap is often the host
                // running another guest, and on a busy CPU the thread that ran meanwhile is
                // often the partner, answering). Not caught: stop at once, a miss.
                return if got {
                    stats::count(stats::PREEMPTED_CAUGHT);
                    self.misses = 0;
                    Ok(())
                } else {
                    stats::count(stats::PREEMPTED_MISSED);
                    Err(Missed { spun: true })
                };
            }
            last = now;
            if got {
                self.misses = 0;
                stats::count(stats::CAUGHT);
                stats::add_spun(now - since);
                return Ok(());
            }
            if now - since >= max {
                stats::count(stats::RAN_OUT);
                return Err(Missed { spun: true });
            }
        }
    }

    /// The thread blocked after `missed` and was woken: a spin that ran out turns spinning
    /// off for a while.
    pub(crate) fn woken(&mut self, missed: Missed) {
        if missed.spun {
            self.off_for = OFF_AFTER_MISS.saturating_mul(1 << self.misses).min(MAX_OFF);
            if OFF_AFTER_MISS << self.misses < MAX_OFF {
                self.misses += 1;
            }
        }
    }
}

/// The maximum spin of this process: `CREW_SPIN` in microseconds (0 turns spinning off), else
/// [`MAX_SPIN`]. Read once.
fn max_spin() -> Duration {
    static MAX: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("CREW_SPIN")
            .ok()
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map_or(MAX_SPIN, |micros| Duration::from_micros(micros.min(1000)))
    })
}

/// Counters of what the spins of this process did, for measuring (issue 11), kept only when
/// `CREW_SPIN_STATS` is set in the environment (read once; process workers inherit it): then
/// a process pool prints its process's counters when it shuts down, and a worker its own when
/// it exits. Otherwise each count is one well-predicted branch.
pub(crate) mod stats {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// The condition was there at the first look.
    pub(crate) const READY: usize = 0;
    /// Blocked at once: spinning was off.
    pub(crate) const OFF: usize = 1;
    /// Spun and saw the condition.
    pub(crate) const CAUGHT: usize = 2;
    /// Spun the maximum and blocked.
    pub(crate) const RAN_OUT: usize = 3;
    /// Lost the CPU while spinning, and saw the condition after it.
    pub(crate) const PREEMPTED_CAUGHT: usize = 4;
    /// Lost the CPU while spinning, and blocked.
    pub(crate) const PREEMPTED_MISSED: usize = 5;
    const NAMES: [&str; 6] = [
        "ready",
        "off",
        "caught",
        "ran_out",
        "preempted_caught",
        "preempted_missed",
    ];

    static COUNTS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
    static SPUN_NANOS: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn enabled() -> bool {
        static ENABLED: OnceLock<bool> = OnceLock::new();
        *ENABLED.get_or_init(|| std::env::var_os("CREW_SPIN_STATS").is_some())
    }

    #[inline]
    pub(crate) fn count(which: usize) {
        if enabled() {
            COUNTS[which].fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn add_spun(spun: Duration) {
        if enabled() {
            SPUN_NANOS.fetch_add(spun.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// Prints this process's counters (and context switches) on standard error, labelled
    /// `who`, if `CREW_SPIN_STATS` is set.
    pub(crate) fn report(who: &str) {
        if !enabled() {
            return;
        }
        let mut line = format!("crew spin stats {who} pid {}:", std::process::id());
        for (name, count) in NAMES.iter().zip(&COUNTS) {
            line.push_str(&format!(" {name}={}", count.load(Ordering::Relaxed)));
        }
        let caught = COUNTS[CAUGHT].load(Ordering::Relaxed).max(1);
        line.push_str(&format!(
            " mean_catch_ns={}",
            SPUN_NANOS.load(Ordering::Relaxed) / caught
        ));
        // Never `eprintln!`: a closed standard error must not panic a worker's exit or a
        // pool's `Drop`.
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits that block at once until the next spin.
    fn blocks_at_once(spin: &mut Spin) -> u32 {
        let mut waits = 0;
        loop {
            let mut looks = 0;
            let missed = spin.spin_until(|| {
                looks += 1;
                false
            });
            if looks > 1 {
                spin.woken(missed.expect_err("never ready"));
                return waits;
            }
            spin.woken(missed.expect_err("never ready"));
            waits += 1;
        }
    }

    #[test]
    fn a_spin_that_runs_out_turns_spinning_off_longer_after_each_miss_in_a_row() {
        if max_spin().is_zero() {
            return;
        }
        let mut spin = Spin::default();
        // The first wait spins; it runs out (or loses its CPU: a miss all the same).
        assert_eq!(blocks_at_once(&mut spin), 0);
        // Each miss doubles the pause, up to MAX_OFF.
        let mut expected = OFF_AFTER_MISS;
        for _ in 0..8 {
            assert_eq!(blocks_at_once(&mut spin), expected);
            expected = (expected * 2).min(MAX_OFF);
        }
        assert_eq!(expected, MAX_OFF);
    }

    #[test]
    fn a_catch_resets_the_misses() {
        if max_spin().is_zero() {
            return;
        }
        let mut spin = Spin::default();
        assert_eq!(blocks_at_once(&mut spin), 0);
        assert_eq!(blocks_at_once(&mut spin), OFF_AFTER_MISS);
        // The next wait spins (the probe); this time it catches on its second look.
        let mut looks = 0;
        let caught = spin.spin_until(|| {
            looks += 1;
            looks == 2
        });
        if caught.is_ok() {
            assert_eq!(spin.misses, 0, "a catch starts the miss count over");
            // So the next miss turns spinning off for the shortest while again.
            assert_eq!(blocks_at_once(&mut spin), 0);
            assert_eq!(blocks_at_once(&mut spin), OFF_AFTER_MISS);
        }
    }

    #[test]
    fn spin_until_returns_at_once_when_ready_and_runs_out_when_never() {
        let mut spin = Spin::default();
        assert!(spin.spin_until(|| true).is_ok());
        let mut looks = 0;
        let started = Instant::now();
        let mut gaps = Gaps::default();
        let missed = spin.spin_until(|| {
            looks += 1;
            gaps.look();
            false
        });
        assert!(missed.is_err(), "a condition never true runs the spin out");
        // A full spin, unless a loaded machine preempted it (it stops at once then).
        assert!(
            started.elapsed() >= max_spin() || gaps.longest > PREEMPTED,
            "stopped early"
        );
        assert!(
            looks > 1 || max_spin().is_zero(),
            "looked at while spinning"
        );
    }

    #[test]
    fn spins_until_ready() {
        let mut spin = Spin::default();
        let mut looks = 0;
        let mut gaps = Gaps::default();
        let spun = spin.spin_until(|| {
            looks += 1;
            gaps.look();
            looks == 3
        });
        match spun {
            Ok(()) => assert_eq!(looks, 3, "ready on the third look"),
            // Spinning off, or a loaded machine took the CPU away in the middle.
            Err(_) => assert!(max_spin().is_zero() || gaps.longest > PREEMPTED),
        }
    }

    #[test]
    fn a_spin_that_loses_its_cpu_and_then_catches_is_a_catch() {
        if max_spin().is_zero() {
            return;
        }
        let mut spin = Spin::default();
        let mut looks = 0;
        // The second look comes after a gap as long as a lost CPU.
        let caught = spin.spin_until(|| {
            looks += 1;
            if looks == 2 {
                std::thread::sleep(PREEMPTED * 2);
            }
            looks == 2
        });
        assert!(caught.is_ok());
        assert_eq!((spin.off_for, spin.misses), (0, 0), "spinning stays on");
        // One that loses its CPU and does not catch is a miss.
        let mut looks = 0;
        let missed = spin.spin_until(|| {
            looks += 1;
            if looks == 2 {
                std::thread::sleep(PREEMPTED * 2);
            }
            false
        });
        assert_eq!(looks, 2, "stopped at once after the gap");
        spin.woken(missed.expect_err("never ready"));
        assert_eq!(blocks_at_once(&mut spin), OFF_AFTER_MISS);
    }

    #[test]
    fn a_worker_waiting_for_calls_spins_longer() {
        if max_spin().is_zero() {
            return;
        }
        let mut spin = Spin::waiting_for_calls();
        let started = Instant::now();
        let mut gaps = Gaps::default();
        let missed = spin.spin_until(|| {
            gaps.look();
            false
        });
        assert!(missed.is_err(), "a condition never true runs the spin out");
        // The whole stretched spin, unless a loaded machine preempted it.
        assert!(
            started.elapsed() >= max_spin() * CALL_WAIT_STRETCH || gaps.longest > PREEMPTED,
            "stopped after {:?}",
            started.elapsed()
        );
    }

    /// The longest gap between two looks of a spin.
    #[derive(Default)]
    struct Gaps {
        last: Option<Instant>,
        longest: Duration,
    }

    impl Gaps {
        fn look(&mut self) {
            let now = Instant::now();
            if let Some(last) = self.last {
                self.longest = self.longest.max(now - last);
            }
            self.last = Some(now);
        }
    }
}
