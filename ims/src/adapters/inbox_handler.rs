//! Incoming messages for IMS: reservation requests and releases from OMS.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::IntCounterVec;
use salve_common::messages::{Envelope, Message};
use salve_common::messaging::inbox::{HandleError, Handled, MessageHandler};
use salve_common::trace_context::TraceParent;

use crate::domain::InventoryService;
use crate::domain::error::InventoryError;
use crate::domain::ports::{Released, Reserved};

pub struct ImsMessageHandler {
    pub service: Arc<InventoryService>,
    /// `ims_reservations_total{outcome}`: reserved, failed, released.
    pub outcomes: IntCounterVec,
}

fn unavailable(e: InventoryError) -> HandleError {
    HandleError::Unavailable(e.to_string())
}

#[async_trait]
impl MessageHandler for ImsMessageHandler {
    async fn handle(&self, envelope: Envelope, trace: TraceParent) -> Result<Handled, HandleError> {
        let id = &envelope.message_id;
        match &envelope.message {
            Message::ReserveInventory { order_id, items, .. } => {
                match self.service.reserve(id, order_id, items, &trace).await.map_err(unavailable)? {
                    Reserved::Duplicate => Ok(Handled::Duplicate),
                    Reserved::Reserved => {
                        self.outcomes.with_label_values(&["reserved"]).inc();
                        Ok(Handled::Processed)
                    }
                    Reserved::Failed { .. } => {
                        self.outcomes.with_label_values(&["failed"]).inc();
                        Ok(Handled::Processed)
                    }
                }
            }
            Message::ReleaseInventory { order_id, .. } => match self.service.release(id, order_id).await.map_err(unavailable)? {
                Released::Duplicate => Ok(Handled::Duplicate),
                Released::Released => {
                    self.outcomes.with_label_values(&["released"]).inc();
                    Ok(Handled::Processed)
                }
                Released::NothingHeld => Ok(Handled::Processed),
            },
            other => Err(HandleError::Rejected(format!("IMS does not handle {} messages", other.kind()))),
        }
    }
}
