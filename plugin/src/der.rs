//! Just enough DER to read the subject's common name (CN) out of an X.509 client certificate:
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serialNumber, signature,
//! issuer, validity, subject, ... }, ... }. Anything unexpected gives `None`.

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xa0;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// One tag-length-value: (tag, contents, rest of the input).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

pub fn subject_common_name(cert: &[u8]) -> Option<String> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else { return None };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION_TAG {
        rest = after;
    }
    // serialNumber, signature, issuer, validity: skip four elements.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, mut rdns, _) = tlv(rest)? else { return None };
    // subject: SEQUENCE OF SET OF SEQUENCE { type OID, value string }
    while !rdns.is_empty() {
        let (tag, set, next) = tlv(rdns)?;
        rdns = next;
        if tag != SET {
            continue;
        }
        let (SEQUENCE, attr, _) = tlv(set)? else { continue };
        let (OID, oid, value) = tlv(attr)? else { continue };
        if oid == COMMON_NAME {
            let (_, text, _) = tlv(value)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        v.extend_from_slice(content);
        v
    }

    fn name(cn: &str, org: &str) -> Vec<u8> {
        let o = wrap(SET, &wrap(SEQUENCE, &[wrap(OID, &[0x55, 0x04, 0x0a]), wrap(0x0c, org.as_bytes())].concat()));
        let c = wrap(SET, &wrap(SEQUENCE, &[wrap(OID, &COMMON_NAME), wrap(0x0c, cn.as_bytes())].concat()));
        wrap(SEQUENCE, &[o, c].concat())
    }

    #[test]
    fn the_subject_common_name_is_read_not_the_issuers() {
        let tbs = [
            wrap(VERSION_TAG, &wrap(0x02, &[2])),
            wrap(0x02, &[0x01, 0x23]),
            wrap(SEQUENCE, &wrap(OID, &[0x2a, 0x86, 0x48])),
            name("kubernetes", "ca"),
            wrap(SEQUENCE, &[wrap(0x17, b"250101000000Z"), wrap(0x17, b"260101000000Z")].concat()),
            name("kubernetes-admin", "system:masters"),
            vec![0u8; 200],
        ]
        .concat();
        let cert = wrap(SEQUENCE, &[wrap(SEQUENCE, &tbs), wrap(SEQUENCE, &[])].concat());
        assert_eq!(subject_common_name(&cert).as_deref(), Some("kubernetes-admin"));
        assert_eq!(subject_common_name(&cert[..10]), None);
        assert_eq!(subject_common_name(b""), None);
    }
}
