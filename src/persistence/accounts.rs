//! Users: organizers and buyers.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use super::WriteError;
use crate::domain::account::{Email, Role};

#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub role: String,
}

/// Creates a user; a taken e-mail is a [`WriteError::Conflict`].
#[tracing::instrument(skip_all, fields(role = ?role))]
pub async fn insert_user(
    pool: &PgPool,
    email: &Email,
    password_hash: &str,
    name: &str,
    role: Role,
) -> Result<Uuid, WriteError> {
    let user_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (user_id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(name)
    .bind(role.as_str())
    .execute(pool)
    .await
    .map_err(|e| WriteError::from_sqlx(e, "inserting a user"))?;
    Ok(user_id)
}

#[tracing::instrument(skip_all)]
pub async fn find_by_email(pool: &PgPool, email: &Email) -> anyhow::Result<Option<UserRow>> {
    sqlx::query_as(
        "SELECT user_id, email, password_hash, name, role FROM users WHERE lower(email) = $1",
    )
    .bind(email.as_str())
    .fetch_optional(pool)
    .await
    .context("looking up a user by e-mail")
}
