//! CSV rendering (RFC 4180: comma, CRLF, fields quoted when they hold a comma, quote or line break). A field that a
//! spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.

use super::muster::{headers, MusterRoll};

/// One field, escaped.
pub fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Lines of fields into a CSV document.
pub fn document(lines: &[Vec<String>]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// The roll's lines: headers, then one per employee.
pub fn muster_lines(roll: &MusterRoll) -> Vec<Vec<String>> {
    let mut lines = vec![headers(roll)];
    for row in &roll.rows {
        let t = &row.totals;
        let mut line =
            vec![row.employee.employee_id.clone(), row.employee.name.clone(), row.employee.department.clone()];
        line.extend(row.cells.iter().cloned());
        line.extend(
            [t.present, t.absent, t.half_days, t.week_offs, t.holidays, t.leave, t.late].iter().map(u32::to_string),
        );
        line.push(format!("{:.2}", t.overtime_hours()));
        lines.push(line);
        for slot in &row.slot_lines {
            let mut line = vec![row.employee.employee_id.clone(), row.employee.name.clone(), slot.label.clone()];
            line.extend(slot.cells.iter().cloned());
            line.extend(std::iter::repeat_n(String::new(), 8));
            lines.push(line);
        }
    }
    lines
}

/// The roll as CSV.
pub fn muster(roll: &MusterRoll) -> String {
    document(&muster_lines(roll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(document(&[vec!["a".into(), "b".into()]]), "a,b\r\n");
    }
}
