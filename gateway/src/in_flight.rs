//! Writes in flight: up to a limit of writes run at once and finish in any order, but each is
//! handed back only after every write sent before it. The writer settles a write (acknowledges its
//! readings, spools what the store could not take) only when it is handed back, so
//! acknowledgements leave in arrival order whatever order the store answers in, and a write that
//! failed in the middle of several is spooled before the ones sent after it are settled.

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use std::future::Future;

pub struct InFlight<T> {
    writes: FuturesOrdered<BoxFuture<'static, T>>,
    limit: usize,
}

impl<T: Send + 'static> InFlight<T> {
    /// At most `limit` (at least 1) writes at once.
    pub fn new(limit: usize) -> Self {
        InFlight { writes: FuturesOrdered::new(), limit: limit.max(1) }
    }

    /// Starts `write` as a task of its own, so that it goes on while the writer gathers the next
    /// batch; it is handed back after every write pushed before it.
    pub fn push(&mut self, write: impl Future<Output = T> + Send + 'static) {
        let task = tokio::spawn(write);
        // A write that panicked is a bug: fail the writer as a panic inside it would have.
        self.writes.push_back(Box::pin(async move { task.await.expect("a write does not panic") }));
    }

    /// The oldest write's result, once it is finished; `None` when nothing is in flight.
    /// Cancel-safe: a write that finished while the caller stopped waiting is kept, in its place.
    pub async fn next(&mut self) -> Option<T> {
        self.writes.next().await
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Whether another write may start.
    pub fn has_room(&self) -> bool {
        self.writes.len() < self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// Writes 0..n whose answers the test gives in any order.
    fn writes(n: usize, flight: &mut InFlight<usize>) -> Vec<oneshot::Sender<()>> {
        (0..n)
            .map(|i| {
                let (answer, answered) = oneshot::channel::<()>();
                flight.push(async move {
                    let _ = answered.await;
                    i
                });
                answer
            })
            .collect()
    }

    #[tokio::test]
    async fn finished_out_of_order_released_in_order() {
        let mut flight = InFlight::new(3);
        let mut answers: Vec<Option<oneshot::Sender<()>>> = writes(3, &mut flight).into_iter().map(Some).collect();
        assert!(!flight.has_room());
        // What the writer would acknowledge, in the order it would.
        let mut released = Vec::new();
        // The store answers the last write first, then the middle one: nothing may be released
        // while the first still waits.
        answers[2].take().unwrap().send(()).unwrap();
        answers[1].take().unwrap().send(()).unwrap();
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), flight.next()).await;
        assert!(early.is_err(), "write 0 has not answered: nothing is released");
        assert_eq!(flight.len(), 3, "a timed-out wait loses no write");
        answers[0].take().unwrap().send(()).unwrap();
        while let Some(i) = flight.next().await {
            released.push(i);
        }
        assert_eq!(released, vec![0, 1, 2]);
        assert!(flight.is_empty() && flight.has_room());
    }

    #[tokio::test]
    async fn a_write_started_later_waits_for_the_older_ones() {
        let mut flight = InFlight::new(2);
        let mut first = writes(2, &mut flight);
        first.remove(1).send(()).unwrap();
        first.remove(0).send(()).unwrap();
        assert_eq!(flight.next().await, Some(0));
        // Room for one more: it joins behind write 1, which finished already.
        let (answer, answered) = oneshot::channel::<()>();
        flight.push(async move {
            let _ = answered.await;
            7
        });
        assert_eq!(flight.next().await, Some(1));
        answer.send(()).unwrap();
        assert_eq!(flight.next().await, Some(7));
        assert_eq!(flight.next().await, None);
    }
}
