//! The `eventbus.v1.PubSub` gRPC service over the org's change log: `GetTopic`,
//! `GetSchema` and `Subscribe` with pull flow control. `Publish` and `PublishStream` are
//! not offered (a call gets gRPC's UNIMPLEMENTED): sluice only subscribes.
//!
//! Every call must carry the metadata the real service reads: `accesstoken` (a session
//! the org issued and that has not expired), `instanceurl` (this org's) and `tenantid`
//! (its org Id).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::avro::{EventSchema, topic_of};
use super::proto::pub_sub_server::PubSub;
use super::proto::{
    ConsumerEvent, FetchRequest, FetchResponse, ProducerEvent, ReplayPreset, SchemaInfo, SchemaRequest, TopicInfo,
    TopicRequest,
};
use crate::server::AppState;
use crate::store::Captured;

/// The topic of every object's change events.
pub const ALL_CHANGES: &str = "/data/ChangeEvents";

/// The most events one `FetchRequest` may ask for.
pub const MAX_REQUESTED: i32 = 100;

/// The text a subscription fails with when its replay id is unknown or expired.
pub const REPLAY_ID_CORRUPTED: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";

/// The service, over the org's state.
pub struct PubSubService {
    state: Arc<AppState>,
    /// Turns true when the server stops: every subscription then ends its stream cleanly.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl PubSubService {
    /// The service of the org in `state`; its subscriptions end when `closing` turns true.
    pub fn new(state: Arc<AppState>, closing: tokio::sync::watch::Receiver<bool>) -> Self {
        PubSubService { state, closing }
    }
}

/// Which changes a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    /// Every object's.
    All,
    /// One object's (its table position).
    Object(usize),
}

impl Topic {
    fn carries(self, change: &Captured) -> bool {
        match self {
            Topic::All => true,
            Topic::Object(t) => change.table == t,
        }
    }
}

/// `rpc_id`s: unique per response, as the real service's are.
fn rpc_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn replay_bytes(replay: u64) -> Vec<u8> {
    replay.to_be_bytes().to_vec()
}

fn corrupted(what: &str) -> Status {
    Status::invalid_argument(format!("The replay ID {what}. Use a valid replay ID. {REPLAY_ID_CORRUPTED}"))
}

impl PubSubService {
    /// Checks the call's session metadata.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let meta = request.metadata();
        let get = |key: &str| meta.get(key).and_then(|v| v.to_str().ok());
        let token = get("accesstoken").ok_or_else(|| Status::unauthenticated("accesstoken metadata is missing"))?;
        if !self.state.session_valid(token, self.state.clock.now_ms()) {
            return Err(Status::unauthenticated("The session is invalid or has expired. Log in again."));
        }
        let instance = get("instanceurl").unwrap_or_default().trim_end_matches('/');
        if instance != self.state.base_url.trim_end_matches('/') {
            return Err(Status::unauthenticated(format!("instanceurl {instance:?} is not this org's instance URL")));
        }
        let tenant = get("tenantid").unwrap_or_default();
        if tenant != self.state.org.read().org_id {
            return Err(Status::unauthenticated(format!("tenantid {tenant:?} is not this org's Id")));
        }
        Ok(())
    }

    fn topic(&self, name: &str) -> Result<Topic, Status> {
        if name == ALL_CHANGES {
            return Ok(Topic::All);
        }
        let org = self.state.org.read();
        org.tables.iter().position(|t| topic_of(&t.def.name) == name).map(Topic::Object).ok_or_else(|| {
            Status::not_found(format!("Topic {name:?} does not exist, or change events are not enabled for it"))
        })
    }
}

