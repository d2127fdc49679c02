//! The agent-protocol load generator: one MQTT connection that speaks for every simulated site's agent, as the real
//! agent does: punches are appended to the agent's queue under increasing sequence numbers, sent in batches (one in
//! flight per agent, up to `max_batch` after `linger`) as frames signed with that agent's key, and a batch is
//! dropped from the queue only when an acknowledgement signed by central for that agent answers it (`Stored`).
//! Anything else is waited out and the same batch is sent again after `ack_timeout`, so a replica, broker or
//! database failure loses nothing.
//!
//! For the figures it keeps the time each punch was generated, by agent and sequence number; AllLogs stores the
//! agent sequence number and the arrival time of every punch, so the latency of every punch is known at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use protocol::{
    AckOutcome, BatchAck, Encoding, FrameKind, Punch, PunchBatch, SequencedPunch, SignedFrame, TopicKind, Topics,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::world::SiteWorld;

/// How the simulated agents forward.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSettings {
    pub max_batch: usize,
    pub linger: Duration,
    pub ack_timeout: Duration,
}

/// Counters shared by every simulated agent.
#[derive(Debug, Default)]
pub struct Counters {
    pub batches_sent: AtomicU64,
    pub resends: AtomicU64,
    pub acked_new: AtomicU64,
    pub acked_duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub bad_acks: AtomicU64,
    pub mqtt_errors: AtomicU64,
}

/// One agent's buffer: its punches not yet acknowledged and the generation time of each sequence number.
#[derive(Default)]
struct Buffer {
    next_seq: u64,
    queue: Vec<SequencedPunch>,
    /// Microseconds since the epoch at which punch `seq` (index `seq - 1`) was generated.
    generated_us: Vec<i64>,
    in_flight: bool,
}

/// A simulated agent, as the producer and the end checks see it.
pub struct AgentHandle {
    pub world: SiteWorld,
    buffer: Arc<Mutex<Buffer>>,
}

impl AgentHandle {
    /// Appends a punch (what a driver does) and returns its sequence number.
    pub fn append(&self, punch: Punch, generated_us: i64) -> u64 {
        let mut buffer = lock(&self.buffer);
        buffer.next_seq += 1;
        let seq = buffer.next_seq;
        buffer.queue.push(SequencedPunch { seq, punch });
        buffer.generated_us.push(generated_us);
        seq
    }

    /// When punch `seq` was generated (µs since the epoch).
    pub fn generated_us(&self, seq: u64) -> Option<i64> {
        let buffer = lock(&self.buffer);
        usize::try_from(seq).ok().and_then(|s| s.checked_sub(1)).and_then(|i| buffer.generated_us.get(i).copied())
    }

    /// Punches waiting or in flight.
    pub fn unacknowledged(&self) -> usize {
        lock(&self.buffer).queue.len()
    }

