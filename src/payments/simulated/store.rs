//! The simulated processor's ledger in Postgres (`simulated_charges`, `simulated_refunds`):
//! what this process does not know is looked up there, every change is written there, and a
//! refund is decided there in one transaction.

use super::{Charge, ChargeStatus, PaymentError, Refund, SimulatedGateway};

fn failed(error: sqlx::Error) -> PaymentError {
    PaymentError::Failed(format!("processor ledger: {error}"))
}

impl SimulatedGateway {
    /// Brings a charge this process does not know in from the store, if there is one.
    pub(super) async fn recall(&self, authorization_id: &str) -> Result<(), PaymentError> {
        let Some(pool) = self.store.get() else {
            return Ok(());
        };
        let known = self
            .ledger()
            .charges
            .values()
            .any(|c| c.authorization_id == authorization_id);
        if known {
            return Ok(());
        }
        let row: Option<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT idempotency_key, amount_cents, refunded_cents, status FROM simulated_charges \
             WHERE authorization_id = $1",
        )
        .bind(authorization_id)
        .fetch_optional(pool)
        .await
        .map_err(failed)?;
        if let Some((key, amount_cents, refunded_cents, status)) = row {
            self.ledger().charges.entry(key.clone()).or_insert(Charge {
                authorization_id: authorization_id.to_owned(),
                idempotency_key: key,
                amount_cents,
                refunded_cents,
                status: ChargeStatus::parse(&status),
            });
        }
        Ok(())
    }

    /// Writes a charge as it now stands to the store, if there is one.
    pub(super) async fn keep(&self, authorization_id: &str) -> Result<(), PaymentError> {
        let Some(pool) = self.store.get() else {
            return Ok(());
        };
        let charge = self
            .ledger()
            .charges
            .values()
            .find(|c| c.authorization_id == authorization_id)
            .cloned();
        let Some(charge) = charge else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO simulated_charges (authorization_id, idempotency_key, amount_cents, refunded_cents, status) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (authorization_id) DO UPDATE \
             SET refunded_cents = EXCLUDED.refunded_cents, status = EXCLUDED.status",
        )
        .bind(&charge.authorization_id)
        .bind(&charge.idempotency_key)
        .bind(charge.amount_cents)
        .bind(charge.refunded_cents)
        .bind(charge.status.as_str())
        .execute(pool)
        .await
        .map_err(failed)?;
        Ok(())
    }

    /// Records `refund` and pays it from its charge, unless it was paid already: whether it
    /// is new. More than the charge has left is refused.
    pub(super) async fn refund_in_store(
        &self,
        pool: &sqlx::PgPool,
        refund: &Refund,
    ) -> Result<bool, PaymentError> {
        let mut tx = pool.begin().await.map_err(failed)?;
        let fresh = sqlx::query(
            "INSERT INTO simulated_refunds (idempotency_key, authorization_id, amount_cents) \
             VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&refund.idempotency_key)
        .bind(&refund.authorization_id)
        .bind(refund.amount_cents)
        .execute(&mut *tx)
        .await
        .map_err(failed)?
        .rows_affected()
            == 1;
        if fresh {
            let paid = sqlx::query(
                "UPDATE simulated_charges SET refunded_cents = refunded_cents + $2, \
                 status = CASE WHEN refunded_cents + $2 = amount_cents THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END \
                 WHERE authorization_id = $1 AND status IN ('CAPTURED', 'PARTIALLY_REFUNDED') \
                 AND refunded_cents + $2 <= amount_cents",
            )
            .bind(&refund.authorization_id)
            .bind(refund.amount_cents)
            .execute(&mut *tx)
            .await
.map_err(failed)?
            .rows_affected();
            if paid == 0 {
                return Err(PaymentError::Failed(format!(
                    "authorization {} has no {} left to refund",
                    refund.authorization_id, refund.amount_cents
                )));
            }
        }
        tx.commit().await.map_err(failed)?;
        Ok(fresh)
    }
}
