//! Seed 004, "ThreadLocal": `threading.local()` is `thread_local!` in Rust: every thread sees
//! its own `student`.
//!
//! Prints (in either order):
//! ```text
//! Hello, Alice (in Thread-A)
//! Hello, Bob (in Thread-B)
//! ```

use std::cell::RefCell;

thread_local! {
    // local_school = threading.local(); the student attribute of each thread
    static STUDENT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn process_student() {
    // Get the student bound to the current thread.
    STUDENT.with(|student| {
        let thread = std::thread::current();
        println!(
            "Hello, {} (in {})",
            student.borrow(),
            thread.name().unwrap_or("?")
        );
    });
}

fn process_thread(name: &str) {
    // Bind this thread's student.
    STUDENT.with(|student| *student.borrow_mut() = name.to_owned());
    process_student();
}

fn main() -> std::io::Result<()> {
    let t1 = crew::thread::spawn("Thread-A", || process_thread("Alice"))?;
    let t2 = crew::thread::spawn("Thread-B", || process_thread("Bob"))?;
    t1.result().expect("Thread-A");
    t2.result().expect("Thread-B");
    Ok(())
}