    fn idle(&self) -> bool {
        let buffer = lock(&self.buffer);
        buffer.queue.is_empty() && !buffer.in_flight
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running generator.
pub struct Generator {
    pub agents: Vec<Arc<AgentHandle>>,
    pub counters: Arc<Counters>,
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

impl Generator {
    /// Connects to the broker at `127.0.0.1:port` and starts one forwarding task per site.
    ///
    /// # Errors
    /// When the topic prefix is invalid.
    pub fn start(port: u16, prefix: &str, sites: &[SiteWorld], settings: ForwardSettings) -> anyhow::Result<Self> {
        let topics = Topics::new(prefix).context("topic prefix")?;
        let mut options = MqttOptions::new("soak-generator", "127.0.0.1", port);
        let max_packet = protocol::limits::MAX_ENVELOPE_BYTES + 64 * 1024;
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false)
            .set_max_packet_size(max_packet, max_packet)
            .set_inflight(1000);
        let (client, eventloop) = AsyncClient::new(options, 4096);
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut routes = HashMap::new();
        let mut agents = Vec::new();
        for world in sites {
            let (tx, rx) = mpsc::unbounded_channel();
            routes.insert(world.agent.to_string(), (world.keys.clone(), tx));
            let handle = Arc::new(AgentHandle { world: world.clone(), buffer: Arc::default() });
            let forward = Forward {
                agent: handle.clone(),
                client: client.clone(),
                topic: topics.topic(TopicKind::Punches, &world.site, &world.agent),
                settings,
                counters: counters.clone(),
            };
            tasks.spawn(forward.run(rx, stop.clone()));
            agents.push(handle);
        }
        tasks.spawn(route_acks(eventloop, client, topics, routes, counters.clone(), stop.clone()));
        Ok(Self { agents, counters, tasks, stop })
    }

    /// Whether every punch appended so far is acknowledged.
    pub fn drained(&self) -> bool {
        self.agents.iter().all(|a| a.idle())
    }

    /// Punches appended and not yet acknowledged, over all agents.
    pub fn unacknowledged(&self) -> usize {
        self.agents.iter().map(|a| a.unacknowledged()).sum()
    }

    /// Stops every task.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One agent's forwarding loop.
struct Forward {
    agent: Arc<AgentHandle>,
    client: AsyncClient,
    topic: String,
    settings: ForwardSettings,
    counters: Arc<Counters>,
}

impl Forward {
    async fn run(self, mut acks: mpsc::UnboundedReceiver<BatchAck>, stop: CancellationToken) {
        loop {
            let items = {
                let mut buffer = lock(&self.agent.buffer);
                let n = buffer.queue.len().min(self.settings.max_batch);
                buffer.in_flight = n > 0;
                buffer.queue[..n].to_vec()
            };
            if items.is_empty() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(self.settings.linger) => continue,
                }
            }
            let n = items.len();
            let world = &self.agent.world;
            let batch = PunchBatch::new(world.agent.clone(), world.site.clone(), chrono::Utc::now(), items);
            let payload = match world.keys.seal_envelope(&world.agent, &batch) {
                Ok(payload) => payload,
                Err(e) => {
                    tracing::error!(agent = %world.agent, "a batch does not encode: {e}");
                    return;
                }
            };
            if !self.deliver(&batch, payload, &mut acks, &stop).await {
                return;
            }
            let mut buffer = lock(&self.agent.buffer);
            buffer.queue.drain(..n);
            buffer.in_flight = false;
        }
    }

    /// Sends `batch` until central stores it; false when stopped first.
    async fn deliver(
        &self,
        batch: &PunchBatch,
        payload: Vec<u8>,
        acks: &mut mpsc::UnboundedReceiver<BatchAck>,
        stop: &CancellationToken,
    ) -> bool {
        let mut first = true;
        loop {
            if !first {
                self.counters.resends.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            self.counters.batches_sent.fetch_add(1, Ordering::Relaxed);
            if self.client.publish(self.topic.clone(), QoS::AtLeastOnce, false, payload.clone()).await.is_err() {
                return false;
            }
            let deadline = tokio::time::Instant::now() + self.settings.ack_timeout;
            loop {
                let ack = tokio::select! {
                    () = stop.cancelled() => return false,
                    () = tokio::time::sleep_until(deadline) => break,
                    ack = acks.recv() => match ack { Some(ack) => ack, None => return false },
                };
                if !ack.answers(batch) {
                    continue;
                }
                match ack.outcome {
                    AckOutcome::Stored { new, duplicates, .. } => {
                        self.counters.acked_new.fetch_add(u64::from(new), Ordering::Relaxed);
                        self.counters.acked_duplicates.fetch_add(u64::from(duplicates), Ordering::Relaxed);
                        return true;
                    }
                    AckOutcome::Rejected { reason, kind } => {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(agent = %batch.agent, ?kind, "batch rejected: {reason}");
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                }
            }
        }
    }
}

type Routes = HashMap<String, (protocol::AgentKeys, mpsc::UnboundedSender<BatchAck>)>;

/// Polls the connection: subscribes to every agent's ack topic on each connection and hands each ack, once its
/// proof checks out with central's key for the agent its topic names, to that agent's loop.
async fn route_acks(
    mut eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    topics: Topics,
    routes: Routes,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let filter = topics.all(TopicKind::Acks);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                match open_ack(&topics, &routes, &publish.topic, &publish.payload) {
                    Some((tx, ack)) => {
                        let _ = tx.send(ack);
                    }
                    None => {
                        counters.bad_acks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(_) => {}
            Err(_) => {
                counters.mqtt_errors.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}

fn open_ack<'r>(
    topics: &Topics,
    routes: &'r Routes,
    topic: &str,
    payload: &[u8],
) -> Option<(&'r mpsc::UnboundedSender<BatchAck>, BatchAck)> {
    let agent = topics.parse(topic).ok()?.agent;
    let (keys, tx) = routes.get(agent.as_str())?;
    let frame = SignedFrame::from_bytes(payload).ok()?;
    let inner = keys.open(&frame, &agent, FrameKind::Ack).ok()?;
    let ack = protocol::decode::<BatchAck>(inner, Encoding::Bincode).ok()?;
    Some((tx, ack))
}
