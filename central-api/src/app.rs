//! The running service: connects the database, binds its own listener (port 0 in tests), and serves HTTP(S), the
//! attendance worker and scheduled jobs and, when configured, the MQTT consumer, until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use crate::attendance::jobs::schedule;
use crate::auth::Authenticator;
use crate::config::{AttendanceConfig, Config};
use crate::http::{router, AppState};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::mqtt::MqttConsumer;
use crate::store::Store;

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet running, central-api.
pub struct Application {
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    state: AppState,
    mqtt: Option<MqttConsumer>,
    mqtt_eventloop: Option<rumqttc::v5::EventLoop>,
    attendance: AttendanceConfig,
    /// The whole configuration, for the tracked-job runner (its `[jobs]` table, and what job kinds need).
    config: Arc<Config>,
}

impl Application {
    /// Connects the database (applying migrations unless `auto_migrate` is off), loads TLS files, and binds
    /// `config.listen` (port 0 picks a free port). Refuses plain HTTP off loopback unless `allow_plain_http`.
    ///
    /// # Errors
    /// When the database, the TLS files or the address fail; the message says which.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.tls.is_none() && !config.plain_http_allowed() {
            bail!(
                "refusing to serve plain HTTP on {}: agent tokens would cross the network in clear. Configure [tls] \
                 cert_file and key_file, listen on a loopback address, or set allow_plain_http = true (behind a TLS \
                 proxy)",
                config.listen
            );
        }
        let tls = match &config.tls {
            Some(files) => {
                install_crypto_provider();
                Some(RustlsConfig::from_pem_file(&files.cert_file, &files.key_file).await.with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        files.cert_file.display(),
                        files.key_file.display()
                    )
                })?)
            }
            None => None,
        };
        let store = Store::connect(&config).await.context("connecting to the database")?;
        if config.auto_migrate {
            store.migrate().await.context("applying database migrations")?;
        }
        let metrics = Arc::new(Metrics::default());
        let auth = Arc::new(Authenticator::new(store.clone(), Duration::from_secs(config.auth_cache_ttl_secs)));
        let ingest = Arc::new(Ingest::new(store.clone(), metrics));
        let (mqtt, mqtt_eventloop) = match &config.mqtt {
            Some(mqtt) => {
                install_crypto_provider();
                let (consumer, eventloop) =
                    MqttConsumer::new(mqtt.clone(), ingest.clone(), auth.clone(), store.clone())?;
                (Some(consumer), Some(eventloop))
            }
            None => (None, None),
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("binding the API listener on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let attendance = config.attendance.clone();
        Ok(Self {
            listener,
            tls,
            state: AppState {
                store,
                auth,
                ingest,
                limiter: Default::default(),
                secure_cookies: config.browsers_use_https(),
                stopping: CancellationToken::new(),
                backfill_days: config.attendance.backfill_days,
                fleet: crate::fleet::Hub::new(),
                data_dir: config.data_dir.clone(),
                max_backup_upload_bytes: config.backup.max_upload_bytes,
            },
            mqtt,
            mqtt_eventloop,
            attendance,
            config: Arc::new(config),
        })
    }

    /// The address actually bound.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The base URL clients use: `https://` when TLS is configured.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn url(&self) -> std::io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.local_addr()?))
    }

    /// Serves until `shutdown` completes, then stops taking requests, lets in-flight ones finish, and stops the MQTT
    /// consumer the same way.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });

        let mut fleet_task = None;
        let mqtt_task = match (self.mqtt, self.mqtt_eventloop) {
            (Some(consumer), Some(eventloop)) => {
                let (client, topics) = consumer.publisher();
                let dispatcher = crate::fleet::dispatch::Dispatcher {
                    store: self.state.store.clone(),
                    client,
                    topics,
                    auth: self.state.auth.clone(),
                    hub: self.state.fleet.clone(),
                };
                fleet_task = Some(tokio::spawn(dispatcher.run(token.clone())));
                Some(tokio::spawn(consumer.run(eventloop, token.clone())))
            }
            _ => None,
        };
        if fleet_task.is_none() {
            let (store, hub) = (self.state.store.clone(), self.state.fleet.clone());
            fleet_task = Some(tokio::spawn(crate::fleet::dispatch::expire_only(store, hub, token.clone())));
        }

        let mut attendance_tasks = Vec::new();
        if self.attendance.worker {
            let store = self.state.store.clone();
            attendance_tasks.push(tokio::spawn(schedule::run_worker(store, self.attendance.clone(), token.clone())));
        }
        if self.config.jobs.runner {
            let store = self.state.store.clone();
            attendance_tasks.push(tokio::spawn(crate::jobs::runner::run(store, self.config.clone(), token.clone())));
        }
        if self.config.alerts.enabled {
            let (store, alerts) = (self.state.store.clone(), self.config.alerts.clone());
            attendance_tasks.push(tokio::spawn(crate::alerts::run(store, alerts, token.clone())));
        }
        if self.attendance.scheduler {
            let store = self.state.store.clone();
            attendance_tasks.push(tokio::spawn(schedule::run_scheduler(store, self.attendance.clone(), token.clone())));
        }

        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        let http_token = token.clone();
        let stopping = self.state.stopping.clone();
        tokio::spawn(async move {
            http_token.cancelled().await;
            stopping.cancel();
            stopper.graceful_shutdown(Some(GRACE));
        });
        let app = router(self.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = match self.tls {
            Some(tls) => axum_server::from_tcp_rustls(self.listener, tls).handle(handle).serve(app).await,
            None => axum_server::from_tcp(self.listener).handle(handle).serve(app).await,
        };
        // The HTTP server can also stop on its own (an accept error); the consumer must stop with it.
        token.cancel();
        if let Some(task) = mqtt_task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "MQTT consumer failed"),
                Err(e) => tracing::error!(error = %e, "MQTT consumer panicked"),
            }
        }
        if let Some(task) = fleet_task {
            let _ = task.await;
        }
        for task in attendance_tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "attendance task panicked");
            }
        }
        self.state.store.close().await;
        served.context("serving HTTP")?;
        Ok(())
    }
}

/// rustls needs one process-wide crypto provider; ours is ring. Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
