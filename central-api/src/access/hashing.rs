//! Password checks under a bound sized to the machine (issue 12). An argon2id check with the default parameters
//! fills 19 MiB; run on the blocking pool, 300 simultaneous logins took 300 threads and 8.5 GB that glibc then kept.
//! Here a fixed set of worker threads ([`workers`]: the machine's cores, at most [`MAX_WORKERS`]) each own one
//! memory buffer, reused for every check, so the memory for hashing is at most workers x 19 MiB whatever the load.
//! Checks wait in a bounded queue ([`QUEUE_PER_WORKER`] per worker); when it is full the caller is told to come
//! back later ([`Busy`], answered 503 with `Retry-After`) instead of waiting without bound.
//!
//! An unknown username is checked against a hash with the default parameters too, so it costs what a known one
//! costs and the answer time does not tell which usernames exist.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// At most this many checks run at once.
pub const MAX_WORKERS: usize = 4;
/// Checks waiting per worker before new ones are refused.
pub const QUEUE_PER_WORKER: usize = 8;
/// A stored hash asking for more memory than this (KiB) is refused rather than allocated.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// Every worker is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password check is in use; try again shortly")]
pub struct Busy;

struct Job {
    /// The stored PHC string, or `None` for an unknown username.
    hash: Option<String>,
    password: String,
    reply: oneshot::Sender<bool>,
}

/// The pool of password-check threads.
pub struct PasswordChecks {
    jobs: SyncSender<Job>,
    workers: usize,
}

/// Worker threads for this machine: its cores, at least one, at most [`MAX_WORKERS`].
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, MAX_WORKERS)
}

impl PasswordChecks {
    /// Starts `workers` threads with a queue of `queue` checks.
    ///
    /// # Panics
    /// When a thread cannot be started.
    pub fn start(workers: usize, queue: usize) -> Self {
        let (jobs, receiver) = sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..workers {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || work(&receiver))
                .expect("starting a password-check thread");
        }
        Self { jobs, workers }
    }

    /// The process's pool, sized to the machine, started on first use.
    pub fn shared() -> &'static Self {
        static POOL: OnceLock<PasswordChecks> = OnceLock::new();
        POOL.get_or_init(|| {
            let n = workers();
            Self::start(n, n * QUEUE_PER_WORKER)
        })
    }

    /// How many checks run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Whether `password` matches the stored PHC `hash` (`None`: an unknown username, checked against a dummy hash
    /// of the same cost and always false).
    ///
    /// # Errors
    /// [`Busy`] when the queue is full.
    pub async fn verify(&self, hash: Option<String>, password: &str) -> Result<bool, Busy> {
        let (reply, answer) = oneshot::channel();
        match self.jobs.try_send(Job { hash, password: password.to_owned(), reply }) {
            Ok(()) => Ok(answer.await.unwrap_or(false)),
            Err(TrySendError::Full(_)) => Err(Busy),
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("the password-check threads have stopped");
                Err(Busy)
            }
        }
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            receiver.recv()
        };
        let Ok(job) = job else { return };
        let ok = match &job.hash {
            Some(hash) => check(hash, job.password.as_bytes(), &mut blocks),
            None => {
                dummy(job.password.as_bytes(), &mut blocks);
                false
            }
        };
        // The requester may have gone (client disconnected); the limiter already counted the attempt.
        let _ = job.reply.send(ok);
    }
}

/// The argon2 run of `params` over `password` and `salt` into `out`, in `blocks` (grown once to the largest need).
fn run(
    params: Params,
    algorithm: Algorithm,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut Vec<Block>,
) -> bool {
    let count = params.block_count();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    let Some(memory) = blocks.get_mut(..count) else { return false };
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(password, salt, out, memory).is_ok()
}

/// Checks `password` against a PHC string; anything unreadable is a mismatch.
fn check(phc: &str, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&hash), Algorithm::try_from(hash.algorithm)) else {
        return false;
    };
    let version = hash.version.map_or(Ok(Version::default()), Version::try_from);
    let Ok(version) = version else { return false };
    if params.m_cost() > MAX_M_COST_KIB {
        tracing::error!(m_cost = params.m_cost(), "a stored password hash asks for too much memory; refusing it");
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    run(params, algorithm, version, password, salt, &mut out, blocks) && bool::from(out.ct_eq(expected.as_bytes()))
}

/// The cost of a check with the default parameters (what `create-admin` stores), for an unknown username.
fn dummy(password: &[u8], blocks: &mut Vec<Block>) {
    let mut out = [0u8; 32];
    let _ = run(
        Params::default(),
        Algorithm::default(),
        Version::default(),
        password,
        b"unknown-username",
        &mut out,
        blocks,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn stored(password: &str) -> String {
        let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
        Argon2::default().hash_password(password.as_bytes(), &salt).expect("hash").to_string()
    }

    #[tokio::test]
    async fn checks_match_argon2_and_unknown_users_never_pass() {
        let pool = PasswordChecks::start(1, 4);
        let hash = stored("right one");
        assert_eq!(pool.verify(Some(hash.clone()), "right one").await, Ok(true));
        assert_eq!(pool.verify(Some(hash), "wrong one").await, Ok(false));
        assert_eq!(pool.verify(None, "right one").await, Ok(false));
        assert_eq!(pool.verify(Some("not a hash".into()), "x").await, Ok(false));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let pool = PasswordChecks::start(1, 1);
        let hash = stored("p");
        let checks: Vec<_> = (0..6).map(|_| pool.verify(Some(hash.clone()), "q")).collect();
        let results = futures_join(checks).await;
        assert!(results.contains(&Err(Busy)), "{results:?}");
        assert!(results.contains(&Ok(false)), "{results:?}");
    }

    async fn futures_join<F: std::future::Future<Output = Result<bool, Busy>>>(
        checks: Vec<F>,
    ) -> Vec<Result<bool, Busy>> {
        let mut results = Vec::new();
        let mut pinned: Vec<_> = checks.into_iter().map(Box::pin).collect();
        // Poll each once so every job is queued (or refused) before any answer is awaited.
        for check in &mut pinned {
            let waker = futures_noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            if let std::task::Poll::Ready(r) = check.as_mut().poll(&mut cx) {
                results.push(Some(r));
            } else {
                results.push(None);
            }
        }
        let mut out = Vec::new();
        for (check, early) in pinned.into_iter().zip(results) {
            out.push(match early {
                Some(r) => r,
                None => check.await,
            });
        }
        out
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
