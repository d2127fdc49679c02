//! The organisation the soak simulates, set up through the central store's own functions before any replica runs:
//! `sites` sites in Asia/Kolkata, one agent each (with its token, from which the generator derives the agent's MQTT
//! keys as a real agent does), `devices` terminals per site and `workforce` employees per site on the `GEN` shift.
//!
//! Names: site `site-007`, agent `agent-007`, device `S007D03`, PIN `<site + 1><employee, 5 digits>` (unique across
//! the organisation, as PINs must be).

use std::sync::Arc;

use anyhow::Context;
use central_api::auth::AgentToken;
use central_api::store::attendance::masters::EmployeeProfile;
use central_api::store::Store;
use chrono::NaiveDate;
use futures::StreamExt;
use protocol::AgentKeys;

use crate::attendance::{setup_site, ZONE};

/// The shape of the organisation.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub sites: usize,
    pub devices: usize,
    pub workforce: usize,
}

/// One site as the generator sees it.
#[derive(Clone)]
pub struct SiteWorld {
    pub site: protocol::SiteId,
    pub agent: protocol::AgentId,
    pub keys: AgentKeys,
    pub devices: Vec<protocol::DeviceSerial>,
    pub pins: Vec<protocol::Pin>,
}

/// Every site.
pub struct World {
    pub sites: Vec<SiteWorld>,
    /// The simulated day the punches fall on (closed by the time the soak runs).
    pub day: NaiveDate,
}

impl World {
    /// Employees in all.
    pub fn employees(&self) -> usize {
        self.sites.iter().map(|s| s.pins.len()).sum()
    }
}

/// The id of site `s`.
pub fn site_id(s: usize) -> String {
    format!("site-{s:03}")
}

/// Creates the organisation in `store` and returns it. Employees join the day before `day`, so their profiles mark
/// only the last few days; the caller drains those marks before the load starts.
///
/// # Errors
/// When the store refuses.
pub async fn create(store: &Store, shape: Shape, day: NaiveDate) -> anyhow::Result<World> {
    let mut sites = Vec::with_capacity(shape.sites);
    for s in 0..shape.sites {
        let site = site_id(s);
        setup_site(store, &site).await.with_context(|| format!("creating {site}"))?;
        let agent: protocol::AgentId = format!("agent-{s:03}").parse().context("agent id")?;
        let token = AgentToken::generate(agent.clone());
        store.create_agent(agent.as_str(), &site, &token.secret_hash()).await?;
        let (_, keys) = AgentKeys::from_token(&token.reveal()).context("agent token")?;
        let devices = (0..shape.devices)
            .map(|d| format!("S{s:03}D{d:02}").parse().context("device serial"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let pins = (0..shape.workforce)
            .map(|e| format!("{}{e:05}", s + 1).parse().context("pin"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        sites.push(SiteWorld { site: site.parse().context("site id")?, agent, keys, devices, pins });
    }
    let joined = day.pred_opt().context("day")?;
    let store = Arc::new(store.clone());
    let jobs = sites.iter().flat_map(|w| w.pins.iter().map(move |pin| (w.site.to_string(), pin.to_string())));
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
        .map(|(site, pin)| {
            let store = store.clone();
            async move {
                let profile = EmployeeProfile {
                    employee_id: pin.clone(),
                    name: format!("Worker {pin}"),
                    department: "Production".into(),
                    designation: "Operator".into(),
                    site_id: Some(site),
                    shift_code: Some("GEN".into()),
                    week_off_rule: Some("SUN".into()),
                    date_of_joining: Some(joined),
                    date_of_leaving: None,
                    active: true,
                    card_number: None,
                    device_privilege: None,
                };
                store.save_employee(&profile, true, joined, 7).await.with_context(|| format!("employee {pin}"))?;
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    debug_assert_eq!(ZONE, "Asia/Kolkata");
    Ok(World { sites, day })
}
