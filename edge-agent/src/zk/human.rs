//! Durations and clock drift written for a person: "902 days 7 h 22 min", "1 min 35 s", "+95 s".

/// `secs` in the largest units that matter: days, hours and minutes beyond a day; hours, minutes and seconds
/// below; seconds alone below a minute.
pub fn duration(secs: u64) -> String {
    let (days, hours, minutes, seconds) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} day{}", if days == 1 { "" } else { "s" }));
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes} min"));
    }
    if days == 0 && (seconds > 0 || parts.is_empty()) {
        parts.push(format!("{seconds} s"));
    }
    parts.join(" ")
}

/// A drift in seconds (positive: the device is ahead) as "`<duration>` (device ahead)", "in step" for 0.
pub fn drift(secs: i64) -> String {
    match secs {
        0 => "0 s (in step)".to_owned(),
        d if d > 0 => format!("{} (device ahead)", duration(d.unsigned_abs())),
        d => format!("{} (device behind)", duration(d.unsigned_abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(95), "1 min 35 s");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(3_600), "1 h");
        assert_eq!(duration(86_400), "1 day");
        assert_eq!(duration(77_956_972), "902 days 6 h 42 min");
        assert_eq!(drift(-77_956_972), "902 days 6 h 42 min (device behind)");
        assert_eq!(drift(95), "1 min 35 s (device ahead)");
        assert_eq!(drift(0), "0 s (in step)");
    }
}
