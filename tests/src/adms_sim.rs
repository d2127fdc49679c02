//! A ZKTeco PUSH (ADMS) terminal: the HTTP client side of `/iclock/...`, as firmware behaves.
//!
//! It keeps an attendance log (row `i` has stamp `i`, counting from 1), shakes hands to learn the stamp the server
//! holds, posts the rows after it in batches with `Stamp=<last row's stamp>`, and moves its own mark only on a reply
//! of exactly `OK`; anything else (an error status, `ERROR: ...`, a dropped connection) is retried after a delay, as
//! the firmware does with `ErrorDelay`. It polls `getrequest` and executes `INFO`, `DATA QUERY ATTLOG` (re-posting
//! the rows in the time range), `SET OPTIONS DateTime=`, `DATA UPDATE USERINFO` (a user table; a field left out keeps
//! the value the user has), `DATA DELETE USERINFO` (the user and their fingers) and `DATA UPDATE FINGERTMP` (a
//! fingerprint template table, the base64 `TMP` decoded and checked against `Size`), reporting each on `devicecmd`
//! and keeping every command received in `command_log`. `refuse_pins` makes it refuse users (`Return=-1`), as a
//! full or picky terminal does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::NaiveDateTime;

/// A row in the classic 7-field shape: `PIN, time, status, verify, workcode, reserved, reserved`.
pub fn row(pin: &str, time: NaiveDateTime, status: u8, verify: u8) -> String {
    format!("{pin}\t{}\t{status}\t{verify}\t0\t0\t0", time.format("%Y-%m-%d %H:%M:%S"))
}

/// A row as newer (Android) firmware sends it, with mask and temperature fields appended.
pub fn row_extended(pin: &str, time: NaiveDateTime, status: u8, verify: u8) -> String {
    format!("{}\t0\t0\t\t36.6\t1\t255", row(pin, time, status, verify))
}

/// What the simulator has done, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Rows sent in `ATTLOG` posts (re-sends included).
    pub rows_sent: usize,
    pub posts: usize,
    /// Posts answered with anything but `OK` (or not answered).
    pub refused: usize,
    pub commands_done: usize,
}

/// One simulated push terminal.
pub struct AdmsSim {
    pub serial: String,
    base_url: String,
    client: reqwest::Client,
    /// `(local time, row text)`, stamp = index + 1.
    log: Vec<(NaiveDateTime, String)>,
    /// The stamp the server is known to hold.
    pub server_stamp: u64,
    pub batch_size: usize,
    pub retry_delay: Duration,
    pub max_attempts: usize,
    pub line_end: &'static str,
    pub stats: SimStats,
    /// Options from the last handshake.
    pub options: HashMap<String, String>,
    /// The last `SET OPTIONS DateTime=` value received.
    pub clock_set_to: Option<u32>,
    /// The user table `DATA UPDATE USERINFO` / `DATA DELETE USERINFO` keep: PIN -> the fields given (`Name`,
    /// `Pri`, `Card`, ...).
    pub users: BTreeMap<String, BTreeMap<String, String>>,
    /// Every command received, in order, as the device's command log.
    pub command_log: Vec<String>,
    /// Fingerprint templates `DATA UPDATE FINGERTMP` left: (PIN, finger) -> the template.
    pub templates: BTreeMap<(String, u8), PushTemplate>,
    /// PINs whose `DATA UPDATE USERINFO` the device refuses with `Return=-1`.
    pub refuse_pins: HashSet<String>,
}

/// A fingerprint template as a push terminal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTemplate {
    pub valid: u8,
    pub data: Vec<u8>,
}

impl AdmsSim {
    pub fn new(base_url: &str, serial: &str) -> Self {
        Self {
            serial: serial.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client"),
            log: Vec::new(),
            server_stamp: 0,
            batch_size: 100,
            retry_delay: Duration::from_millis(100),
            max_attempts: 200,
            line_end: "\n",
            stats: SimStats::default(),
            options: HashMap::new(),
            clock_set_to: None,
            users: BTreeMap::new(),
            command_log: Vec::new(),
            templates: BTreeMap::new(),
            refuse_pins: HashSet::new(),
        }
    }

