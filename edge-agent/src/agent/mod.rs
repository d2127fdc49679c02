//! The daemon behind `edge-agent run`: opens the buffer, starts the link, the forwarder, the status sender, the
//! local HTTP endpoint and the sources, tells systemd it is ready, and on shutdown stops them all and flushes the
//! buffer.
//!
//! Shutdown is one [`CancellationToken`]; every task's loop selects on it. Nothing is lost by stopping at any point:
//! unacknowledged punches stay in the buffer and are sent after the next start.

pub mod damage;
pub mod dead_letters;
pub mod http;
pub mod metrics_text;
pub mod push_commands;
pub mod sources;
pub mod state;
pub mod status_cli;
pub mod status_report;
pub mod watchdog;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::buffer::{Buffer, BufferOptions};
use crate::config::{Config, Transport};
use crate::device_status::DeviceStatusBoard;
use crate::faults::Faults;
use crate::fleet::Fleet;
use crate::forward::{
    ForwardMetrics, ForwardOptions, Forwarder, HttpLink, HttpLinkOptions, Link, MqttLink, MqttLinkOptions,
};
use sources::SourceSet;
use state::AgentState;

/// How long tasks get to finish after the shutdown signal before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the final flush may take; the buffer survives an unflushed stop anyway.
const FINAL_FLUSH: Duration = Duration::from_secs(5);
/// After the shutdown signal the process exits by this deadline whatever hangs (the unit's TimeoutStopSec is 30 s).
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// How often a failed buffer store is checked for reopening.
const MAINTAIN_EVERY: Duration = Duration::from_millis(250);

/// Ends the process with an error `STOP_DEADLINE` after `shutdown` fires, if it has not ended by then: a stop must
/// never hang on a stuck disk or device. For the binary; a library user (the demo, tests) stops its own way.
pub fn arm_stop_deadline(shutdown: &CancellationToken) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        std::thread::spawn(|| {
            std::thread::sleep(STOP_DEADLINE);
            eprintln!("edge-agent: still stopping after {STOP_DEADLINE:?}; exiting without waiting further");
            std::process::exit(1);
        });
    });
}

