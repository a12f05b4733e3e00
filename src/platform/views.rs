//! The public (anonymous) view of each event, serialized once and shared by every anonymous
//! subscriber, so fan-out to thousands of browsers costs one serialization per event.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::json;

use crate::domain::delivery::{Delivery, view};
use crate::domain::events::StoredEvent;
use crate::domain::policy::Actor;

/// One event as anonymous subscribers see it, pre-serialized.
pub struct PublicView {
    pub delivery: Delivery,
    /// The envelope `{id, type, topic, occurred_at, data}` as JSON.
    pub envelope: String,
    /// The WebSocket event frame after its `subscription` member:
    /// `"event_id":…,"event_type":…,"topic":…,"occurred_at":…,"data":…}`.
    pub ws_tail: String,
    /// The whole SSE frame (`id:`, `event:`, `data:` envelope), shared by every SSE subscriber.
    pub sse_frame: bytes::Bytes,
}

impl PublicView {
    /// The WebSocket event frame for `subscription`.
    pub fn ws_frame(&self, subscription: &str) -> String {
        format!("{{\"type\":\"event\",\"subscription\":{},{}", json!(subscription), self.ws_tail)
    }
}

const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct PublicViews {
    cache: RwLock<HashMap<i64, Option<Arc<PublicView>>>>,
}

impl PublicViews {
    /// The anonymous view of `event` (None when anonymous callers may not see it).
    pub fn of(&self, event: &StoredEvent) -> Option<Arc<PublicView>> {
        if let Some(known) = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(&event.id) {
            return known.clone();
        }
        let made = view(&Actor::Anonymous, event).map(|d| {
            let envelope = serde_json::to_string(&d).unwrap_or_default();
            let tail = json!({"event_id": d.id, "event_type": d.event_type, "topic": d.topic, "occurred_at": d.occurred_at, "data": d.data});
            let tail = tail.to_string();
            let sse_frame = format!("id: {}\nevent: {}\ndata: {envelope}\n\n", d.id, d.event_type).into();
            Arc::new(PublicView { ws_tail: tail[1..].to_string(), delivery: d, envelope, sse_frame })
        });
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CAPACITY {
            let oldest = event.id - CAPACITY as i64 / 2;
            cache.retain(|id, _| *id > oldest);
        }
        cache.insert(event.id, made.clone());
        made
    }
}
