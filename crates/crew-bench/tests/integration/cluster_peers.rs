//! The `crew bench cluster` peer that needs only `python3` (seed 004's managers master/worker)
//! speaks the protocol: `ready`, then one figures line per request, every result checked by
//! the peer itself; a bad request ends it with a clear reason. (Ray and Dask come from PyPI at
//! benchmark time, so they are exercised by the benchmark, not here.)

use std::path::Path;

use crew_bench::cluster::python::{PythonPeer, ScriptDir};

#[test]
fn the_managers_peer_answers_each_case_and_checks_its_results() {
    let scripts = ScriptDir::create().unwrap();
    let mut peer = PythonPeer::start(Path::new("python3"), &scripts, "managers_peer.py").unwrap();
    let submit = peer.request("submit", 300, 0).unwrap();
    assert!(
        submit.tasks_per_sec > 0.0 && submit.p50_us.is_none(),
        "{submit:?}"
    );
    let map = peer.request("map", 10_000, 512).unwrap();
    assert!(map.tasks_per_sec > 0.0, "{map:?}");
    let latency = peer.request("latency", 50, 0).unwrap();
    let (p50, p99) = (latency.p50_us.unwrap(), latency.p99_us.unwrap());
    assert!(0.0 < p50 && p50 <= p99, "{latency:?}");

    let error = peer.request("bogus", 1, 0).unwrap_err();
    assert!(format!("{error:#}").contains("unknown case"), "{error:#}");
}
