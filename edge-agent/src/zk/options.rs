//! Device options: OPTIONS_RRQ with `"~SerialNumber\0"` is answered `"~SerialNumber=XXX\0"`; an unknown key gets
//! ACK_ERROR.

/// Longest option value kept; longer values are cut (a serial number or platform name is a few dozen bytes).
pub const MAX_OPTION_LEN: usize = 256;

pub const SERIAL_NUMBER: &str = "~SerialNumber";
pub const PLATFORM: &str = "~Platform";
pub const DEVICE_NAME: &str = "~DeviceName";
pub const OEM_VENDOR: &str = "~OEMVendor";

/// The OPTIONS_RRQ payload for `key`.
pub fn request(key: &str) -> Vec<u8> {
    let mut out = key.as_bytes().to_vec();
    out.push(0);
    out
}

/// The key named in an OPTIONS_RRQ payload (the simulator uses it).
pub fn requested_key(payload: &[u8]) -> String {
    super::records::c_string(payload)
}

/// The value in a reply `key=value\0`: the text after the first `=` up to the first NUL, trimmed; the whole text if
/// there is no `=`.
pub fn parse_reply(data: &[u8]) -> String {
    let text = super::records::c_string(&data[..data.len().min(MAX_OPTION_LEN * 2)]);
    let value = text.split_once('=').map_or(text.as_str(), |(_, v)| v).trim();
    let mut end = value.len().min(MAX_OPTION_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// The reply payload `key=value\0` (the simulator uses it).
pub fn reply(key: &str, value: &str) -> Vec<u8> {
    let mut out = format!("{key}={value}").into_bytes();
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_round_trip() {
        assert_eq!(request(SERIAL_NUMBER), b"~SerialNumber\0");
        assert_eq!(requested_key(b"~SerialNumber\0"), SERIAL_NUMBER);
        assert_eq!(parse_reply(&reply(SERIAL_NUMBER, "CDQ9192960006")), "CDQ9192960006");
        assert_eq!(parse_reply(b"~Platform=ZMM220_TFT\0\0\0junk"), "ZMM220_TFT");
        assert_eq!(parse_reply(b"plain"), "plain");
        assert_eq!(parse_reply(b"a=b=c\0"), "b=c");
        assert_eq!(parse_reply(&[b'x'; 5000]).len(), MAX_OPTION_LEN);
    }
}