type Responses = Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PubSub for PubSubService {
    type SubscribeStream = Responses;

    async fn get_topic(&self, request: Request<TopicRequest>) -> Result<Response<TopicInfo>, Status> {
        self.authorize(&request)?;
        let name = request.into_inner().topic_name;
        let topic = self.topic(&name)?;
        let org = self.state.org.read();
        let schema_id = match topic {
            Topic::All => String::new(),
            Topic::Object(t) => EventSchema::of(&org.tables[t].def).id,
        };
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: org.org_id.clone(),
            can_publish: false,
            can_subscribe: true,
            schema_id,
            rpc_id: rpc_id(),
        }))
    }

    async fn get_schema(&self, request: Request<SchemaRequest>) -> Result<Response<SchemaInfo>, Status> {
        self.authorize(&request)?;
        let id = request.into_inner().schema_id;
        let org = self.state.org.read();
        let schema = org
            .tables
            .iter()
            .map(|t| EventSchema::of(&t.def))
            .find(|s| s.id == id)
            .ok_or_else(|| Status::not_found(format!("Schema {id:?} does not exist")))?;
        Ok(Response::new(SchemaInfo { schema_json: schema.json, schema_id: schema.id, rpc_id: rpc_id() }))
    }

    async fn subscribe(&self, request: Request<Streaming<FetchRequest>>) -> Result<Response<Responses>, Status> {
        self.authorize(&request)?;
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("The subscription ended before its first FetchRequest"))?;
        let topic = self.topic(&first.topic_name)?;
        let requested = requested(first.num_requested)?;
        let position = {
            let org = self.state.org.read();
            let log = &org.changes;
            match ReplayPreset::try_from(first.replay_preset).unwrap_or(ReplayPreset::Latest) {
                ReplayPreset::Latest => log.latest(),
                ReplayPreset::Earliest => 0,
                ReplayPreset::Custom => {
                    let bytes: [u8; 8] =
                        first.replay_id.as_slice().try_into().map_err(|_| corrupted("is not one this org issued"))?;
                    let id = u64::from_be_bytes(bytes);
                    // Valid: one still held, or the latest (keepalives carry it), with nothing
                    // after it expired.
                    if log.missed_after(id) || (id != log.latest() && !log.holds(id)) {
                        let why = if id <= log.expired_through() {
                            "is older than the retention window"
                        } else {
                            "is not one this org issued"
                        };
                        return Err(corrupted(why));
                    }
                    id
                }
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let subscription = Subscription {
            state: self.state.clone(),
            closing: self.closing.clone(),
            topic,
            topic_name: first.topic_name,
            position,
            pending: requested,
        };
        tokio::spawn(subscription.run(inbound, tx));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `num_requested` of one request, checked.
fn requested(n: i32) -> Result<u64, Status> {
    if !(1..=MAX_REQUESTED).contains(&n) {
        return Err(Status::invalid_argument(format!(
            "num_requested = {n}: a FetchRequest asks for 1 to {MAX_REQUESTED} events"
        )));
    }
    Ok(n as u64)
}

/// One subscription's state while it streams.
struct Subscription {
    state: Arc<AppState>,
    closing: tokio::sync::watch::Receiver<bool>,
    topic: Topic,
    topic_name: String,
    /// The replay id of the last change delivered or passed over (0: before the oldest).
    position: u64,
    /// Events requested and not yet delivered.
    pending: u64,
}

type Sender = tokio::sync::mpsc::Sender<Result<FetchResponse, Status>>;

impl Subscription {
    async fn run(mut self, mut inbound: Streaming<FetchRequest>, tx: Sender) {
        let mut changed = self.state.org.read().changes.watch();
        let mut closing = self.closing.clone();
        // A keepalive goes out when nothing was sent for the interval, however often
        // other topics' changes wake this loop.
        let state = self.state.clone();
        let interval = move || Duration::from_secs(state.knobs.read().pubsub.keepalive_secs);
        let mut keepalive_at = tokio::time::Instant::now() + interval();
        loop {
            if *closing.borrow() {
                return;
            }
            if self.pending > 0 {
                match self.batch() {
                    Ok(Some(response)) => {
                        if tx.send(Ok(response)).await.is_err() {
                            return;
                        }
                        keepalive_at = tokio::time::Instant::now() + interval();
                        continue;
                    }
                    Ok(None) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(next)) => {
                        if !next.topic_name.is_empty() && next.topic_name != self.topic_name {
                            let status = Status::invalid_argument(format!(
                                "A FetchRequest named topic {:?} in a subscription to {:?}; one subscription reads one topic",
                                next.topic_name, self.topic_name
                            ));
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                        match requested(next.num_requested) {
                            Ok(n) => self.pending += n,
                            Err(status) => {
                                let _ = tx.send(Err(status)).await;
                                return;
                            }
                        }
                    }
                    // The client closed its side, or the connection is gone.
                    Ok(None) | Err(_) => return,
                },
                seen = changed.changed() => {
                    if seen.is_err() {
                        return;
                    }
                }
                // The server stops: the stream ends with an OK status.
                stop = closing.changed() => {
                    if stop.is_err() || *closing.borrow() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(keepalive_at) => {
                    // The subscription's own position: resuming from it skips nothing it
                    // has not been sent (changes it has not asked for yet lie after it).
                    let alive = FetchResponse {
                        events: Vec::new(),
                        latest_replay_id: replay_bytes(self.position),
                        rpc_id: rpc_id(),
                        pending_num_requested: self.pending as i32,
                    };
                    if tx.send(Ok(alive)).await.is_err() {
                        return;
                    }
                    keepalive_at = tokio::time::Instant::now() + interval();
                }
            }
        }
    }

    /// The next events due, as one response; `None` when none are.
    fn batch(&mut self) -> Result<Option<FetchResponse>, Status> {
        let org = self.state.org.read();
        let log = &org.changes;
        if log.missed_after(self.position) {
            // Changes the subscriber had not read yet expired while it streamed.
            return Err(corrupted("is older than the retention window"));
        }
        let (due, examined) = log.after(self.position, self.pending as usize, |c| self.topic.carries(c));
        self.position = self.position.max(examined);
        if due.is_empty() {
            return Ok(None);
        }
        // One schema per object in the batch: building one renders and hashes its JSON.
        let mut schemas: Vec<(usize, EventSchema)> = Vec::new();
        let mut events = Vec::with_capacity(due.len());
        for change in &due {
            let at = match schemas.iter().position(|(t, _)| *t == change.table) {
                Some(at) => at,
                None => {
                    schemas.push((change.table, EventSchema::of(&org.tables[change.table].def)));
                    schemas.len() - 1
                }
            };
            let schema = &schemas[at].1;
            let payload = schema.encode(change);
            events.push(ConsumerEvent {
                event: Some(ProducerEvent {
                    id: crate::ids::uuid_text(change.replay),
                    schema_id: schema.id.clone(),
                    payload,
                    headers: Vec::new(),
                }),
                replay_id: replay_bytes(change.replay),
            });
        }
        self.pending -= events.len() as u64;
        let last = due.last().map_or(self.position, |c| c.replay);
        Ok(Some(FetchResponse {
            events,
            latest_replay_id: replay_bytes(last),
            rpc_id: rpc_id(),
            pending_num_requested: self.pending as i32,
        }))
    }
}
