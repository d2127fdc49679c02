//! The daemon behind `edge-agent run`: opens the buffer, starts the link, the forwarder, the status sender, the
//! local HTTP endpoint and the sources, tells systemd it is ready, and on shutdown stops them all and flushes the
//! buffer.
//!
//! Shutdown is one [`CancellationToken`]; every task's loop selects on it. Nothing is lost by stopping at any point:
//! unacknowledged punches stay in the buffer and are sent after the next start.

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
use crate::forward::{
    ForwardMetrics, ForwardOptions, Forwarder, HttpLink, HttpLinkOptions, Link, MqttLink, MqttLinkOptions,
};
use state::AgentState;

/// How long tasks get to finish after the shutdown signal before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` is cancelled.
///
/// Prints `edge-agent listening on http://<addr>` on stdout once `/healthz` and `/metrics` are served.
///
/// # Errors
/// When the buffer cannot be opened, the link cannot be set up or the metrics address cannot be bound.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let faults = Faults::new();
    let board = DeviceStatusBoard::new();
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
    let state = Arc::new(AgentState {
        agent: config.agent.id.clone(),
        site: config.agent.site.clone(),
        started: Instant::now(),
        buffer: buffer.clone(),
        board: board.clone(),
        faults: faults.clone(),
        forward: Arc::new(ForwardMetrics::new()),
        push_commands: Arc::new(crate::adms::CommandQueue::for_devices(
            config.devices.iter().filter(|d| d.settings.kind() == "adms").map(|d| d.serial.clone()),
        )),
    });

    let (link, link_task) = make_link(&config, &faults, &shutdown)?;
    let mut tasks = Vec::new();
    tasks.extend(link_task);
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
    tasks.push(tokio::spawn(forwarder.run(shutdown.clone())));
    tasks.push(tokio::spawn(status_report::run_status_sender(
        state.clone(),
        link,
        config.status.interval,
        shutdown.clone(),
    )));

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
    tasks.extend(sources::start_sources(&config, &buffer, &board, &state.push_commands, &shutdown).await?);
    tasks.push(tokio::spawn(watchdog::run_watchdog(state.clone(), shutdown.clone())));

    tracing::info!(agent = %config.agent.id, site = %config.agent.site, depth = buffer.depth(), "agent running");
    watchdog::ready();

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    watchdog::stopping();
    let stop = futures::future::join_all(tasks);
    if tokio::time::timeout(STOP_GRACE, stop).await.is_err() {
        tracing::warn!("some tasks did not stop within {STOP_GRACE:?}; abandoning them");
    }
    buffer.flush().await.context("flushing the buffer at shutdown")?;
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
