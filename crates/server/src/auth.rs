//! API keys and roles. A key reads `stk_<id>_<secret>`: the id finds the stored row, the
//! secret (192 random bits) is checked against its stored SHA-256 digest in constant time.
//! A random secret that long cannot be guessed, so a slow password hash buys nothing and
//! would let anyone who knows a key id (it is not secret: the audit log shows it) make the
//! server burn memory and CPU with wrong secrets. Keys made before digests were used hold an
//! argon2 hash: those are checked one at a time and replaced by the digest on first success.
//! Failed attempts are counted per key id and per client address; past a limit further
//! attempts are refused (429) until the window ends, before any hash is computed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use stratum_store::{Actor, Store, StoreError};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub use stratum_store::Role;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// Client address when known, for the audit log.
    pub origin: String,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.user.clone(),
            origin: self.origin.clone(),
        }
    }

    /// Refuses unless the role is one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not {what}",
                self.role
            )))
        }
    }
}

/// A new key's full text (shown once) and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub id: String,
    pub token: String,
    pub secret_hash: String,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a stored SHA-256 digest is written (legacy argon2 hashes start with `$argon2`).
const DIGEST_PREFIX: &str = "sha256:";

/// The stored form of a secret.
pub(crate) fn digest(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DIGEST_PREFIX}{hex}")
}

/// Makes a key: a random id and a 192-bit secret, stored as its SHA-256 digest.
pub fn new_key() -> NewKey {
    let id = random_hex(6);
    let secret = random_hex(24);
    NewKey {
        token: format!("stk_{id}_{secret}"),
        secret_hash: digest(&secret),
        id,
    }
}

/// The shortest console password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A console password's stored form: argon2id (the crate's defaults: 19 MiB, 2 passes) with
/// a random salt, as a PHC string. Refuses a password shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches a stored PHC string (false for anything unreadable).
pub(crate) fn password_matches(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates a key for an existing user and returns the token to hand over.
pub async fn create_key(store: &Store, user: &str, actor: &Actor) -> Result<String, StoreError> {
    let key = new_key();
    store
        .add_api_key(&key.id, user, &key.secret_hash, actor)
        .await?;
    Ok(key.token)
}

/// Verified tokens (by digest, never the token itself), for a minute; and the failed
/// attempts per key id and per client address.
#[derive(Debug)]
pub struct KeyCache {
    verified: Mutex<HashMap<String, (String, Role, Instant)>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Legacy argon2 checks run one at a time (each needs ~19 MiB).
    pub(crate) legacy: tokio::sync::Semaphore,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            verified: Mutex::default(),
            failures: Mutex::default(),
            legacy: tokio::sync::Semaphore::new(1),
        }
    }
}

const CACHE_FOR: Duration = Duration::from_secs(60);
/// The window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Failed attempts per key id within the window before its next attempts are refused.
pub const MAX_FAILURES_PER_KEY: u32 = 10;
/// Failed attempts per client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// Entries kept in each map before the oldest half is dropped (bounds memory under a flood
/// of made-up ids or addresses).
const MAX_ENTRIES: usize = 10_000;

impl KeyCache {
    fn get(&self, token_digest: &str) -> Option<(String, Role)> {
        let map = self.verified.lock().expect("key cache lock");
        map.get(token_digest)
            .filter(|(_, _, at)| at.elapsed() < CACHE_FOR)
            .map(|(u, r, _)| (u.clone(), *r))
    }
    fn put(&self, token_digest: &str, user: &str, role: Role) {
        let mut map = self.verified.lock().expect("key cache lock");
        if map.len() > MAX_ENTRIES {
            map.retain(|_, (_, _, at)| at.elapsed() < CACHE_FOR);
            if map.len() > MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            token_digest.to_string(),
            (user.to_string(), role, Instant::now()),
        );
    }

    /// Whether `who` (a key id or an address) failed `limit` times within the window.
    pub(crate) fn blocked(&self, who: &str, limit: u32) -> bool {
        let map = self.failures.lock().expect("failure lock");
        map.get(who)
            .is_some_and(|(n, since)| *n >= limit && since.elapsed() < FAILURE_WINDOW)
    }

    pub(crate) fn failed(&self, who: &str) {
        let mut map = self.failures.lock().expect("failure lock");
        if map.len() > MAX_ENTRIES {
            map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = map.entry(who.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

fn too_many() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyAttempts,
        format!(
            "too many failed attempts with this key or from this address; try again in {} seconds",
            FAILURE_WINDOW.as_secs()
        ),
    )
}

async fn verify(state: &AppState, token: &str, origin: &str) -> Result<(String, Role), ApiError> {
    let token_digest = digest(token);
    if let Some(hit) = state.keys.get(&token_digest) {
        return Ok(hit);
    }
    let address = format!("address {origin}");
    if state.keys.blocked(&address, MAX_FAILURES_PER_ADDRESS) {
        return Err(too_many());
    }
    let invalid = || ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid");
    let failed = |who: &str| {
        state.keys.failed(who);
        state.keys.failed(&address);
    };
    let Some((id, secret)) = token
        .strip_prefix("stk_")
        .and_then(|rest| rest.split_once('_'))
    else {
        // No key id to blame: only the address counts (once).
        state.keys.failed(&address);
        return Err(invalid());
    };
    let key_id = format!("key {id}");
    if state.keys.blocked(&key_id, MAX_FAILURES_PER_KEY) {
        return Err(too_many());
    }
    let Some(row) = state.store.api_key(id).await? else {
        failed(&key_id);
        return Err(invalid());
    };
    if !row.usable {
        failed(&key_id);
        return Err(ApiError::new(
            ErrorCode::InvalidApiKey,
            "the API key was revoked or its user disabled",
        ));
    }
    let role = row.role;
    let ok = match row.secret_hash.strip_prefix(DIGEST_PREFIX) {
        Some(_) => bool::from(digest(secret).as_bytes().ct_eq(row.secret_hash.as_bytes())),
        None => {
            // A legacy argon2 hash: one check at a time, then the digest replaces it.
            let _turn = state
                .keys
                .legacy
                .acquire()
                .await
                .map_err(ApiError::internal)?;
            let secret_owned = secret.to_string();
            let hash = row.secret_hash.clone();
            let ok = stratum_runner::blocking::blocking(move || {
                PasswordHash::new(&hash)
                    .map(|h| {
                        Argon2::default()
                            .verify_password(secret_owned.as_bytes(), &h)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await;
            if ok {
                state
                    .store
                    .rehash_api_key(id, &row.secret_hash, &digest(secret))
                    .await?;
            }
            ok
        }
    };
    if !ok {
        failed(&key_id);
        return Err(invalid());
    }
    state.keys.put(&token_digest, &row.user_name, role);
    Ok((row.user_name, role))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Authenticated already by the route's role check.
        if let Some(who) = parts.extensions.get::<Principal>() {
            return Ok(who.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingApiKey,
                    "send an API key as `Authorization: Bearer KEY` (create one with `stratum key create`)",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| {
                ApiError::new(ErrorCode::MissingApiKey, "use `Authorization: Bearer KEY`")
            })?
            .trim();
        let origin = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "api".to_string());
        let (user, role) = verify(state, token, &origin).await?;
        if let Some(log) = parts.extensions.get::<crate::RequestUser>() {
            let _ = log.0.set(user.clone());
        }
        Ok(Principal { user, role, origin })
    }
}
