//! A payment gateway a test can hold up mid-payment.

use std::sync::Arc;

use async_trait::async_trait;
use boxoffice::payments::{
    Authorization, AuthorizeRequest, PaymentError, PaymentGateway, SimulatedGateway,
};
use tokio::sync::{Notify, Semaphore};

/// A payment gateway that stops every authorization until the test lets it through, so a
/// test can act while a payment is in flight.
pub struct GatedGateway {
    pub inner: Arc<SimulatedGateway>,
    pub entered: Notify,
    gate: Semaphore,
}

impl GatedGateway {
    pub fn new(inner: Arc<SimulatedGateway>) -> GatedGateway {
        GatedGateway {
            inner,
            entered: Notify::new(),
            gate: Semaphore::new(0),
        }
    }

    /// Lets `n` waiting (or future) authorizations through.
    pub fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

#[async_trait]
impl PaymentGateway for GatedGateway {
    fn name(&self) -> &'static str {
        "gated"
    }

    fn use_database(&self, pool: &sqlx::PgPool) {
        self.inner.use_database(pool);
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Authorization, PaymentError> {
        self.entered.notify_one();
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| PaymentError::Failed("gate closed".into()))?;
        permit.forget();
        self.inner.authorize(request).await
    }

    async fn capture(&self, authorization_id: &str, key: &str) -> Result<(), PaymentError> {
        self.inner.capture(authorization_id, key).await
    }

    async fn void(&self, key: &str) -> Result<(), PaymentError> {
        self.inner.void(key).await
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), PaymentError> {
        self.inner.refund(authorization_id, amount_cents, key).await
    }
}
