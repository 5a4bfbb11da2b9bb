//! Incoming messages for OMS: the inventory's answers to reservations.

use std::sync::Arc;

use async_trait::async_trait;
use salve_common::messages::Envelope;
use salve_common::messaging::inbox::{HandleError, Handled, MessageHandler};
use salve_common::trace_context::TraceParent;

use crate::domain::OrderService;
use crate::domain::error::OrderError;
use crate::domain::ports::{Applied, StoreError};

pub struct OmsMessageHandler(pub Arc<OrderService>);

#[async_trait]
impl MessageHandler for OmsMessageHandler {
    async fn handle(&self, envelope: Envelope, trace: TraceParent) -> Result<Handled, HandleError> {
        match self.0.apply_inventory_answer(&envelope.message_id, &envelope.message, &trace).await {
            None => Err(HandleError::Rejected(format!("OMS does not handle {} messages", envelope.message.kind()))),
            Some(Ok(Applied::Applied)) => Ok(Handled::Processed),
            Some(Ok(Applied::Duplicate)) => Ok(Handled::Duplicate),
            Some(Err(OrderError::Store(StoreError::Unavailable(e)))) => Err(HandleError::Unavailable(e)),
            Some(Err(e)) => Err(HandleError::Unavailable(e.to_string())),
        }
    }
}
