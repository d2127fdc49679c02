//! The command line's attendance settings: `add-shift`, `update-shift`, `import-shifts` (a JSON file of shifts,
//! each created or updated), `list-shifts`, `update-site`, `list-sites`. They run the same checks as the API
//! ([`changed_shift`], [`changed_site`]), mark the same days for recomputation (within `attendance.backfill_days`),
//! and are audited as done by `cli`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveTime, Utc};

use crate::audit::{self, Actor, Entry};
use crate::config::Config;
use crate::http::api::shifts::{changed_shift, ShiftInfo, ShiftSettings};
use crate::http::api::sites::{changed_site, SiteChange};
use crate::store::Store;

/// Every setting of a shift; left out: the engine's default (adding) or the current value (updating).
#[derive(Debug, Clone, clap::Args)]
pub struct ShiftArgs {
    /// The shift's code, e.g. GEN.
    pub code: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Local start time, HH:MM.
    #[arg(long, value_parser = parse_time)]
    pub start: Option<NaiveTime>,
    /// Local end time, HH:MM; earlier than the start for a shift that ends the next morning.
    #[arg(long, value_parser = parse_time)]
    pub end: Option<NaiveTime>,
    /// Minutes after the start an arrival is still on time.
    #[arg(long)]
    pub grace_late_in_mins: Option<i64>,
    /// Minutes before the end a departure is still on time.
    #[arg(long)]
    pub grace_early_out_mins: Option<i64>,
    /// Minutes of work below which a working day is absent.
    #[arg(long)]
    pub min_half_day_mins: Option<i64>,
    /// Minutes of work up to which a working day is a half day.
    #[arg(long)]
    pub max_work_for_half_day_mins: Option<i64>,
    /// Arriving more than this many minutes early is overtime; `none`: never.
    #[arg(long, value_parser = parse_optional_minutes)]
    pub overtime_threshold_before_shift_mins: Option<Optional<i64>>,
    /// Staying more than this many minutes late is overtime; `none`: never.
    #[arg(long, value_parser = parse_optional_minutes)]
    pub overtime_threshold_after_shift_mins: Option<Optional<i64>>,
    /// Deduct the lunch break from work time.
    #[arg(long)]
    pub deduct_lunch_break: Option<bool>,
    /// When the lunch break starts, HH:MM; `none`: centred on the middle of the shift.
    #[arg(long, value_parser = parse_optional_time)]
    pub lunch_break_start: Option<Optional<NaiveTime>>,
    /// How long the lunch break is, in minutes.
    #[arg(long)]
    pub lunch_break_duration_mins: Option<i64>,
    /// Punches this many minutes before the start already belong to the shift.
    #[arg(long)]
    pub check_in_window_before_start_mins: Option<i64>,
    /// Punches this many minutes after the end still belong to the shift.
    #[arg(long)]
    pub check_out_window_after_end_mins: Option<i64>,
    /// first_last, pairs, by_state or mandays.
    #[arg(long)]
    pub pairing: Option<String>,
    /// Punches closer together than this many seconds are one.
    #[arg(long)]
    pub debounce_secs: Option<i64>,
    /// Status of a working day with punches but no complete pair: absent, half_day or present.
    #[arg(long)]
    pub single_punch: Option<String>,
    /// update-shift: the first day the change applies to (YYYY-MM-DD); yesterday when left out.
    #[arg(long)]
    pub effective_from: Option<NaiveDate>,
}

/// A value that may be set to "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optional<T>(pub Option<T>);

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| format!("{text:?} is not a time (HH:MM)"))
}

fn parse_optional_time(text: &str) -> Result<Optional<NaiveTime>, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(Optional(None));
    }
    parse_time(text).map(|t| Optional(Some(t)))
}

fn parse_optional_minutes(text: &str) -> Result<Optional<i64>, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(Optional(None));
    }
    text.parse().map(|m| Optional(Some(m))).map_err(|_| format!("{text:?} is not a number of minutes or none"))
}

impl ShiftArgs {
    fn settings(&self) -> ShiftSettings {
        ShiftSettings {
            code: Some(self.code.clone()),
            name: self.name.clone(),
            start: self.start,
            end: self.end,
            grace_late_in_mins: self.grace_late_in_mins,
            grace_early_out_mins: self.grace_early_out_mins,
            min_half_day_mins: self.min_half_day_mins,
            max_work_for_half_day_mins: self.max_work_for_half_day_mins,
            overtime_threshold_before_shift_mins: self.overtime_threshold_before_shift_mins.map(|o| o.0),
            overtime_threshold_after_shift_mins: self.overtime_threshold_after_shift_mins.map(|o| o.0),
            deduct_lunch_break: self.deduct_lunch_break,
            lunch_break_start: self.lunch_break_start.map(|o| o.0),
            lunch_break_duration_mins: self.lunch_break_duration_mins,
            check_in_window_before_start_mins: self.check_in_window_before_start_mins,
            check_out_window_after_end_mins: self.check_out_window_after_end_mins,
            pairing: self.pairing.clone(),
            debounce_secs: self.debounce_secs,
            single_punch: self.single_punch.clone(),
            effective_from: self.effective_from,
        }
    }
}

/// A site's settings to change; left out: kept.
#[derive(Debug, Clone, clap::Args)]
pub struct SiteArgs {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// IANA zone, e.g. Asia/Kolkata.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// off, week_offs or week_offs_and_holidays.
    #[arg(long)]
    pub sandwich: Option<String>,
    /// The week-off rule of employees without one of their own; `none` for none.
    #[arg(long)]
    pub default_week_off_rule: Option<String>,
    /// The first day a change of zone, sandwich or default week-off rule applies to; yesterday when left out.
    #[arg(long)]
    pub effective_from: Option<NaiveDate>,
}

