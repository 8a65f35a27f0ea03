//! API keys and roles. A key reads `stk_<id>_<secret>`: the id finds the stored row, the
//! secret is checked against its argon2 hash. A verified key is remembered for a minute so
//! that argon2's deliberate slowness is paid once per key, not per request; a revoked key
//! stops working within that minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use stratum_store::{Actor, Store, StoreError};

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Policy, overrides, users; everything else too.
    Admin,
    /// Reads everything.
    Analyst,
    /// Reads and redeems for the customers it owns.
    Agent,
    /// Lookups and redemptions for any customer (a machine client).
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            "agent" => Some(Role::Agent),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

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
            Err(ApiError::forbidden(
                format!("the {:?} role may not {what}", self.role).to_lowercase(),
            ))
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

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a key: a random id and secret, the secret hashed with argon2id.
pub fn new_key() -> Result<NewKey, argon2::password_hash::Error> {
    let id = random_hex(6);
    let secret = random_hex(24);
    let salt = SaltString::generate(&mut OsRng);
    let secret_hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)?
        .to_string();
    Ok(NewKey {
        token: format!("stk_{id}_{secret}"),
        id,
        secret_hash,
    })
}

/// Creates a key for an existing user and returns the token to hand over.
pub async fn create_key(store: &Store, user: &str, actor: &Actor) -> Result<String, StoreError> {
    let key = new_key().map_err(|e| StoreError::Invalid(format!("cannot hash the key: {e}")))?;
    store
        .add_api_key(&key.id, user, &key.secret_hash, actor)
        .await?;
    Ok(key.token)
}

/// Verified tokens, for a minute.
#[derive(Debug, Default)]
pub struct KeyCache {
    verified: Mutex<HashMap<String, (String, Role, Instant)>>,
}

const CACHE_FOR: Duration = Duration::from_secs(60);

impl KeyCache {
    fn get(&self, token: &str) -> Option<(String, Role)> {
        let map = self.verified.lock().expect("key cache lock");
        map.get(token)
            .filter(|(_, _, at)| at.elapsed() < CACHE_FOR)
            .map(|(u, r, _)| (u.clone(), *r))
    }
    fn put(&self, token: &str, user: &str, role: Role) {
        let mut map = self.verified.lock().expect("key cache lock");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(token.to_string(), (user.to_string(), role, Instant::now()));
    }
}

async fn verify(state: &AppState, token: &str) -> Result<(String, Role), ApiError> {
    if let Some(hit) = state.keys.get(token) {
        return Ok(hit);
    }
    let invalid = || ApiError::new("invalid_api_key", "the API key is not valid");
    let rest = token.strip_prefix("stk_").ok_or_else(invalid)?;
    let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
    let row = state.store.api_key(id).await?.ok_or_else(invalid)?;
    if !row.usable {
        return Err(ApiError::new(
            "invalid_api_key",
            "the API key was revoked or its user disabled",
        ));
    }
    let role = Role::parse(&row.role).ok_or_else(invalid)?;
    let secret = secret.to_string();
    let hash = row.secret_hash.clone();
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    if !ok {
        return Err(invalid());
    }
    state.keys.put(token, &row.user_name, role);
    Ok((row.user_name, role))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    "missing_api_key",
                    "send an API key as `Authorization: Bearer KEY` (create one with `stratum key create`)",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::new("missing_api_key", "use `Authorization: Bearer KEY`"))?
            .trim();
        let (user, role) = verify(state, token).await?;
        let origin = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "api".to_string());
        Ok(Principal { user, role, origin })
    }
}
