//! The payment reconciler: authorizations that never became an order (a crash between the
//! card and the commit, a lost answer) are voided; authorized payments whose order exists
//! but whose capture was lost are captured. Rows are taken with `FOR UPDATE SKIP LOCKED`,
//! so several nodes can run it at once without touching the same payment twice.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::PaymentGateway;
use crate::domain::orders::PaymentStatus;
use crate::persistence::payments;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub voided: usize,
    pub captured: usize,
}

/// One pass over payments last touched before `before`.
pub async fn run_once(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    before: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut tx = pool.begin().await.context("starting reconciliation")?;
    for payment in payments::lock_orphans(&mut tx, before, 100).await? {
        match gateway.void(&payment.idempotency_key).await {
            Ok(()) => {
                payments::set_status_in(&mut tx, payment.payment_id, PaymentStatus::Voided).await?;
                report.voided += 1;
            }
            Err(error) => {
                crate::metrics::figures()
                    .reconciler_actions
                    .with_label_values(&["failed"])
                    .inc();
                tracing::warn!(payment_id = %payment.payment_id, %error, "could not void; will retry")
            }
        }
    }
    for payment in payments::lock_uncaptured(&mut tx, before, 100).await? {
        let Some(authorization_id) = payment.gateway_ref.as_deref() else {
            continue;
        };
        match gateway
            .capture(authorization_id, &format!("capture:{}", payment.payment_id))
            .await
        {
            Ok(()) => {
                payments::set_status_in(&mut tx, payment.payment_id, PaymentStatus::Captured)
                    .await?;
                report.captured += 1;
            }
            Err(error) => {
                crate::metrics::figures()
                    .reconciler_actions
                    .with_label_values(&["failed"])
                    .inc();
                tracing::warn!(payment_id = %payment.payment_id, %error, "could not capture; will retry")
            }
        }
    }
    tx.commit().await.context("committing reconciliation")?;
    let f = crate::metrics::figures();
    f.reconciler_actions
        .with_label_values(&["voided"])
        .inc_by(report.voided as u64);
    f.reconciler_actions
        .with_label_values(&["captured"])
        .inc_by(report.captured as u64);
    if report != Report::default() {
        tracing::info!(
            voided = report.voided,
            captured = report.captured,
            "payments reconciled"
        );
    }
    Ok(report)
}
