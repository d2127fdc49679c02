//! The soak's plot, an SVG drawn with `plotters` (no system fonts needed): punches generated and stored per second
//! above, the p50 and p99 latency from a punch to AllLogs of the punches stored in each second below, and a
//! vertical line at each fault with its name.

use std::path::Path;

use anyhow::Context;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::figures::{FaultMark, Second};

/// Writes the plot to `path`.
///
/// # Errors
/// When drawing or writing fails.
pub fn draw(path: &Path, title: &str, seconds: &[Second], faults: &[FaultMark]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(390);
    let x_max = seconds.len().max(1) as f64;
    let rate_max = seconds.iter().map(|s| s.generated.max(s.stored)).max().unwrap_or(1).max(1) as f64 * 1.1;
    let latency_max = seconds.iter().filter_map(|s| s.p99).fold(0.1_f64, f64::max) * 1.1;

    let mut rates = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .caption("throughput", ("sans-serif", 16))
        .build_cartesian_2d(0.0..x_max, 0.0..rate_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    rates
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("punches / s")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let generated = smoothed(seconds, |s| s.generated);
    rates
        .draw_series(LineSeries::new(generated, BLUE.stroke_width(1)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("generated (5 s mean)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE));
    let stored = smoothed(seconds, |s| s.stored);
    rates
        .draw_series(LineSeries::new(stored, GREEN.stroke_width(2)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("stored in AllLogs (5 s mean)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREEN));
    draw_faults(&mut rates, faults, rate_max)?;
    rates
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut latency = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .caption("latency from a punch to AllLogs (punches stored in that second)", ("sans-serif", 16))
        .build_cartesian_2d(0.0..x_max, 0.0..latency_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    latency
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("seconds")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (label, color, pick) in [
        ("p50", BLUE, (|s: &Second| s.p50) as fn(&Second) -> Option<f64>),
        ("p99", RED, (|s: &Second| s.p99) as fn(&Second) -> Option<f64>),
    ] {
        let points = seconds.iter().enumerate().filter_map(|(i, s)| Some((i as f64, pick(s)?)));
        latency
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
    }
    draw_faults(&mut latency, faults, latency_max)?;
    latency
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The per-second counts as a 5-second moving mean (what was generated or stored around each second).
fn smoothed(seconds: &[Second], pick: fn(&Second) -> u64) -> Vec<(f64, f64)> {
    (0..seconds.len())
        .map(|i| {
            let window = &seconds[i.saturating_sub(2)..(i + 3).min(seconds.len())];
            (i as f64, window.iter().map(pick).sum::<u64>() as f64 / window.len() as f64)
        })
        .collect()
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_faults(chart: &mut Chart<'_, '_>, faults: &[FaultMark], y_max: f64) -> anyhow::Result<()> {
    for fault in faults {
        let x = fault.at_secs;
        chart
            .draw_series(std::iter::once(PathElement::new([(x, 0.0), (x, y_max)], BLACK.mix(0.5).stroke_width(1))))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .draw_series(std::iter::once(Text::new(fault.label.clone(), (x, y_max * 0.97), ("sans-serif", 12))))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}
