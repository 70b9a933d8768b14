//! Password hashing and checking (argon2id, `security`) on a few threads of their own.
//!
//! Each argon2 hash takes 19 MiB for its few tens of milliseconds. On the runtime's
//! blocking pool (up to 512 threads) a burst of sign-ups ran as many at once as arrived,
//! and every thread's allocator arena kept its 19 MiB afterwards: ~200 MiB stayed with the
//! server after a burst (more, the longer the burst: see the README's figures). Here a
//! fixed number of threads (`BOXOFFICE_PASSWORD_THREADS`, the cores by default) take the
//! work in turn from a bounded queue, each hashing in the one 19 MiB it keeps for the
//! purpose (`security::HashMemory`), so memory for hashing is threads × 19 MiB whatever the
//! burst, and a burst waits its turn (as it would for the CPU anyway) instead of crowding
//! out the rest of the server.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

use crate::security::{self, HashMemory};

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// Jobs waiting for a thread at most; more wait to be queued (back-pressure on the caller).
const QUEUE: usize = 1_024;

pub struct PasswordPool {
    /// None: the runtime's blocking pool, unbounded (`BOXOFFICE_PASSWORD_THREADS=0`, kept
    /// to compare against).
    jobs: Option<mpsc::Sender<Job>>,
}

impl PasswordPool {
    /// A pool of `threads` threads (0: no pool of its own).
    pub fn new(threads: usize) -> PasswordPool {
        if threads == 0 {
            return PasswordPool { jobs: None };
        }
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || {
                    let mut memory = HashMemory::default();
                    loop {
                        // One thread waits at the queue at a time; the others wait for it.
                        let job = queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .blocking_recv();
                        match job {
                            Some(job) => job(&mut memory),
                            None => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password thread");
            }
        }
        PasswordPool { jobs: Some(jobs) }
    }

    /// A new password's hash (argon2id, a fresh salt).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move |memory| security::hash_password_in(&password, memory))
            .await?
    }

    /// Whether `password` is the one `stored` is the hash of.
    pub async fn verify(&self, password: String, stored: String) -> anyhow::Result<bool> {
        self.run(move |memory| security::verify_password_in(&password, &stored, memory))
            .await?
    }

    /// Runs `work` on one of the pool's threads (in its hashing memory) and waits for its
    /// answer.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let Some(jobs) = &self.jobs else {
            // (As before the pool: fresh memory for every hash.)
            return tokio::task::spawn_blocking(move || work(&mut HashMemory::default()))
                .await
                .context("a password job failed");
        };
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = answer.send(work(memory));
        });
        jobs.send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the password threads are gone"))?;
        answered
            .await
            .context("a password job ended without an answer")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn no_more_than_its_threads_run_at_once_and_every_job_is_answered() {
        let pool = Arc::new(PasswordPool::new(2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..12)
            .map(|n| {
                let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move |_| {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(running, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        now.fetch_sub(1, Ordering::SeqCst);
                        n * 2
                    })
                    .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for job in jobs {
            answers.push(job.await.ok().and_then(Result::ok));
        }
        assert_eq!(answers, (0..12).map(|n| Some(n * 2)).collect::<Vec<_>>());
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 2, "two threads, two at once at most: {most}");
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let pool = PasswordPool::new(1);
        let hash = pool
            .hash("correct horse".into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(pool
            .verify("correct horse".into(), hash.clone())
            .await
            .unwrap_or(false));
        assert!(!pool
            .verify("wrong horse".into(), hash)
            .await
            .unwrap_or(true));
    }
}
