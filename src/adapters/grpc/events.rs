//! `polyport.v1.EventService/Subscribe`: the shared event log as a server stream, replayed after
//! `after_event_id`, filtered per event by `domain::delivery::deliver` (authorization at delivery).

use tonic::{Request, Response, Status, Streaming};

use super::call::Call;
use super::stream::{Out, channel, ended};
use super::{Grpc, convert, live, pb};
use crate::domain::delivery::{Topic, deliver};

#[tonic::async_trait]
impl pb::event_service_server::EventService for Grpc {
    type SubscribeStream = Out<pb::Event>;
    type LiveStream = Out<pb::LiveResponse>;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let r = req.into_inner();
        let topics = Topic::parse_all(&r.topics).map_err(|e| call.fail(&e))?;
        let slot = call.stream_slot().await?;
        let mut subscription =
            self.shared.bus.subscribe(call.actor(), r.after_event_id).await.map_err(|e| call.fail(&e))?;
        let (tx, out) = channel(self.shared.stream_settings.ws_send_queue);
        tokio::spawn(async move {
            let _slot = slot;
            let end = ended(&call, true);
            tokio::pin!(end);
            loop {
                let next = tokio::select! {
                    biased;
                    status = &mut end => { let _ = tx.send(Err(status)).await; return; }
                    () = tx.closed() => return,
                    next = subscription.next() => next,
                };
                let event = match next {
                    Ok(event) => event,
                    Err(e) => {
                        let _ = tx.send(Err(call.fail(&e))).await;
                        return;
                    }
                };
                let Some(delivery) = deliver(call.actor(), &topics, &event) else { continue };
                tokio::select! {
                    biased;
                    status = &mut end => { let _ = tx.send(Err(status)).await; return; }
                    sent = tx.send(Ok(convert::event(delivery))) => if sent.is_err() { return },
                }
            }
        });
        Ok(Response::new(out))
    }

    async fn live(&self, req: Request<Streaming<pb::LiveRequest>>) -> Result<Response<Self::LiveStream>, Status> {
        let call = Call::open(&self.shared, &req).await?;
        let slot = call.stream_slot().await?;
        let (tx, out) = channel(self.shared.stream_settings.ws_send_queue);
        tokio::spawn(live::run(call, slot, req.into_inner(), tx));
        Ok(Response::new(out))
    }
}
