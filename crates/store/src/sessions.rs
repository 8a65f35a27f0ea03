//! Console logins: users' password hashes and the sessions of signed-in browsers. The store
//! keeps what the server decided (it never sees a password or a session cookie, only their
//! argon2id hash and SHA-256 digest), and audits password changes.

use sqlx::Row;

use crate::service::Role;
use crate::{Actor, Store, StoreError};

/// What a login is checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginRow {
    pub role: Role,
    /// The argon2id PHC string; `None`: no password set (API keys only).
    pub password_hash: Option<String>,
    pub disabled: bool,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub user_name: String,
    pub role: Role,
    pub csrf_token: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_seen: String,
}

impl Store {
    /// Sets a user's console password (its argon2id hash); audited as `user.passwd`. Ends
    /// the user's sessions: a new password signs everyone out.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.change_enabled_user(name, "password_hash", password_hash, "user.passwd", actor)
            .await
    }

    /// Sets one column of an enabled user, ends its sessions and audits `action`, in one
    /// transaction; `NotFound` when no enabled user has the name. (`column` is one of ours,
    /// never input.)
    pub(crate) async fn change_enabled_user(
        &self,
        name: &str,
        column: &'static str,
        value: &str,
        action: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(&format!(
            "UPDATE users SET {column} = $1 WHERE name = $2 AND disabled_at IS NULL"
        ))
        .bind(value)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("no enabled user `{name}`")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.audit(&mut tx, actor, action, name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user a login names, if there is one.
    pub async fn login(&self, name: &str) -> Result<Option<LoginRow>, StoreError> {
        let row = sqlx::query("SELECT role, password_hash, disabled_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let disabled: Option<String> = r.try_get("disabled_at")?;
            Ok(LoginRow {
                role: crate::service::stored_role(&r)?,
                password_hash: r.try_get("password_hash")?,
                disabled: disabled.is_some(),
            })
        })
        .transpose()
    }

    /// A new session, begun `at` (RFC 3339; the server's clock).
    pub async fn create_session(
        &self,
        token_digest: &str,
        user: &str,
        csrf_token: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_digest, user_name, csrf_token, created_at, last_seen) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_digest)
        .bind(user)
        .bind(csrf_token)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session with this digest, while its user is enabled.
    pub async fn session(&self, token_digest: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT s.user_name, u.role, s.csrf_token, s.created_at, s.last_seen \
             FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_digest = $1 AND u.disabled_at IS NULL",
        )
        .bind(token_digest)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                user_name: r.try_get("user_name")?,
                role: crate::service::stored_role(&r)?,
                csrf_token: r.try_get("csrf_token")?,
                created_at: r.try_get("created_at")?,
                last_seen: r.try_get("last_seen")?,
            })
        })
        .transpose()
    }

    /// Marks a session as used now (for the idle expiry).
    pub async fn touch_session(&self, token_digest: &str, at: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_digest = $2")
            .bind(at)
            .bind(token_digest)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a session (logout, idle expiry); `false` when there was none.
    pub async fn end_session(&self, token_digest: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sessions WHERE token_digest = $1")
            .bind(token_digest)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Ends every session last used before `before` (RFC 3339): sessions left idle are never
    /// used again, so each sign-in sweeps them instead of letting the table grow. The number
    /// ended.
    pub async fn end_sessions_idle_since(&self, before: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE last_seen < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
