//! Command and reply codes of the ZKTeco binary protocol (the subset this driver and its simulator speak), with
//! names for error messages and logs.

pub const CONNECT: u16 = 1000;
pub const EXIT: u16 = 1001;
pub const ENABLE_DEVICE: u16 = 1002;
pub const DISABLE_DEVICE: u16 = 1003;
pub const REFRESH_DATA: u16 = 1013;
pub const REFRESH_OPTION: u16 = 1014;
pub const GET_VERSION: u16 = 1100;
pub const AUTH: u16 = 1102;
pub const DB_RRQ: u16 = 7;
pub const USER_WRQ: u16 = 8;
pub const USERTEMP_RRQ: u16 = 9;
pub const OPTIONS_RRQ: u16 = 11;
pub const OPTIONS_WRQ: u16 = 12;
pub const ATTLOG_RRQ: u16 = 13;
pub const CLEAR_DATA: u16 = 14;
pub const CLEAR_ATTLOG: u16 = 15;
pub const DELETE_USER: u16 = 18;
/// pyzk's "save user templates": store the user and fingers staged with PREPARE_DATA / DATA (no name in
/// `const.py`; the code and body are in `save_user_template`).
pub const SAVE_USER_TEMPLATES: u16 = 110;
pub const GET_FREE_SIZES: u16 = 50;
pub const START_VERIFY: u16 = 60;
pub const CANCEL_CAPTURE: u16 = 62;
pub const GET_TIME: u16 = 201;
pub const SET_TIME: u16 = 202;
pub const REG_EVENT: u16 = 500;
pub const PREPARE_DATA: u16 = 1500;
pub const DATA: u16 = 1501;
pub const FREE_DATA: u16 = 1502;
pub const PREPARE_BUFFER: u16 = 1503;
pub const READ_BUFFER: u16 = 1504;

pub const ACK_OK: u16 = 2000;
pub const ACK_ERROR: u16 = 2001;
pub const ACK_DATA: u16 = 2002;
pub const ACK_UNAUTH: u16 = 2005;
pub const ACK_UNKNOWN: u16 = 0xFFFF;
/// "Order false": another way some firmware says it does not have a command.
pub const ACK_ERROR_CMD: u16 = 0xFFFD;

/// Realtime event flag for attendance punches (the event packet carries it in its session field).
pub const EF_ATTLOG: u16 = 1;

/// `FCT_USER`: the table selector for users in a PREPARE_BUFFER request.
pub const FCT_USER: u32 = 5;

/// `FCT_ATTLOG`: the attendance table's selector. pyzk sends 0 for attendance (the command code names the table);
/// some implementations pick the dataset by this function code instead, so a short read is tried again with it.
pub const FCT_ATTLOG: u32 = 1;

/// `FCT_FINGERTMP`: the fingerprint template table's selector, read with DB_RRQ.
pub const FCT_FINGERTMP: u32 = 2;

/// A readable name for a command or reply code, for errors and logs.
pub fn name(code: u16) -> &'static str {
    match code {
        CONNECT => "CONNECT",
        EXIT => "EXIT",
        ENABLE_DEVICE => "ENABLEDEVICE",
        DISABLE_DEVICE => "DISABLEDEVICE",
        REFRESH_DATA => "REFRESHDATA",
        REFRESH_OPTION => "REFRESHOPTION",
        GET_VERSION => "GET_VERSION",
        AUTH => "AUTH",
        DB_RRQ => "DB_RRQ",
        USER_WRQ => "USER_WRQ",
        USERTEMP_RRQ => "USERTEMP_RRQ",
        OPTIONS_RRQ => "OPTIONS_RRQ",
        OPTIONS_WRQ => "OPTIONS_WRQ",
        ATTLOG_RRQ => "ATTLOG_RRQ",
        CLEAR_DATA => "CLEAR_DATA",
        CLEAR_ATTLOG => "CLEAR_ATTLOG",
        DELETE_USER => "DELETE_USER",
        SAVE_USER_TEMPLATES => "SAVE_USER_TEMPLATES",
        GET_FREE_SIZES => "GET_FREE_SIZES",
        START_VERIFY => "STARTVERIFY",
        CANCEL_CAPTURE => "CANCELCAPTURE",
        GET_TIME => "GET_TIME",
        SET_TIME => "SET_TIME",
        REG_EVENT => "REG_EVENT",
        PREPARE_DATA => "PREPARE_DATA",
        DATA => "DATA",
        FREE_DATA => "FREE_DATA",
        PREPARE_BUFFER => "PREPARE_BUFFER",
        READ_BUFFER => "READ_BUFFER",
        ACK_OK => "ACK_OK",
        ACK_ERROR => "ACK_ERROR",
        ACK_DATA => "ACK_DATA",
        ACK_UNAUTH => "ACK_UNAUTH",
        ACK_UNKNOWN => "ACK_UNKNOWN",
        ACK_ERROR_CMD => "ACK_ERROR_CMD",
        _ => "unknown command",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_reference_table() {
        // zk/const.py values, checked one by one because a wrong code is a silent protocol break.
        let table = [
            (CONNECT, 1000),
            (EXIT, 1001),
            (ENABLE_DEVICE, 1002),
            (DISABLE_DEVICE, 1003),
            (REFRESH_DATA, 1013),
            (GET_VERSION, 1100),
            (AUTH, 1102),
            (DB_RRQ, 7),
            (USER_WRQ, 8),
            (USERTEMP_RRQ, 9),
            (DELETE_USER, 18),
            (SAVE_USER_TEMPLATES, 110),
            (OPTIONS_RRQ, 11),
            (ATTLOG_RRQ, 13),
            (CLEAR_ATTLOG, 15),
            (GET_FREE_SIZES, 50),
            (GET_TIME, 201),
            (SET_TIME, 202),
            (REG_EVENT, 500),
            (PREPARE_DATA, 1500),
            (DATA, 1501),
            (FREE_DATA, 1502),
            (PREPARE_BUFFER, 1503),
            (READ_BUFFER, 1504),
            (ACK_OK, 2000),
            (ACK_ERROR, 2001),
            (ACK_UNAUTH, 2005),
            (ACK_UNKNOWN, 65535),
        ];
        for (code, expected) in table {
            assert_eq!(code, expected, "{}", name(code));
        }
        assert_eq!(name(1503), "PREPARE_BUFFER");
        assert_eq!(name(4242), "unknown command");
    }
}
