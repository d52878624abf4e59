//! X.509 version 1 certificates (no version field, no extensions), as `openssl x509 -req`
//! makes them without an extensions file and as the official Azure IoT Node SDK's end-to-end
//! tests make their devices': rcgen writes version 3 only, so the DER is written here.

use std::time::SystemTime;

use c2d_hub::x509::{thumbprints, DeviceCertificate};
use rcgen::{KeyPair, PublicKeyData, SigningKey};

/// ecdsa-with-SHA256 (RFC 5758), the signature of rcgen's default P-256 keys.
const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
/// id-at-commonName.
const COMMON_NAME: &[u64] = &[2, 5, 4, 3];

fn name(w: yasna::DERWriter<'_>, common_name: &str) {
    w.write_sequence(|w| {
        w.next().write_set(|w| {
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&yasna::models::ObjectIdentifier::from_slice(COMMON_NAME));
                w.next().write_utf8_string(common_name);
            })
        })
    })
}

fn algorithm(w: yasna::DERWriter<'_>) {
    w.write_sequence(|w| {
        w.next()
            .write_oid(&yasna::models::ObjectIdentifier::from_slice(
                ECDSA_WITH_SHA256,
            ));
    })
}

fn utc(t: SystemTime) -> yasna::models::UTCTime {
    let t = time::OffsetDateTime::from(t).replace_nanosecond(0).unwrap();
    yasna::models::UTCTime::from_datetime(t)
}

/// A version 1 certificate for `subject` (its common name) with a new key, signed by `issuer`
/// (its certificate, PEM, and key), or by its own key when `issuer` is `None`; and that key.
pub fn v1_certificate(
    subject: &str,
    valid: std::ops::Range<SystemTime>,
    issuer: Option<(&str, &KeyPair)>,
) -> (DeviceCertificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let subject_name = yasna::construct_der(|w| name(w, subject));
    let (issuer_name, signer) = match issuer {
        Some((pem, key)) => {
            let der = c2d::tls::certificates_from_pem(pem.as_bytes())
                .unwrap()
                .remove(0);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            (cert.subject().as_raw().to_vec(), key)
        }
        None => (subject_name.clone(), &key),
    };
    let serial: u64 = rand_serial();
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // version 1: the [0] version field is absent
            w.next().write_u64(serial);
            algorithm(w.next());
            w.next().write_der(&issuer_name);
            w.next().write_sequence(|w| {
                w.next().write_utctime(&utc(valid.start));
                w.next().write_utctime(&utc(valid.end));
            });
            w.next().write_der(&subject_name);
            w.next().write_der(&key.subject_public_key_info());
        })
    });
    let signature = signer.sign(&tbs).unwrap();
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            algorithm(w.next());
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    });
    let (sha1, sha256) = thumbprints(&der);
    let cert = DeviceCertificate {
        cert_pem: pem(&der),
        key_pem: key.serialize_pem(),
        sha1_thumbprint: sha1,
        sha256_thumbprint: sha256,
    };
    (cert, key)
}

fn rand_serial() -> u64 {
    use std::time::UNIX_EPOCH;
    // positive and unique enough for a test
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        & 0x7fff_ffff_ffff_ffff
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
