-- Every mark of a day gets a `marks` value that no earlier mark of any day had: a new dirty row takes the next value
-- of a sequence, and a re-mark (store::attendance's mark_days) takes the value its proposed row drew. A released
-- (employee, day, marks) then names exactly one mark, even when a day is released, marked again by a late punch (a
-- fresh row) and released once more; before, each fresh row started again at 1.
CREATE SEQUENCE attendance_dirty_marks;
SELECT setval('attendance_dirty_marks', GREATEST((SELECT max(marks) FROM attendance_dirty), 1));
ALTER TABLE attendance_dirty ALTER COLUMN marks SET DEFAULT nextval('attendance_dirty_marks');
