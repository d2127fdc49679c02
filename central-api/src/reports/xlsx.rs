//! XLSX rendering with rust_xlsxwriter: one sheet, a bold header row, status cells as text, totals as numbers.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::muster::{headers, MusterRoll};

/// The roll as an XLSX file's bytes.
///
/// # Errors
/// [`XlsxError`] when the workbook cannot be written.
pub fn muster(roll: &MusterRoll) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Muster roll")?;
    let bold = Format::new().set_bold();
    sheet.write_string_with_format(0, 0, &roll.title, &bold)?;
    for (c, h) in headers(roll).iter().enumerate() {
        sheet.write_string_with_format(1, col(c), h, &bold)?;
    }
    let mut r = 1u32;
    for row in &roll.rows {
        r = r.saturating_add(1);
        sheet.write_string(r, 0, &row.employee.employee_id)?;
        sheet.write_string(r, 1, &row.employee.name)?;
        sheet.write_string(r, 2, &row.employee.department)?;
        for (c, cell) in row.cells.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r, col(c + 3), cell)?;
            }
        }
        let t = &row.totals;
        let base = 3 + row.cells.len();
        for (i, n) in [t.present, t.absent, t.half_days, t.week_offs, t.holidays, t.leave, t.late].iter().enumerate() {
            sheet.write_number(r, col(base + i), f64::from(*n))?;
        }
        sheet.write_number(r, col(base + 7), t.overtime_hours())?;
        for slot in &row.slot_lines {
            r = r.saturating_add(1);
            sheet.write_string(r, 0, &row.employee.employee_id)?;
            sheet.write_string(r, 1, &row.employee.name)?;
            sheet.write_string(r, 2, &slot.label)?;
            for (c, cell) in slot.cells.iter().enumerate() {
                if !cell.is_empty() {
                    sheet.write_string(r, col(c + 3), cell)?;
                }
            }
        }
    }
    book.save_to_buffer()
}

fn col(c: usize) -> u16 {
    u16::try_from(c).unwrap_or(u16::MAX)
}

/// A table as an XLSX file's bytes: the title, bold headings (the first line), then the lines; the cells of
/// `number_columns` that parse as numbers are written as numbers.
///
/// # Errors
/// [`XlsxError`] when the workbook cannot be written.
pub fn table(
    title: &str,
    sheet_name: &str,
    lines: &[Vec<String>],
    number_columns: &[usize],
) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name)?;
    let bold = Format::new().set_bold();
    sheet.write_string_with_format(0, 0, title, &bold)?;
    for (r, line) in lines.iter().enumerate() {
        let row = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, cell) in line.iter().enumerate() {
            if r == 0 {
                sheet.write_string_with_format(row, col(c), cell, &bold)?;
            } else if cell.is_empty() {
                continue;
            } else if let (true, Ok(n)) = (number_columns.contains(&c), cell.parse::<f64>()) {
                sheet.write_number(row, col(c), n)?;
            } else {
                sheet.write_string(row, col(c), cell)?;
            }
        }
    }
    book.save_to_buffer()
}
