//! Test support for running sites from central (issue 17): a served central-api (either backend, HTTPS only or with
//! the MQTT broker) with sites `A` and `B`, one agent at `A`, administrators `adminA`, `viewerA`, `adminB`; a managed
//! `edge-agent` on either transport; and small helpers to wait and to call the API.
//!
//! The agent's id is unique per rig (`gate-<random>`): on MQTT the agent id is the client id and names a persistent
//! session, so two tests sharing the broker with one id would take the connection (and the messages queued for the
//! session) from each other. That is why the MQTT variant of `fleet_config` once lost its configuration frame.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::admin::{AdminFixture, Auth};
use crate::central::Backend;
use crate::harness::Spawned;
use crate::services::require_mqtt;

/// How an agent reaches central.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Mqtt,
}

/// A served central-api with two sites, one agent and administrators of each role.
pub struct FleetRig {
    pub fixture: AdminFixture,
    pub transport: Transport,
    /// The MQTT topic prefix (unique per test, so tests share the broker).
    pub prefix: String,
    /// The agent's id (`gate-<random>`) and token.
    pub agent: String,
    pub token: String,
    pub root: Auth,
    pub admin_a: Auth,
    pub viewer_a: Auth,
    pub admin_b: Auth,
}

impl FleetRig {
    /// Central on `backend`, consuming MQTT when `transport` is MQTT.
    ///
    /// # Errors
    /// When a step fails.
    pub async fn new(backend: Backend, transport: Transport) -> anyhow::Result<Self> {
        Self::with_env(backend, transport, Vec::new()).await
    }

    /// [`FleetRig::new`] with more environment for central (an SMTP server, alert intervals).
    ///
    /// # Errors
    /// When a step fails.
    pub async fn with_env(
        backend: Backend,
        transport: Transport,
        extra: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let prefix = format!("fleet-{:012x}", rand::random::<u64>() >> 16);
        let mut env: Vec<(String, String)> = vec![("CENTRAL_API_AUTH_CACHE_TTL_SECS".into(), "0".into())];
        env.extend(extra);
        if transport == Transport::Mqtt {
            let addr = require_mqtt();
            let (host, port) = addr.rsplit_once(':').context("host:port")?;
            env.extend([
                ("CENTRAL_API_MQTT__HOST".into(), host.to_owned()),
                ("CENTRAL_API_MQTT__PORT".into(), port.to_owned()),
                ("CENTRAL_API_MQTT__TOPIC_PREFIX".into(), prefix.clone()),
                ("CENTRAL_API_MQTT__GROUP".into(), "central".into()),
                ("CENTRAL_API_MQTT__CLIENT_ID".into(), format!("central-{prefix}")),
                ("CENTRAL_API_MQTT__SESSION_EXPIRY_SECS".into(), "30".into()),
            ]);
        }
        let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut fixture = AdminFixture::blank(backend, &refs).await?;
        if transport == Transport::Mqtt {
            fixture.central.process.wait_for_line("central-api consuming MQTT", Duration::from_secs(30)).await?;
        }
        fixture.db.create_site("A").await?;
        fixture.db.create_site("B").await?;
        let agent = format!("gate-{:08x}", rand::random::<u32>());
        let token = fixture.db.create_agent(&agent, "A").await?;
        fixture.create_admin("adminA", "admin", Some("A")).await?;
        fixture.create_admin("viewerA", "viewer", Some("A")).await?;
        fixture.create_admin("adminB", "admin", Some("B")).await?;
        let root = fixture.token("root").await?;
        let admin_a = fixture.token("adminA").await?;
        let viewer_a = fixture.token("viewerA").await?;
        let admin_b = fixture.token("adminB").await?;
        Ok(Self { fixture, transport, prefix, agent, token, root, admin_a, viewer_a, admin_b })
    }

