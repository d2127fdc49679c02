//! `bench engine`: the attendance engine alone on a month of a large factory.
//!
//! 10,000 employees x 31 days (December 2026), about 1.5 million punches generated deterministically (seeded):
//! day, night, 12-hour night (clipped windows), by-state and ManDays shifts; Sundays and some 2nd/4th Saturdays off;
//! holidays; lunch and tea-break punches, double taps, missing punches, absences, a little week-off work. Only
//! [`compute_range`] (and building each employee's context) is timed; generating the punches is not.
//!
//! Options: `--employees N` (default 10000), `--seed S` (default 7).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use central_api::attendance::engine::{
    compute_range, AttendanceDay, AttendancePunch, Employee, EmployeeContext, Holiday, HolidayKind, ManDaysRow,
    PairingMode, SandwichSetting, Shift, SiteCalendar, SiteSettings, WeekOffRule,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use protocol::{DeviceSerial, Direction, PunchSource, PunchState, SiteId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Bench;

/// The bench's entry in [`super::ALL`].
pub const BENCH: Bench =
    Bench { name: "engine", about: "attendance engine alone: 10,000 employees x 31 days (~1.5 M punches)", run };

const SITES: usize = 10;
const DAYS: u64 = 31;

fn run(args: &[String]) -> anyhow::Result<()> {
    let mut employees = 10_000usize;
    let mut seed = 7u64;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--employees" => employees = value.parse().with_context(|| format!("--employees {value:?}"))?,
            "--seed" => seed = value.parse().with_context(|| format!("--seed {value:?}"))?,
            other => bail!("unknown option {other:?} (expected --employees N or --seed S)"),
        }
    }

    let first = NaiveDate::from_ymd_opt(2026, 12, 1).context("first day")?;
    let last = NaiveDate::from_ymd_opt(2026, 12, 31).context("last day")?;
    let now = NaiveDateTime::new(NaiveDate::from_ymd_opt(2027, 1, 3).context("now")?, NaiveTime::MIN);

    let started = Instant::now();
    let world = World::generate(employees, seed, first)?;
    let punches: usize = world.punches.iter().map(Vec::len).sum();
    println!(
        "generated {employees} employees, {punches} punches over {DAYS} days in {:.2} s (not timed below)",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let cpu_started = thread_cpu_seconds();
    let mut rows = 0usize;
    let mut man_days = 0usize;
    let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut sandwiched = 0usize;
    for (employee, punches) in world.employees.iter().zip(&world.punches) {
        let shift = &world.shifts[shift_index(&world.shifts, &employee.shift)?];
        let site = &world.sites[site_index(&world.sites, &employee.site)?];
        let ctx = EmployeeContext::new(employee, shift, site, &[])?;
        let days: Vec<AttendanceDay> = compute_range(&ctx, punches, first, last, now)?;
        rows += days.len();
        for day in &days {
            *statuses.entry(day.status.map_or("-", |s| s.code())).or_default() += 1;
            sandwiched += usize::from(day.sandwich.is_some());
            man_days += usize::from(ManDaysRow::from_day(day).is_some());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds().zip(cpu_started).map(|(end, start)| end - start);

    println!("engine alone: {rows} employee-days ({man_days} ManDays rows) from {punches} punches in {elapsed:.3} s");
    if let Some(cpu) = cpu {
        // The machine is shared: on-CPU time shows what the engine costs when other processes compete for the cores.
        println!("  on-CPU time {cpu:.3} s ({:.0} punches per CPU-second)", punches as f64 / cpu);
    }
    println!(
        "  {:.0} punches/s, {:.0} employee-days/s (single thread; target: under 3 s)",
        punches as f64 / elapsed,
        rows as f64 / elapsed
    );
    let summary: Vec<String> = statuses.iter().map(|(code, n)| format!("{code} {n}")).collect();
    println!("  statuses: {} ({sandwiched} sandwiched)", summary.join(", "));
    Ok(())
}

/// This thread's time on a CPU, from Linux's schedstat; `None` elsewhere.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

fn shift_index(shifts: &[Shift], code: &str) -> anyhow::Result<usize> {
    shifts.iter().position(|s| s.code == code).with_context(|| format!("no shift {code}"))
}

fn site_index(sites: &[SiteCalendar], site: &SiteId) -> anyhow::Result<usize> {
    sites.iter().position(|s| s.site() == site).with_context(|| format!("no site {site}"))
}

/// The generated factory: shifts, sites, employees and each employee's punches.
pub(crate) struct World {
    pub(crate) shifts: Vec<Shift>,
    pub(crate) sites: Vec<SiteCalendar>,
    pub(crate) employees: Vec<Employee>,
    pub(crate) punches: Vec<Vec<AttendancePunch>>,
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

fn shifts() -> Vec<Shift> {
    let mut general = Shift::new("GEN", hm(9, 0), hm(18, 0));
    general.deduct_lunch_break = true;
    general.lunch_break_start = Some(hm(13, 0));
    general.grace_late_in = Duration::minutes(10);
    let night = Shift::new("NIGHT", hm(22, 0), hm(6, 0));
    let mut long_night = Shift::new("N12", hm(20, 0), hm(8, 0));
    long_night.check_in_window_before_start = Duration::hours(8);
    long_night.check_out_window_after_end = Duration::hours(8);
    long_night.pairing = PairingMode::Pairs;
    let mut early = Shift::new("EARLY", hm(6, 0), hm(14, 0));
    early.pairing = PairingMode::ByState;
    let mut man_days = Shift::new("MD", hm(8, 0), hm(17, 0));
    man_days.pairing = PairingMode::ManDays;
    vec![general, night, long_night, early, man_days]
}

impl World {
    pub(crate) fn generate(employees: usize, seed: u64, first: NaiveDate) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let shifts = shifts();
        let settings = [SandwichSetting::Off, SandwichSetting::WeekOffs, SandwichSetting::WeekOffsAndHolidays];
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).context("christmas")?;
        let mut sites = Vec::new();
        for i in 0..SITES {
            let site: SiteId = format!("plant-{i}").parse()?;
            let local = NaiveDate::from_ymd_opt(2026, 12, 3 + u32::try_from(i)?).context("site holiday")?;
            let holidays = vec![
                Holiday { date: christmas, name: "Christmas".into(), kind: HolidayKind::Public, site: None },
                Holiday { date: local, name: "Plant day".into(), kind: HolidayKind::Company, site: Some(site.clone()) },
            ];
            sites.push(SiteCalendar::new(site, holidays, SiteSettings { sandwich: settings[i % settings.len()] }));
        }
        let devices: Vec<DeviceSerial> = (0..SITES).map(|i| format!("DEV-{i}").parse()).collect::<Result<_, _>>()?;

        let mut people = Vec::with_capacity(employees);
        let mut punches = Vec::with_capacity(employees);
        for n in 0..employees {
            // Half on the general shift, the rest spread over the others.
            let shift = &shifts[match n % 10 {
                0..=4 => 0,
                5 | 6 => 1,
                7 => 2,
                8 => 3,
                _ => 4,
            }];
            let site = n % SITES;
            let week_off = if n % 3 == 0 {
                WeekOffRule::weekly(&[Weekday::Sun]).and_nth(Weekday::Sat, 2).and_nth(Weekday::Sat, 4)
            } else {
                WeekOffRule::weekly(&[Weekday::Sun])
            };
            let employee = Employee {
                employee_id: format!("{}", 10_000 + n).parse()?,
                name: format!("Employee {n}"),
                department: "Production".into(),
                designation: "Operator".into(),
                site: sites[site].site().clone(),
                shift: shift.code.clone(),
                date_of_joining: None,
                date_of_leaving: None,
                week_off,
            };
            let mut mine = Vec::with_capacity(160);
            for day in first.iter_days().take(usize::try_from(DAYS)?) {
                day_punches(&mut rng, &employee, shift, &sites[site], day, &devices[site], &mut mine);
            }
            people.push(employee);
            punches.push(mine);
        }
        Ok(Self { shifts, sites, employees: people, punches })
    }
}

/// One employee-day's punches: mostly a normal day, sometimes absent, late, double-tapping or forgetting to punch out.
fn day_punches(
    rng: &mut StdRng,
    employee: &Employee,
    shift: &Shift,
    site: &SiteCalendar,
    day: NaiveDate,
    device: &DeviceSerial,
    out: &mut Vec<AttendancePunch>,
) {
    let off = employee.week_off.is_week_off(day) || site.holiday(day).is_some();
    let shows_up = if off { rng.random_bool(0.05) } else { rng.random_bool(0.93) };
    if !shows_up {
        return;
    }
    let start = day.and_time(shift.start);
    let end = start + shift.length();
    let mut push = |at: NaiveDateTime, state: PunchState| {
        out.push(AttendancePunch::from_device(
            employee.employee_id.clone(),
            at,
            state,
            Direction::Both,
            device.clone(),
            PunchSource::AdmsPush,
        ));
    };
    let jitter = |rng: &mut StdRng, minutes: i64| Duration::seconds(rng.random_range(-minutes * 60..=minutes * 60));

    let arrive = start + jitter(rng, 20);
    push(arrive, PunchState::CheckIn);
    if rng.random_bool(0.3) {
        push(arrive + Duration::seconds(rng.random_range(1..40)), PunchState::CheckIn);
    }
    // Lunch and tea breaks, out and back in, inside the shift.
    let breaks = rng.random_range(1..=3);
    let span = shift.length().num_seconds();
    for b in 0..breaks {
        let leave = start + Duration::seconds(span * (b + 1) / (breaks + 1)) + jitter(rng, 10);
        push(leave, PunchState::BreakOut);
        push(leave + Duration::minutes(rng.random_range(10..40)), PunchState::BreakIn);
    }
    if rng.random_bool(0.04) {
        return; // forgot to punch out
    }
    let leave = end + jitter(rng, 30) + Duration::minutes(if rng.random_bool(0.1) { 90 } else { 0 });
    push(leave, PunchState::CheckOut);
    if rng.random_bool(0.2) {
        push(leave + Duration::seconds(rng.random_range(1..40)), PunchState::CheckOut);
    }
}
