//! The HTTPS side of central -> agent: a long poll. The agent asks `GET /api/v1/agent/inbox` with the configuration
//! version it runs; central answers at once when it has commands or another configuration, or after
//! `central.poll_wait_secs` with nothing. A configuration is applied in order with the polls; commands go to [`super::Fleet::run`] like MQTT messages.
//! Failures back off (1 s doubling to 60 s); a central without the endpoint (404, an older release) is asked again
//! every few minutes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Fleet, Inbound};
use crate::forward::backoff::Backoff;
use crate::forward::{ForwardError, HttpLink};

/// Polls until `shutdown`.
pub async fn run(
    fleet: Arc<Fleet>,
    link: HttpLink,
    wait: Duration,
    inbound: mpsc::UnboundedSender<Inbound>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut force = false;
    loop {
        let version = fleet.report.config_version();
        let polled = tokio::select! {
            polled = link.poll_inbox(version, force, wait) => polled,
            () = fleet.fetch_config.notified(), if !force => {
                force = true;
                continue;
            }
            () = shutdown.cancelled() => return,
        };
        let delay = match polled {
            Ok(inbox) => {
                backoff.reset();
                if let Some(config) = inbox.config {
                    // Applied here, in order with the polls, so a reload that asked for it finds it applied.
                    if let Err(message) = fleet.apply_config(config, false).await {
                        tracing::warn!(%message, "managed configuration not applied");
                    }
                }
                for command in inbox.commands {
                    if inbound.send(Inbound::Command(command)).is_err() {
                        return;
                    }
                }
                if force {
                    force = false;
                    fleet.fetched();
                }
                None
            }
            Err(e) if endpoint_missing(&e) => {
                tracing::info!("central has no agent inbox (an older release); asking again in 5 minutes");
                Some(Duration::from_secs(300))
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "polling central for commands failed");
                Some(delay)
            }
        };
        if let Some(delay) = delay {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = fleet.fetch_config.notified() => force = true,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Whether `e` says central has no inbox: an older release answers 404 (as a plain failure, or with a JSON body).
fn endpoint_missing(e: &ForwardError) -> bool {
    matches!(e, ForwardError::Refused { status: 404, .. } | ForwardError::Server { status: 404, .. })
}
