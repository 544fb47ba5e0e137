//! The fib-service lab: the same TCP service under every concurrency model, a load generator and
//! the benchmark driver behind `crew serve`, `crew perf` and `crew bench`.
