//! The central-api replicas of the soak: `n` real `central-api serve` processes on one PostgreSQL (reached through
//! the chaos proxy, so the network between them can be stalled) sharing the punch topic of one broker through an
//! MQTT shared subscription. Each keeps a fixed client id, so a replica killed with SIGKILL and started again
//! resumes its persistent session.

use std::time::Duration;

use anyhow::Context;

use crate::harness::Spawned;

/// The topic prefix and shared-subscription group the soak uses.
pub const TOPIC_PREFIX: &str = "soak";
const GROUP: &str = "soak-central";

/// What every replica is started with.
#[derive(Debug, Clone)]
pub struct ReplicaEnv {
    /// The database URL the replicas use (through the proxy).
    pub database_url: String,
    pub broker_port: u16,
    pub data_dir: std::path::PathBuf,
}

/// One replica slot: its process when running, and the CPU it used in earlier lives.
pub struct Replica {
    pub name: String,
    pub process: Option<Spawned>,
    pub url: Option<String>,
}

/// The running set.
pub struct Replicas {
    env: ReplicaEnv,
    pub slots: Vec<Replica>,
}

impl Replicas {
    /// Starts `n` replicas and waits until each consumes MQTT.
    ///
    /// # Errors
    /// When one does not start or subscribe within 30 s.
    pub async fn start(env: ReplicaEnv, n: usize) -> anyhow::Result<Self> {
        let mut replicas = Self { env, slots: Vec::new() };
        for i in 0..n {
            replicas.slots.push(Replica {
                name: format!("central-{}", (b'a' + i as u8) as char),
                process: None,
                url: None,
            });
            replicas.launch(i).await?;
        }
        Ok(replicas)
    }

    fn vars(&self, name: &str) -> Vec<(String, String)> {
        let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
        [
            ("CENTRAL_API_DATABASE_URL", self.env.database_url.clone()),
            ("CENTRAL_API_DATABASE_MAX_CONNECTIONS", "10".to_owned()),
            ("CENTRAL_API_DATA_DIR", self.env.data_dir.join(name).display().to_string()),
            ("CENTRAL_API_AUTO_MIGRATE", "false".to_owned()),
            ("CENTRAL_API_MQTT__HOST", "127.0.0.1".to_owned()),
            ("CENTRAL_API_MQTT__PORT", self.env.broker_port.to_string()),
            ("CENTRAL_API_MQTT__TOPIC_PREFIX", TOPIC_PREFIX.to_owned()),
            ("CENTRAL_API_MQTT__GROUP", GROUP.to_owned()),
            ("CENTRAL_API_MQTT__CLIENT_ID", name.to_owned()),
            ("CENTRAL_API_MQTT__SESSION_EXPIRY_SECS", "600".to_owned()),
            ("CENTRAL_API_MQTT__KEEP_ALIVE_SECS", "5".to_owned()),
            ("RUST_LOG", log),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    async fn launch(&mut self, i: usize) -> anyhow::Result<()> {
        let name = self.slots[i].name.clone();
        let vars = self.vars(&name);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = Spawned::start("central-api", &["serve", "--listen", "127.0.0.1:0"], &refs)?;
        let url = process.listening_url().await.with_context(|| format!("{name} did not start"))?;
        process
            .wait_for_line("central-api consuming MQTT", Duration::from_secs(30))
            .await
            .with_context(|| format!("{name} did not subscribe"))?;
        self.slots[i].process = Some(process);
        self.slots[i].url = Some(url);
        Ok(())
    }

    /// SIGKILL replica `i` (a crash: nothing flushed, no PUBACK for what it held).
    ///
    /// # Errors
    /// When the kill fails.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut process) = self.slots[i].process.take() {
            process.kill().await?;
        }
        self.slots[i].url = None;
        Ok(())
    }

    /// Starts replica `i` again with its client id (its persistent session resumes).
    ///
    /// # Errors
    /// When it does not start or subscribe.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.launch(i).await
    }

    /// `(name, pid)` of every running replica.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.slots.iter().filter_map(|s| Some((s.name.clone(), s.process.as_ref()?.pid()?))).collect()
    }

    /// Stops every replica (SIGTERM, then waits up to 20 s each).
    pub async fn stop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut process) = slot.process.take() {
                let _ = process.terminate();
                let _ = tokio::time::timeout(Duration::from_secs(20), process.wait()).await;
            }
        }
    }
}
