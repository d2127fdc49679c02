-- The device's own state and verification codes beside the normalised ones (issue 13), SQLite flavour. Keep in step
-- with ../postgres/0009_raw_device_codes.sql.
--
-- `state` and `verify` hold the codes as normalised by the protocol (a push terminal's verify 4 becomes card, 2);
-- these keep exactly what the device sent. NULL for punches whose source has no code of its own, and for punches
-- stored before this migration or sent by protocol version 1 agents.
ALTER TABLE all_logs ADD COLUMN raw_state BIGINT;
ALTER TABLE all_logs ADD COLUMN raw_verify BIGINT;
