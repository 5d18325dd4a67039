//! [`Durable`]: a journal commit that a device operation on the driver thread waits for at the one
//! step that needs it, so the commit runs while the commands before that step are on the line.
//!
//! The sale's in-flight state is committed while its items go and the close (FF45) waits for it;
//! the relay's OFD reply is committed while FF32 goes and FF33 waits for it. The async side starts
//! the commit and the device operation together and says through [`DurableTell`] how the commit
//! ended; a commit that failed, or whose task went away without saying, is not durable.

use tokio::sync::oneshot;

/// The driver thread's side: whether a commit is durable, waited for once and then remembered.
#[derive(Debug)]
pub struct Durable {
    rx: Option<oneshot::Receiver<bool>>,
    known: Option<bool>,
}

/// The async side: says once whether the commit made its change durable.
#[derive(Debug)]
pub struct DurableTell(oneshot::Sender<bool>);

impl Durable {
    /// A change the journal already holds: nothing to wait for.
    pub fn already() -> Durable {
        Durable {
            rx: None,
            known: Some(true),
        }
    }

    /// A commit still running; `tell` says how it ended.
    pub fn pending() -> (DurableTell, Durable) {
        let (tx, rx) = oneshot::channel();
        (
            DurableTell(tx),
            Durable {
                rx: Some(rx),
                known: None,
            },
        )
    }

    /// Blocks the calling thread (the driver thread, never an async one) until the commit has
    /// ended; true when the change is durable. Later calls answer at once.
    pub fn wait(&mut self) -> bool {
        if let Some(known) = self.known {
            return known;
        }
        let durable = self
            .rx
            .take()
            .is_some_and(|rx| rx.blocking_recv().unwrap_or(false));
        self.known = Some(durable);
        durable
    }
}

impl DurableTell {
    /// Says whether the commit made its change durable.
    pub fn tell(self, durable: bool) {
        let _ = self.0.send(durable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_durable_only_when_told_so_and_the_answer_is_kept() {
        let mut already = Durable::already();
        assert!(already.wait());

        let (tell, mut yes) = Durable::pending();
        let waiter = std::thread::spawn(move || (yes.wait(), yes.wait()));
        tell.tell(true);
        assert_eq!(waiter.join().unwrap(), (true, true));

        let (tell, mut no) = Durable::pending();
        tell.tell(false);
        assert!(!no.wait());
        assert!(!no.wait(), "the answer is remembered");

        let (tell, mut gone) = Durable::pending();
        drop(tell);
        assert!(!gone.wait(), "a commit that never said is not durable");
    }
}