    /// Points the device at another server address (the agent restarted on a new port).
    pub fn set_server(&mut self, base_url: &str) {
        base_url.trim_end_matches('/').clone_into(&mut self.base_url);
    }

    /// Appends rows (valid or not) to the device log; `time` is used by `DATA QUERY` ranges.
    pub fn record(&mut self, rows: impl IntoIterator<Item = (NaiveDateTime, String)>) {
        self.log.extend(rows);
    }

    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    fn url(&self, path: &str, query: &str) -> String {
        format!("{}{path}?SN={}{query}", self.base_url, self.serial)
    }

    /// `GET /iclock/cdata?options=all`; takes `ATTLOGStamp` as the server's stamp.
    ///
    /// # Errors
    /// When the request fails or the answer is not an options block for this serial.
    pub async fn handshake(&mut self) -> anyhow::Result<()> {
        let response =
            self.client.get(self.url("/iclock/cdata", "&options=all&pushver=2.4.1&language=69")).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("handshake refused ({status}): {text}");
        }
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        if first != format!("GET OPTION FROM: {}", self.serial) {
            bail!("handshake answer starts {first:?}");
        }
        self.options = lines.filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        self.server_stamp = self.options.get("ATTLOGStamp").and_then(|s| s.parse().ok()).context("no ATTLOGStamp")?;
        Ok(())
    }

    /// Posts every row after the server's stamp, in batches, retrying each batch until it is answered `OK`.
    /// Returns how many rows were delivered.
    ///
    /// # Errors
    /// When a batch is still refused after `max_attempts`.
    pub async fn push_pending(&mut self) -> anyhow::Result<usize> {
        let mut delivered = 0;
        while (self.server_stamp as usize) < self.log.len() {
            let from = usize::try_from(self.server_stamp)?;
            let to = (from + self.batch_size).min(self.log.len());
            let body: String = self.log[from..to].iter().map(|(_, r)| format!("{r}{}", self.line_end)).collect();
            self.post_attlog(&body, to - from, to as u64).await?;
            self.server_stamp = to as u64;
            delivered += to - from;
        }
        Ok(delivered)
    }

    async fn post_attlog(&mut self, body: &str, rows: usize, stamp: u64) -> anyhow::Result<()> {
        let url = self.url("/iclock/cdata", &format!("&table=ATTLOG&Stamp={stamp}"));
        for attempt in 1..=self.max_attempts {
            self.stats.posts += 1;
            self.stats.rows_sent += rows;
            let answer = match self.client.post(&url).body(body.to_owned()).send().await {
                Ok(response) => {
                    let status = response.status();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(e) => (reqwest::StatusCode::BAD_GATEWAY, e.to_string()),
            };
            if answer.0.is_success() && answer.1.trim() == "OK" {
                return Ok(());
            }
            self.stats.refused += 1;
            tracing::debug!(attempt, status = %answer.0, answer = %answer.1, "push refused; retrying");
            tokio::time::sleep(self.retry_delay).await;
        }
        bail!("batch up to stamp {stamp} refused {} times", self.max_attempts)
    }

    /// Polls `getrequest` once and executes what it gets; returns the commands run.
    ///
    /// # Errors
    /// When a request fails.
    pub async fn poll_commands(&mut self) -> anyhow::Result<Vec<String>> {
        let info = format!("&INFO=Ver%206.60%20Apr%2028%202017,{},0,{},192.168.1.50", 3, self.log.len());
        let text =
            self.client.get(self.url("/iclock/getrequest", &info)).send().await?.error_for_status()?.text().await?;
        let mut done = Vec::new();
        let mut report = String::new();
        for line in text.lines().filter(|l| l.starts_with("C:")) {
            let mut parts = line.splitn(3, ':');
            let (_, id, command) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let verb = command.split_whitespace().next().unwrap_or("").to_owned();
            let code = self.execute(command).await?;
            report.push_str(&format!("ID={id}&Return={code}&CMD={verb}\n"));
            done.push(command.to_owned());
        }
        if !report.is_empty() {
            let answer =
                self.client.post(self.url("/iclock/devicecmd", "")).body(report).send().await?.error_for_status()?;
            if answer.text().await?.trim() != "OK" {
                bail!("devicecmd not answered OK");
            }
            self.stats.commands_done += done.len();
        }
        Ok(done)
    }

    /// The templates of `pin`, by finger.
    pub fn templates_of(&self, pin: &str) -> Vec<(u8, PushTemplate)> {
        self.templates.iter().filter(|((p, _), _)| p == pin).map(|((_, f), t)| (*f, t.clone())).collect()
    }

    /// Keeps a `FINGERTMP` template: `PIN`, `FID` 0-9, `Size` the length of the base64 `TMP`, `Valid`; `-1` for a
    /// malformed one or one for a user the device does not hold.
    fn learn_template(&mut self, fields: &str) -> i32 {
        use base64::Engine as _;
        let fields: BTreeMap<&str, &str> = fields.split('\t').filter_map(|f| f.split_once('=')).collect();
        let (Some(pin), Some(finger), Some(size), Some(valid), Some(tmp)) = (
            fields.get("PIN"),
            fields.get("FID").and_then(|f| f.parse::<u8>().ok()).filter(|f| *f <= 9),
            fields.get("Size").and_then(|s| s.parse::<usize>().ok()),
            fields.get("Valid").and_then(|v| v.parse::<u8>().ok()),
            fields.get("TMP"),
        ) else {
            return -1;
        };
        if size != tmp.len() {
            return -1;
        }
        let Ok(data) = base64::engine::general_purpose::STANDARD.decode(tmp) else { return -1 };
        if !self.users.contains_key(*pin) {
            return -1;
        }
        self.templates.insert(((*pin).to_owned(), finger), PushTemplate { valid, data });
        0
    }

    async fn execute(&mut self, command: &str) -> anyhow::Result<i32> {
        self.command_log.push(command.to_owned());
        if let Some(fields) = command.strip_prefix("DATA UPDATE USERINFO ") {
            let fields: BTreeMap<String, String> = fields
                .split('\t')
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .collect();
            let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()).cloned() else { return Ok(-1) };
            if self.refuse_pins.contains(&pin) {
                return Ok(-1);
            }
            self.users.entry(pin).or_default().extend(fields);
            return Ok(0);
        }
        if let Some(fields) = command.strip_prefix("DATA UPDATE FINGERTMP ") {
            return Ok(self.learn_template(fields));
        }
        if let Some(pin) = command.strip_prefix("DATA DELETE USERINFO PIN=") {
            let pin = pin.trim();
            self.users.remove(pin);
            self.templates.retain(|(p, _), _| p != pin);
            return Ok(0);
        }
        if command == "INFO" {
            return Ok(0);
        }
        if let Some(value) = command.strip_prefix("SET OPTIONS DateTime=") {
            self.clock_set_to = value.trim().parse().ok();
            return Ok(if self.clock_set_to.is_some() { 0 } else { -1 });
        }
        if let Some(range) = command.strip_prefix("DATA QUERY ATTLOG ") {
            let field = |name: &str| {
                range
                    .split('\t')
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|t| NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S").ok())
            };
            let (Some(from), Some(until)) = (field("StartTime="), field("EndTime=")) else { return Ok(-1) };
            let rows: Vec<String> =
                self.log.iter().filter(|(t, _)| *t >= from && *t <= until).map(|(_, r)| r.clone()).collect();
            if !rows.is_empty() {
                let body: String = rows.iter().map(|r| format!("{r}{}", self.line_end)).collect();
                self.post_attlog(&body, rows.len(), self.server_stamp).await?;
            }
            return Ok(0);
        }
        Ok(-1002)
    }
}
