-- Users on devices (issue 17): each employee's card number and device privilege, pushed to the terminals, and the
-- per-user outcome of a command that wrote users. Keep in step with ../postgres/0013_employee_device_fields.sql.

-- The card number as the terminals keep it (a u32 in both ZKTeco user layouts; NULL: central knows none, so a push
-- keeps the card on the terminal), and the privilege on the terminals (NULL: central knows none, so a push keeps the
-- level the terminal holds; see edge-agent/src/zk/REFERENCE.md for the codes).
ALTER TABLE employees ADD COLUMN card_number BIGINT CHECK (card_number BETWEEN 1 AND 4294967295);
ALTER TABLE employees ADD COLUMN device_privilege TEXT
    CHECK (device_privilege IN ('user', 'enroller', 'admin', 'superadmin'));

-- For a command that wrote users: {"written": [PIN...], "refused": [{"pin", "reason"}], "unlisted": n}, from the
-- users it carried and the agent's report. NULL for every other command.
ALTER TABLE agent_commands ADD COLUMN user_outcome_json TEXT;
