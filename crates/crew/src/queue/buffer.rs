//! The three orders a [`Queue`](super::Queue) can hand items out in, behind one trait so that
//! one queue core (locking, capacity, closing, waking) serves them all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Which item `get` returns next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// First in, first out (Python's `queue.Queue`).
    Fifo,
    /// Last in, first out (Python's `queue.LifoQueue`).
    Lifo,
    /// Smallest first (Python's `queue.PriorityQueue`).
    Priority,
}

pub(crate) trait Buffer<T>: Send {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn len(&self) -> usize;
    fn order(&self) -> Order;
}

impl<T: Send> Buffer<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn order(&self) -> Order {
        Order::Fifo
    }
}

impl<T: Send> Buffer<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn order(&self) -> Order {
        Order::Lifo
    }
}

impl<T: Ord + Send> Buffer<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
    fn order(&self) -> Order {
        Order::Priority
    }
}