/// Runs the agent until `shutdown` is cancelled.
///
/// Prints `edge-agent listening on http://<addr>` on stdout once `/healthz` and `/metrics` are served.
///
/// # Errors
/// When the buffer cannot be opened, the link cannot be set up or the metrics address cannot be bound.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let faults = Faults::new();
    let board = DeviceStatusBoard::new();
    // Every configured device is on the board before the first status goes out, reachable or not.
    for device in &config.devices {
        board.register(&device.serial);
    }
    let options = BufferOptions {
        path: config.buffer_path(),
        max_disk_bytes: config.buffer.max_disk_bytes,
        cache_bytes: config.buffer.cache_bytes,
        key_retention: config.buffer.key_retention,
    };
    let open_faults = faults.clone();
    let buffer = tokio::task::spawn_blocking(move || Buffer::open(options, open_faults))
        .await
        .context("opening the buffer")??;
    let report = Arc::new(crate::fleet::Report::new(config.status.interval));
    let state = Arc::new(AgentState {
        agent: config.agent.id.clone(),
        site: config.agent.site.clone(),
        started: Instant::now(),
        buffer: buffer.clone(),
        board: board.clone(),
        faults: faults.clone(),
        forward: Arc::new(ForwardMetrics::new()),
        push_commands: Arc::new(crate::adms::CommandQueue::for_devices(std::iter::empty())),
        report: report.clone(),
    });
    let sources = SourceSet::new(
        config.agent.site.clone(),
        buffer.clone(),
        board.clone(),
        state.push_commands.clone(),
        config.adms.clone(),
        shutdown.clone(),
    );
    let fleet = Fleet::new(
        config.agent.id.clone(),
        config.agent.site.clone(),
        config.agent.data_dir.clone(),
        config.central.managed,
        sources.clone(),
        state.push_commands.clone(),
        buffer.clone(),
        faults.clone(),
        report.clone(),
    );
    let devices = if config.central.managed { fleet.start_managed().await } else { config.devices.clone() };
    state.push_commands.set_known(devices.iter().filter(|d| d.settings.kind() == "adms").map(|d| d.serial.clone()));

    damage::recover(&devices, &buffer, &faults, &state.push_commands).await;

    let (link, link_task) = make_link(&config, &faults, &shutdown)?;
    let watched = watchdog::Tasks::default();
    let mut tasks = Vec::new();
    tasks.extend(link_task.map(|task| watched.watch("mqtt link", task)));
    let maintained = buffer.clone();
    let maintain_stop = shutdown.clone();
    tasks.push(watched.spawn("buffer maintenance", async move {
        let mut ticker = tokio::time::interval(MAINTAIN_EVERY);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = maintain_stop.cancelled() => return,
            }
            let buffer = maintained.clone();
            let _ = tokio::task::spawn_blocking(move || buffer.maintain()).await;
        }
    }));
    let forwarder = Forwarder::new(
        buffer.clone(),
        link.clone(),
        ForwardOptions {
            agent: config.agent.id.clone(),
            site: config.agent.site.clone(),
            max_batch: config.forward.max_batch,
            linger: config.forward.linger,
            initial_backoff: config.forward.initial_backoff,
            max_backoff: config.forward.max_backoff,
        },
        faults.clone(),
        state.forward.clone(),
    );
    tasks.push(watched.spawn("forwarder", forwarder.run(shutdown.clone())));
    tasks.push(watched.spawn(
        "status sender",
        status_report::run_status_sender(state.clone(), link.clone(), config.status.interval, shutdown.clone()),
    ));

    let listener = TcpListener::bind(config.metrics.listen)
        .await
        .with_context(|| format!("binding the metrics address {} (metrics.listen)", config.metrics.listen))?;
    let address = listener.local_addr()?;
    let http_state = state.clone();
    let http_shutdown = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = http::serve(listener, http_state, http_shutdown).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    }));
    println!("edge-agent listening on http://{address}");
    sources.apply(devices).await?;
    tasks.push(watched.spawn("sources", sources.clone().supervise()));
    let stopping = (sources.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move {
        stopping.1.cancelled().await;
        stopping.0.stop_all().await;
    }));
    let (inbound_tx, inbound_rx) = tokio::sync::mpsc::unbounded_channel();
    match &link {
        Link::Http(http) => {
            fleet.set_https(true);
            let inbox = crate::fleet::inbox::run(
                fleet.clone(),
                http.clone(),
                config.central.poll_wait,
                inbound_tx,
                shutdown.clone(),
            );
            tasks.push(watched.spawn("central inbox", inbox));
            tasks.push(watched.spawn("fleet", fleet.clone().run(inbound_rx, shutdown.clone())));
        }
        Link::Mqtt(mqtt) => {
            drop(inbound_tx);
            if let Some(inbound) = mqtt.take_inbound() {
                tasks.push(watched.spawn("fleet", fleet.clone().run(inbound, shutdown.clone())));
            }
        }
    }
    let send_timeout = config.central.request_timeout.max(config.mqtt.ack_timeout);
    tasks.push(tokio::spawn(watchdog::run_watchdog(state.clone(), watched, send_timeout, shutdown.clone())));

    tracing::info!(agent = %config.agent.id, site = %config.agent.site, depth = buffer.depth(), "agent running");
    watchdog::ready();

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    watchdog::stopping();
    let stop = futures::future::join_all(tasks);
    if tokio::time::timeout(STOP_GRACE, stop).await.is_err() {
        tracing::warn!("some tasks did not stop within {STOP_GRACE:?}; abandoning them");
    }
    match tokio::time::timeout(FINAL_FLUSH, buffer.flush()).await {
        // A store that failed is flushed by sled's own recovery at the next start; nothing durable is lost.
        Ok(Err(e)) => tracing::warn!(error = %e, "the final flush failed; unflushed punches are read again"),
        Ok(Ok(())) => {}
        Err(_) => tracing::warn!("the final flush did not complete within {FINAL_FLUSH:?}; stopping anyway"),
    }
    tracing::info!(depth = buffer.depth(), "stopped; buffer flushed");
    Ok(())
}

fn make_link(
    config: &Config,
    faults: &Faults,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Link, Option<tokio::task::JoinHandle<()>>)> {
    let central = &config.central;
    match central.transport {
        Transport::Https => {
            let link = HttpLink::new(HttpLinkOptions {
                base_url: central.url.clone(),
                token: central.token.clone().unwrap_or_default(),
                ca_file: central.ca_file.clone(),
                ca_fingerprint: central.ca_fingerprint,
                client_cert: central.client_cert.clone(),
                client_key: central.client_key.clone(),
                request_timeout: central.request_timeout,
            })?;
            Ok((Link::Http(link), None))
        }
        Transport::Mqtt => {
            let (tls, rest) = match central.url.split_once("://") {
                Some(("mqtts", rest)) => (true, rest),
                Some((_, rest)) => (false, rest),
                None => (false, central.url.as_str()),
            };
            let rest = rest.trim_end_matches('/');
            let (host, port) = match rest.rsplit_once(':') {
                Some((host, port)) => (
                    host.to_owned(),
                    port.parse::<u16>().with_context(|| format!("port in central.url {:?}", central.url))?,
                ),
                None => (rest.to_owned(), if tls { 8883 } else { 1883 }),
            };
            let token = central.token.as_deref().unwrap_or_default();
            let (_, keys) = protocol::AgentKeys::from_token(token).context("central.token")?;
            let (link, task) = MqttLink::start(
                MqttLinkOptions {
                    host,
                    port,
                    tls,
                    agent: config.agent.id.clone(),
                    site: config.agent.site.clone(),
                    topics: config.mqtt.topics.clone(),
                    username: config.mqtt.username.clone(),
                    keys,
                    faults: faults.clone(),
                    ca_file: central.ca_file.clone(),
                    client_cert: central.client_cert.clone(),
                    client_key: central.client_key.clone(),
                    keep_alive: config.mqtt.keep_alive,
                    ack_timeout: config.mqtt.ack_timeout,
                },
                shutdown.clone(),
            )?;
            Ok((Link::Mqtt(link), Some(task)))
        }
    }
}
