//! Password and client-secret hashing with argon2id (OWASP parameters), run off the async runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// argon2id, m=19 MiB, t=2, p=1: the OWASP Password Storage Cheat Sheet minimum.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password into a PHC string. Blocking: call through [`hash_password`] from async code.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verify a password against a PHC string; any malformed hash simply fails to verify.
pub fn verify_password_blocking(password: &str, phc: &str) -> bool {
    metrics::counter!("poortwachter_argon2_verifications_total").increment(1);
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The argon2 workers: half the cores, at low CPU priority. Argon2 is deliberately expensive;
/// on the async runtime's blocking pool a burst of logins would take every core and starve
/// introspection and token requests. Here logins queue, and the scheduler gives the request
/// threads precedence whenever both want the CPU.
fn argon2_pool() -> &'static Mutex<std::sync::mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        for i in 0..(cores / 2).max(1) {
            let receiver = Arc::clone(&receiver);
            let _ = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
        }
        Mutex::new(sender)
    })
}

/// Linux keeps a nice value per thread: raise ours so request threads win the CPU.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (who = 0) has no memory-safety preconditions.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Run `work` on the argon2 pool and await its result.
async fn on_argon2_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    argon2_pool()
        .lock()
        .map_err(|_| anyhow::anyhow!("argon2 pool poisoned"))?
        .send(job)
        .map_err(|_| anyhow::anyhow!("argon2 pool stopped"))?;
    Ok(result.await?)
}

/// Verifications waiting for or running on the argon2 workers, at most [`MAX_QUEUED`].
static QUEUED: AtomicUsize = AtomicUsize::new(0);
/// Beyond this many queued verifications a new one is refused at once (503 with
/// `Retry-After`) instead of waiting: at ~50 ms each on one worker, the last in the queue
/// already waits three seconds.
pub const MAX_QUEUED: usize = 64;

/// The argon2 queue is full; nothing was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated;

/// Releases a queue place when the job is done (or dropped unrun).
struct QueuePlace;

impl Drop for QueuePlace {
    fn drop(&mut self) {
        QUEUED.fetch_sub(1, Ordering::AcqRel);
    }
}

fn take_queue_place() -> Result<QueuePlace, Saturated> {
    let mut queued = QUEUED.load(Ordering::Acquire);
    loop {
        if queued >= MAX_QUEUED {
            metrics::counter!("poortwachter_argon2_saturated_total").increment(1);
            return Err(Saturated);
        }
        match QUEUED.compare_exchange_weak(queued, queued + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Ok(QueuePlace),
            Err(now) => queued = now,
        }
    }
}

/// Verify off the runtime on the bounded queue: `Err(Saturated)` when it is full.
/// When `phc` is `None` (unknown user or client) the same work is spent on a dummy hash so
/// response time does not reveal which accounts exist.
pub async fn try_verify_password(password: String, phc: Option<String>) -> Result<bool, Saturated> {
    let place = take_queue_place()?;
    let verified = on_argon2_pool(move || {
        let _place = place;
        match phc {
            Some(phc) => verify_password_blocking(&password, &phc),
            None => {
                let _ = verify_password_blocking(&password, dummy_hash());
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    Ok(verified)
}

pub async fn hash_password(password: String) -> anyhow::Result<String> {
    on_argon2_pool(move || hash_password_blocking(&password))
        .await?
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Verify off the runtime (see [`try_verify_password`]). A full queue fails closed: the
/// password counts as not verified. Callers that can answer "busy" use `try_verify_password`.
pub async fn verify_password(password: String, phc: Option<String>) -> bool {
    match try_verify_password(password, phc).await {
        Ok(verified) => verified,
        Err(Saturated) => {
            tracing::warn!("argon2 queue full: verification refused");
            false
        }
    }
}

/// A fixed argon2id hash of a random string with the same parameters as real hashes.
fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1bS4tLtY2bUG3Q2vUO3tV0uG8d1o6S5Sg2xQe0nTt0E"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let phc = hash_password_blocking("welkom-demo-2026").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password_blocking("welkom-demo-2026", &phc));
        assert!(!verify_password_blocking("welkom-demo-2027", &phc));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let places: Vec<_> = (0..MAX_QUEUED)
            .filter_map(|_| take_queue_place().ok())
            .collect();
        assert_eq!(try_verify_password("x".into(), None).await, Err(Saturated));
        drop(places);
        assert_eq!(try_verify_password("x".into(), None).await, Ok(false));
    }

    #[test]
    fn dummy_hash_parses_and_rejects() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
        assert!(!verify_password_blocking("anything", dummy_hash()));
    }
}
