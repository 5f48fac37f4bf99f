//! Where API key hashes are checked: a few dedicated threads, each with one argon2 memory
//! buffer it keeps, and a bound on the verifications running or waiting (beyond it: busy).
//!
//! argon2id with the default parameters fills 19 MiB per verification. Run on tokio's
//! blocking pool (up to 512 threads), every request carrying a well-formed key for a real id
//! allocated its own 19 MiB at once; glibc then served those blocks from per-thread arenas
//! and kept them after they were freed, so resident memory grew with the attack's
//! concurrency and stayed there. Here the memory is `threads` buffers, allocated once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The most memory a stored hash may ask for, in KiB (argon2's `m`); the default is 19 MiB.
/// A hash asking for more is refused rather than allowed to grow a thread's buffer.
pub const MAX_M_COST_KIB: u32 = 64 * 1024;

/// Checks `key` against the argon2 PHC string `phc`, using (and growing once, if needed)
/// `memory` for argon2's blocks instead of allocating them per call. Constant-time compare.
pub fn verify_with(key: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        tracing::warn!(
            m_cost_kib = params.m_cost(),
            "an API key hash asks for more argon2 memory than allowed: refused"
        );
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.reserve_exact(blocks - memory.len());
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(key.as_bytes(), salt, out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(out).is_ok_and(|computed| computed == expected)
}

/// Every verification slot is taken: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many key verifications in progress")]
pub struct Busy;

struct Job {
    key: String,
    hash: String,
    reply: tokio::sync::oneshot::Sender<bool>,
    /// Frees the job's slot when dropped, whether it ran or not.
    _slot: Slot,
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The verification threads. They start with the first verification and end with the
/// `Verifier`.
pub struct Verifier {
    threads: usize,
    /// Verifications running or waiting, at most `slots`.
    in_flight: Arc<AtomicUsize>,
    slots: usize,
    jobs: Mutex<Option<Sender<Job>>>,
    /// Hashes computed since the start.
    hashed: Arc<AtomicU64>,
}

impl Verifier {
    /// `threads` verifications at once (each holding one argon2 buffer, 19 MiB by default),
    /// and up to `queue` more waiting for a thread; at least one thread.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        Self {
            threads,
            in_flight: Arc::new(AtomicUsize::new(0)),
            slots: threads + queue,
            jobs: Mutex::new(None),
            hashed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Keys hashed since the start.
    pub fn hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// Verifications running or waiting now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes a slot, or says the verifier is busy.
    fn slot(&self) -> Result<Slot, Busy> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.slots).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Slot(self.in_flight.clone())),
            Err(_) => Err(Busy),
        }
    }

    /// Checks `key` against `hash` on a verification thread; [`Busy`] at once when every slot
    /// is taken. A job whose caller has gone is skipped.
    pub async fn verify(&self, key: &str, hash: &str) -> Result<bool, Busy> {
        let slot = self.slot()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            key: key.to_owned(),
            hash: hash.to_owned(),
            reply,
            _slot: slot,
        };
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = jobs.get_or_insert_with(|| self.spawn());
            if sender.send(job).is_err() {
                // The threads are gone (they never stop while the sender lives).
                return Ok(false);
            }
        }
        Ok(answer.await.unwrap_or(false))
    }

    fn spawn(&self) -> Sender<Job> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..self.threads {
            let (rx, hashed) = (rx.clone(), self.hashed.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("fms-keycheck-{i}"))
                .spawn(move || work(&rx, &hashed));
            if let Err(e) = spawned {
                tracing::error!("cannot start a key verification thread: {e}");
            }
        }
        tx
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, hashed: &AtomicU64) {
    let mut memory = Vec::new();
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            key,
            hash,
            reply,
            _slot: slot,
        } = job;
        if reply.is_closed() {
            continue;
        }
        let ok = verify_with(&key, &hash, &mut memory);
        hashed.fetch_add(1, Ordering::Relaxed);
        // The slot is free before the caller hears back.
        drop(slot);
        let _ = reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_key, new_key};

    #[test]
    fn one_reused_buffer_verifies_like_a_fresh_one() {
        let (_, a) = new_key();
        let (_, b) = new_key();
        let (ha, hb) = (hash_key(&a).unwrap(), hash_key(&b).unwrap());
        let mut memory = Vec::new();
        // Right, wrong, right again, crossed: a dirty buffer changes nothing.
        assert!(verify_with(&a, &ha, &mut memory));
        let len = memory.len();
        assert_eq!(len, Params::DEFAULT_M_COST as usize, "one block per KiB");
        assert!(!verify_with(&format!("{a}0"), &ha, &mut memory));
        assert!(verify_with(&b, &hb, &mut memory));
        assert!(!verify_with(&a, &hb, &mut memory));
        assert!(verify_with(&a, &ha, &mut memory));
        assert_eq!(memory.len(), len, "the buffer is not grown again");
        assert!(!verify_with(&a, "not a hash", &mut memory));
        // A hash asking for more memory than allowed is refused without allocating it.
        let greedy = ha.replace("m=19456", &format!("m={}", MAX_M_COST_KIB + 1));
        assert_ne!(greedy, ha);
        assert!(!verify_with(&a, &greedy, &mut memory));
        assert_eq!(memory.len(), len);
    }

    #[tokio::test]
    async fn verifications_beyond_the_slots_are_busy_at_once() {
        let (_, key) = new_key();
        let hash = hash_key(&key).unwrap();
        let v = Verifier::new(1, 1);
        // Two slots: two verifications run or wait, a third is refused without waiting.
        let (a, b, c) = tokio::join!(
            v.verify(&key, &hash),
            v.verify("fms_0123456789ab_00", &hash),
            v.verify(&key, &hash),
        );
        assert_eq!((a, b), (Ok(true), Ok(false)));
        assert_eq!(c, Err(Busy));
        assert_eq!(v.in_flight(), 0, "slots come back");
        assert_eq!(v.verify(&key, &hash).await, Ok(true));
        assert_eq!(v.hashed(), 3);
    }
}
