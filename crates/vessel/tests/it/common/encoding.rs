//! Base64 and base32 for the test kit's tokens and Basic credentials (the dev-dependencies
//! have no crate for them, and the kit needs only these few lines).

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Standard base64 with `=` padding (x5c certificates, Basic credentials).
pub fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// URL-safe base64 without padding, as JSON Web Tokens use it.
pub fn base64url(data: &[u8]) -> String {
    base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decodes standard base64 (padding optional); None if it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = BASE64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    Some(out)
}

/// RFC 4648 base32 without padding (libtrust key IDs).
pub fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    let mut bits = 0u64;
    let mut nbits = 0;
    for &b in data {
        bits = (bits << 8) | u64::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            out.push(BASE32[(bits >> nbits) as usize & 31] as char);
        }
    }
    if nbits > 0 {
        out.push(BASE32[(bits << (5 - nbits)) as usize & 31] as char);
    }
    out
}

/// Decodes `%XX` escapes and `+` in a query value.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(base64(b"docker:pw"), "ZG9ja2VyOnB3");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            percent_decode("repository%3Aa%2Fb%3Apull"),
            "repository:a/b:pull"
        );
    }
}