/// The first day a change applying from `from` marks, within the backfill window.
fn backfill_from(config: &Config, from: Option<NaiveDate>) -> NaiveDate {
    let today = Utc::now().date_naive();
    let earliest = today - chrono::Duration::days(i64::from(config.attendance.backfill_days));
    from.unwrap_or(today - chrono::Duration::days(1)).max(earliest)
}

/// Creates (`create`) or updates a shift; returns it as listed.
async fn save_shift(
    store: &Store,
    config: &Config,
    settings: &ShiftSettings,
    create: bool,
) -> anyhow::Result<ShiftInfo> {
    let code = settings.code.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let current = store.shifts().await?.into_iter().find(|s| s.shift.code == code);
    match (create, current) {
        (true, Some(_)) => bail!("shift {code} already exists (use update-shift)"),
        (true, None) => {
            let shift =
                changed_shift(&code, None, settings).map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
            let name = settings.name.as_deref().unwrap_or_default().trim();
            store.create_shift(name, &shift).await?;
            let info = ShiftInfo::of(name, &shift);
            audit::record_as(store, &Actor::cli(), Entry::new("create", "shift", &code).after(&info)).await;
            Ok(info)
        }
        (false, None) => bail!("shift {code} does not exist (use add-shift)"),
        (false, Some(old)) => {
            let shift = changed_shift(&code, Some(&old.shift), settings)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
            let name = settings.name.as_deref().map_or(old.name.as_str(), str::trim).to_owned();
            store.update_shift(&name, &shift, backfill_from(config, settings.effective_from)).await?;
            let info = ShiftInfo::of(&name, &shift);
            let entry = Entry::new("update", "shift", &code).before(&ShiftInfo::of(&old.name, &old.shift)).after(&info);
            audit::record_as(store, &Actor::cli(), entry).await;
            Ok(info)
        }
    }
}

/// `add-shift` / `update-shift`: prints the shift as JSON.
///
/// # Errors
/// A refused value, named as in the API.
pub async fn shift(store: &Store, config: &Config, args: &ShiftArgs, create: bool) -> anyhow::Result<()> {
    let info = save_shift(store, config, &args.settings(), create).await?;
    println!("{}", serde_json::to_string(&info)?);
    Ok(())
}

/// `import-shifts FILE`: a JSON array of shifts (the API's `ShiftSettings`, each with its `code`); each is created,
/// or updated when it exists. Stops at the first refusal, naming the shift and the field.
///
/// # Errors
/// A file that does not read or parse, or a refused shift.
pub async fn import_shifts(store: &Store, config: &Config, file: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if text.len() > 1 << 20 {
        bail!("{} is larger than 1 MiB", file.display());
    }
    let shifts: Vec<ShiftSettings> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a JSON array of shifts", file.display()))?;
    let existing: Vec<String> = store.shifts().await?.into_iter().map(|s| s.shift.code).collect();
    for (n, settings) in shifts.iter().enumerate() {
        let code = settings.code.clone().unwrap_or_default();
        if code.trim().is_empty() {
            bail!("{} shift #{}: code: is required", file.display(), n + 1);
        }
        let create = !existing.contains(&code);
        save_shift(store, config, settings, create)
            .await
            .with_context(|| format!("{} shift {code}", file.display()))?;
        println!("shift {code} {}", if create { "created" } else { "updated" });
    }
    Ok(())
}

/// `list-shifts`: one JSON object per line.
///
/// # Errors
/// When the store fails.
pub async fn list_shifts(store: &Store) -> anyhow::Result<()> {
    for s in store.shifts().await? {
        println!("{}", serde_json::to_string(&ShiftInfo::of(&s.name, &s.shift))?);
    }
    Ok(())
}

/// `update-site`: prints the site as JSON.
///
/// # Errors
/// A refused value, named as in the API.
pub async fn update_site(store: &Store, config: &Config, args: &SiteArgs) -> anyhow::Result<()> {
    let old = store
        .list_sites(None)
        .await?
        .into_iter()
        .find(|s| s.site_id == args.id)
        .with_context(|| format!("site {} does not exist", args.id))?;
    let change = SiteChange {
        name: args.name.clone(),
        time_zone: args.time_zone.clone(),
        sandwich: args.sandwich.clone(),
        default_week_off_rule: args
            .default_week_off_rule
            .as_ref()
            .map(|r| Some(r.clone()).filter(|r| !r.eq_ignore_ascii_case("none"))),
        effective_from: args.effective_from,
    };
    let new = changed_site(&old, &change).map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    let changed = (&new.time_zone, &new.sandwich, &new.default_week_off_rule)
        != (&old.time_zone, &old.sandwich, &old.default_week_off_rule);
    let from = changed.then(|| backfill_from(config, args.effective_from));
    store.update_site_settings(&new, from).await?;
    let entry = Entry::new("update", "site", &args.id).site(Some(&args.id)).before(&old).after(&new);
    audit::record_as(store, &Actor::cli(), entry).await;
    println!("{}", serde_json::to_string(&new)?);
    Ok(())
}

/// `list-sites`: one JSON object per line.
///
/// # Errors
/// When the store fails.
pub async fn list_sites(store: &Store) -> anyhow::Result<()> {
    for s in store.list_sites(None).await? {
        println!("{}", serde_json::to_string(&s)?);
    }
    Ok(())
}