    /// Calls the API.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.fixture.call(method, path, auth, body).await
    }

    /// Writes the configuration of the managed agent in `dir` and returns its path.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn agent_config(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let central = match self.transport {
            Transport::Https => format!(
                "[central]\ntransport = \"https\"\nurl = \"{}\"\ntoken = \"{}\"\nmanaged = true\npoll_wait_secs = 5\n",
                self.fixture.central.url, self.token
            ),
            Transport::Mqtt => format!(
                "[central]\ntransport = \"mqtt\"\nurl = \"mqtt://{}\"\ntoken = \"{}\"\nmanaged = true\n\n\
                 [mqtt]\ntopic_prefix = \"{}\"\nack_timeout_secs = 10\n",
                require_mqtt(),
                self.token,
                self.prefix
            ),
        };
        let text = format!(
            "[agent]\nid = \"{}\"\nsite = \"A\"\ndata_dir = \"{}\"\n\n{central}\n\
             [forward]\nlinger_ms = 20\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:0\"\n",
            self.agent,
            dir.join("data").display()
        );
        let path = dir.join("agent.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The configuration version the agent last reported, if it reported one.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn reported_version(&self) -> anyhow::Result<Option<i64>> {
        let n = self
            .fixture
            .db
            .scalar(&format!(
                "SELECT COALESCE(MAX(config_version), -1) FROM agent_links WHERE agent_id = '{}'",
                self.agent
            ))
            .await?;
        Ok((n >= 0).then_some(n))
    }

    /// Site `A`'s configuration version.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn site_version(&self) -> anyhow::Result<i64> {
        self.fixture.db.scalar("SELECT COALESCE(MAX(version), 0) FROM site_config_versions WHERE site_id = 'A'").await
    }

    /// Waits for a command to finish (`done`, `failed` or `expired`) and returns it.
    ///
    /// # Errors
    /// When it does not finish within `within`.
    pub async fn finished(&self, id: i64, within: Duration) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            let (status, body) = self.call(Method::GET, &format!("/api/v1/commands/{id}"), &self.root, None).await?;
            anyhow::ensure!(status == StatusCode::OK, "GET command {id}: {status} {body}");
            if ["done", "failed", "expired"].contains(&body["state"].as_str().unwrap_or("")) {
                return Ok(body);
            }
            anyhow::ensure!(start.elapsed() < within, "command {id} still {} after {within:?}: {body}", body["state"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the service and drops the database.
    pub async fn cleanup(self) {
        self.fixture.cleanup().await;
    }
}

/// Starts the real agent on `config`.
///
/// # Errors
/// When it does not start.
pub async fn start_agent(config: &Path) -> anyhow::Result<Spawned> {
    crate::pipeline::start_agent(config).await
}

/// Polls `check` every 50 ms until it is true; fails after `within`. Returns how long it took.
///
/// # Panics
/// When the condition does not hold in time.
pub async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

impl FleetRig {
    /// Posts a command request as `auth`; returns the status and the created commands' ids (empty when refused)
    /// with the answer.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn command(&self, auth: &Auth, body: Value) -> anyhow::Result<(StatusCode, Vec<i64>, Value)> {
        let (status, answer) = self.call(Method::POST, "/api/v1/commands", auth, Some(body)).await?;
        let ids = answer["commands"]
            .as_array()
            .map(|list| list.iter().filter_map(|c| c["id"].as_i64()).collect())
            .unwrap_or_default();
        Ok((status, ids, answer))
    }

    /// Posts a command for one device as site `A`'s admin, expects it created, and waits for its result.
    ///
    /// # Panics
    /// When it is not created or does not finish within `within`.
    pub async fn run_command(&self, body: Value, within: Duration) -> Value {
        let (status, ids, answer) = self.command(&self.admin_a, body.clone()).await.expect("POST /commands");
        assert_eq!(status, StatusCode::CREATED, "{body} -> {answer}");
        assert_eq!(ids.len(), 1, "one command for one device: {answer}");
        self.finished(ids[0], within).await.expect("the command's result")
    }

    /// AllLogs rows of one device.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn logs_of(&self, serial: &str) -> anyhow::Result<i64> {
        self.fixture.db.scalar(&format!("SELECT count(*) FROM all_logs WHERE device_serial = '{serial}'")).await
    }

    /// Makes central hand command `id` out again as if it were new (its result forgotten), as a lost answer or an
    /// MQTT redelivery would: the agent must not carry it out a second time.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn deliver_again(&self, id: i64) -> anyhow::Result<()> {
        let n = self
            .fixture
            .db
            .scalar(&format!(
                "UPDATE agent_commands SET state = 'pending', finished_at = NULL, detail = NULL WHERE id = {id} \
                 RETURNING id"
            ))
            .await?;
        anyhow::ensure!(n == id, "command {id} not reset");
        // Central looks for pending commands every second (HTTPS polls and the MQTT dispatcher alike).
        Ok(())
    }
}

/// A simulated push (ADMS) terminal polling an agent's receiver every 200 ms in a task of its own, executing the
/// commands it gets and keeping their texts (its command log).
pub struct PushTerminal {
    pub sim: std::sync::Arc<tokio::sync::Mutex<crate::adms_sim::AdmsSim>>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PushTerminal {
    /// Starts polling `base_url` (the agent's `edge-agent adms listening on` address) as `serial`.
    pub fn start(base_url: &str, serial: &str) -> Self {
        let sim = std::sync::Arc::new(tokio::sync::Mutex::new(crate::adms_sim::AdmsSim::new(base_url, serial)));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (polled, logged) = (sim.clone(), log.clone());
        let task = tokio::spawn(async move {
            loop {
                // Refused until the agent knows the serial; the firmware keeps asking.
                if let Ok(done) = polled.lock().await.poll_commands().await {
                    logged.lock().unwrap_or_else(|p| p.into_inner()).extend(done);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { sim, log, task }
    }

    /// The commands executed so far, in order.
    pub fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many executed commands start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.commands().iter().filter(|c| c.starts_with(prefix)).count()
    }
}

impl Drop for PushTerminal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
