//! Certificates for `--tls`: a throwaway local CA plus a `localhost` server certificate
//! signed by it, generated fresh at start-up. Also the little X.509 reading the sandbox
//! needs elsewhere (the RSA key of a connected app's JWT certificate), done with a
//! minimal DER walk because neither rcgen nor jsonwebtoken parses certificates.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{Datelike as _, NaiveDate, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Names the server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;

/// PEM-encoded TLS material for one run of the sandbox.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA certificate clients trust (Python `verify=`, Node `ca`, rustls roots).
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate.
    pub cert_chain_pem: String,
    /// The server's private key (PKCS#8 `PRIVATE KEY`, ECDSA P-256).
    pub key_pem: String,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem)
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Certificate generation failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the parameters or could not generate a key.
    #[error("generating TLS certificates failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Generates a fresh CA and a server certificate for [`SERVER_NAMES`], valid from
/// yesterday (tolerating clock skew) for ten years.
pub fn generate() -> Result<TlsMaterial, TlsError> {
    let today = Utc::now().date_naive();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("Sluice Sandbox Local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut ca, today);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec())?;
    leaf.distinguished_name = name("localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    set_validity(&mut leaf, today);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let ca_pem = ca_cert.pem();
    Ok(TlsMaterial {
        cert_chain_pem: format!("{}{ca_pem}", leaf_cert.pem()),
        ca_pem,
        key_pem: leaf_key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Sluice Sandbox");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// From yesterday, so a client clock slightly behind still accepts it, for ten years.
fn set_validity(params: &mut CertificateParams, today: NaiveDate) {
    // chrono's month and day always fit in u8; rcgen wants u8 and a `time` date we can't name.
    let ymd = |year: i32, d: NaiveDate, day: u32| rcgen::date_time_ymd(year, d.month() as u8, day as u8);
    let yesterday = today.pred_opt().unwrap_or(today);
    params.not_before = ymd(yesterday.year(), yesterday, yesterday.day());
    // Feb 29 mostly has no counterpart ten years on; the 28th always does.
    params.not_after = ymd(today.year() + 10, today, today.day().min(28));
}

/// A PEM that can't serve as an RSA public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text holds no complete `-----BEGIN …-----`/`-----END …-----` block.
    #[error("no PEM block found")]
    NoPem,
    /// The PEM block is neither a certificate nor a public key.
    #[error("unsupported PEM label {0:?}; expected CERTIFICATE, PUBLIC KEY or RSA PUBLIC KEY")]
    Label(String),
    /// The PEM body is not base64.
    #[error("PEM body is not valid base64")]
    Base64,
    /// The DER inside the PEM is not the expected structure.
    #[error("malformed DER: {0}")]
    Der(&'static str),
    /// The key is well-formed but not RSA.
    #[error("the public key is not an RSA key")]
    NotRsa,
}

/// The PKCS#1 `RSAPublicKey` DER of the first PEM block of `pem`, which may be an X.509
/// `CERTIFICATE`, a SubjectPublicKeyInfo `PUBLIC KEY` or an `RSA PUBLIC KEY`.
pub fn rsa_public_key_der(pem: &str) -> Result<Vec<u8>, KeyError> {
    let (label, der) = pem_decode(pem)?;
    let pkcs1 = match label.as_str() {
        "CERTIFICATE" => rsa_key_of_spki(certificate_spki(&der)?)?,
        "PUBLIC KEY" => rsa_key_of_spki(der_expect(&der, TAG_SEQUENCE)?.0)?,
        "RSA PUBLIC KEY" => &der[..],
        _ => return Err(KeyError::Label(label)),
    };
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let (key, _) = der_expect(pkcs1, TAG_SEQUENCE)?;
    let (_, rest) = der_expect(key, TAG_INTEGER)?;
    let (_, rest) = der_expect(rest, TAG_INTEGER)?;
    if !rest.is_empty() {
        return Err(KeyError::Der("trailing data in RSA public key"));
    }
    Ok(pkcs1.to_vec())
}

/// The label and DER of the first PEM block in `text`.
fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let begin = text.find("-----BEGIN ").ok_or(KeyError::NoPem)? + "-----BEGIN ".len();
    let rest = &text[begin..];
    let label_end = rest.find("-----").ok_or(KeyError::NoPem)?;
    let label = &rest[..label_end];
    let body = &rest[label_end + "-----".len()..];
    let end = body.find(&format!("-----END {label}-----")).ok_or(KeyError::NoPem)?;
    let base64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(base64).map_err(|_| KeyError::Base64)?;
    Ok((label.to_owned(), der))
}

/// Splits one DER TLV off `input`: `(tag, contents, rest)`.
fn der_next(input: &[u8]) -> Result<(u8, &[u8], &[u8]), KeyError> {
    const TRUNCATED: KeyError = KeyError::Der("truncated");
    let (&tag, rest) = input.split_first().ok_or(TRUNCATED)?;
    if tag & 0x1f == 0x1f {
        return Err(KeyError::Der("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(TRUNCATED)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // DER lengths of certificates fit in four bytes; indefinite (0x80) is BER-only.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(KeyError::Der("unsupported length encoding"));
        }
        let bytes = rest.get(..n).ok_or(TRUNCATED)?;
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    let contents = rest.get(..len).ok_or(TRUNCATED)?;
    Ok((tag, contents, &rest[len..]))
}

fn der_expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), KeyError> {
    match der_next(input)? {
        (found, contents, rest) if found == tag => Ok((contents, rest)),
        _ => Err(KeyError::Der("unexpected tag")),
    }
}

/// The contents of a certificate's SubjectPublicKeyInfo (RFC 5280 §4.1).
fn certificate_spki(der: &[u8]) -> Result<&[u8], KeyError> {
    let (certificate, _) = der_expect(der, TAG_SEQUENCE)?;
    let (tbs, _) = der_expect(certificate, TAG_SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&TAG_VERSION) {
        rest = der_next(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = der_next(rest)?.2;
    }
    Ok(der_expect(rest, TAG_SEQUENCE)?.0)
}

/// The PKCS#1 key inside SubjectPublicKeyInfo contents, if the algorithm is rsaEncryption.
fn rsa_key_of_spki(spki: &[u8]) -> Result<&[u8], KeyError> {
    let (algorithm, rest) = der_expect(spki, TAG_SEQUENCE)?;
    if der_expect(algorithm, TAG_OID)?.0 != RSA_ENCRYPTION_OID {
        return Err(KeyError::NotRsa);
    }
    match der_expect(rest, TAG_BIT_STRING)?.0.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err(KeyError::Der("public key bit string has unused bits")),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey};
    use rcgen::PKCS_RSA_SHA256;

    use super::*;

    /// `(tag, contents, whole TLV)` of one DER element.
    type Element<'a> = (u8, &'a [u8], &'a [u8]);

    /// The elements of `input`, in order.
    fn elements(mut input: &[u8]) -> Vec<Element<'_>> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (tag, contents, rest) = der_next(input).unwrap();
            out.push((tag, contents, &input[..input.len() - rest.len()]));
            input = rest;
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// The PEM blocks of `text`, in order.
    fn blocks(text: &str) -> Vec<Vec<u8>> {
        text.split_inclusive("-----END CERTIFICATE-----\n")
            .map(|block| pem_decode(block).unwrap())
            .inspect(|(label, _)| assert_eq!(label, "CERTIFICATE"))
            .map(|(_, der)| der)
            .collect()
    }

    /// `[tbsCertificate, signatureAlgorithm, signature]` and the tbs fields of a certificate.
    fn certificate(der: &[u8]) -> (Vec<Element<'_>>, Vec<Element<'_>>) {
        let outer = elements(der_expect(der, TAG_SEQUENCE).unwrap().0);
        let tbs = elements(outer[0].1);
        (outer, tbs)
    }

    /// An X.509 ECDSA signature (DER `SEQUENCE { r, s }`) in JWS's fixed `r || s` form.
    fn fixed_signature(bit_string: &[u8]) -> Vec<u8> {
        let (sequence, _) = der_expect(&bit_string[1..], TAG_SEQUENCE).unwrap();
        let mut out = Vec::new();
        for (_, int, _) in elements(sequence) {
            let int: Vec<u8> = int.iter().copied().skip_while(|&b| b == 0).collect();
            out.extend(std::iter::repeat_n(0, 32 - int.len()).chain(int));
        }
        out
    }

    fn utc_date(time: Element<'_>) -> NaiveDate {
        assert_eq!(time.0, 0x17, "UTCTime until 2050");
        let text = std::str::from_utf8(time.1).unwrap();
        NaiveDate::parse_from_str(&format!("20{}", &text[..6]), "%Y%m%d").unwrap()
    }

    #[test]
    fn leaf_is_signed_by_the_ca_and_valid_for_localhost() {
        let material = generate().unwrap();
        let chain = blocks(&material.cert_chain_pem);
        let ca_der = &blocks(&material.ca_pem)[0];
        assert_eq!(chain.len(), 2);
        assert_eq!(&chain[1], ca_der, "the chain ends with the CA");
        let (leaf, leaf_tbs) = certificate(&chain[0]);
        let (_, ca_tbs) = certificate(ca_der);

        assert_eq!(leaf_tbs[3].2, ca_tbs[5].2, "leaf issuer is the CA subject");
        let ca_point = rsa_or_ec_point(ca_tbs[6].1);
        let signature = URL_SAFE_NO_PAD.encode(fixed_signature(leaf[2].1));
        let ca_key = DecodingKey::from_ec_der(ca_point);
        let verify = |tbs: &[u8]| jsonwebtoken::crypto::verify(&signature, tbs, &ca_key, Algorithm::ES256).unwrap();
        assert!(verify(leaf[0].2), "CA signature over the leaf verifies");
        let mut tampered = leaf[0].2.to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(!verify(&tampered));

        let ca_constraints = [0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00];
        assert!(contains(ca_der, &ca_constraints), "CA:TRUE, pathlen 0");
        assert!(contains(ca_der, &[0x06, 0x03, 0x55, 0x1d, 0x0f]), "key usage");
        assert!(!contains(&chain[0], &ca_constraints[..5]), "leaf is not a CA");
        let server_auth = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
        let ipv6_loopback = [[0x87, 0x10].as_slice(), &[0; 15], &[1]].concat();
        for needle in [&b"\x82\x09localhost"[..], &[0x87, 0x04, 127, 0, 0, 1], &ipv6_loopback, &server_auth] {
            assert!(contains(&chain[0], needle), "{needle:02x?}");
        }

        let today = Utc::now().date_naive();
        let validity = elements(leaf_tbs[4].1);
        assert_eq!(utc_date(validity[0]), today.pred_opt().unwrap());
        assert_eq!(utc_date(validity[1]).year(), today.year() + 10);

        let key = KeyPair::from_pem(&material.key_pem).unwrap();
        assert_eq!(key.public_key_raw(), rsa_or_ec_point(leaf_tbs[6].1));
        assert!(!format!("{material:?}").contains("PRIVATE KEY"));
        assert_ne!(generate().unwrap().key_pem, material.key_pem);
    }

    /// The raw key bits of SubjectPublicKeyInfo contents, whatever the algorithm.
    fn rsa_or_ec_point(spki: &[u8]) -> &[u8] {
        let (_, rest) = der_expect(spki, TAG_SEQUENCE).unwrap();
        &der_expect(rest, TAG_BIT_STRING).unwrap().0[1..]
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn rsa_public_key_comes_out_of_certificates_and_key_pems() {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let params = CertificateParams::new(vec!["jwt.example".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expected = key.public_key_raw();
        let inputs = [
            format!("subject=/CN=jwt.example\n{}", cert.pem()),
            format!("{}{}", cert.pem(), generate().unwrap().ca_pem),
            key.public_key_pem(),
            pem("RSA PUBLIC KEY", expected),
        ];
        for input in inputs {
            assert_eq!(rsa_public_key_der(&input).as_deref(), Ok(expected), "{input}");
        }

        let ec_cert = generate().unwrap().ca_pem;
        let no_end = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        let cases = [
            (ec_cert.as_str(), KeyError::NotRsa),
            ("", KeyError::NoPem),
            (no_end, KeyError::NoPem),
            (&key.serialize_pem(), KeyError::Label("PRIVATE KEY".into())),
            ("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----", KeyError::Base64),
            (&pem("RSA PUBLIC KEY", &[0x30, 0x03, 0x02, 0x01, 0x01]), KeyError::Der("truncated")),
        ];
        for (input, expected) in cases {
            assert_eq!(rsa_public_key_der(input), Err(expected), "{input}");
        }
        // Every truncation of a certificate fails cleanly instead of panicking.
        let der = cert.der().to_vec();
        for len in 0..der.len() {
            assert!(rsa_public_key_der(&pem("CERTIFICATE", &der[..len])).is_err(), "{len}");
        }
    }

    #[test]
    fn der_lengths() {
        let long = [[0x04, 0x82, 0x01, 0x00].as_slice(), &[7; 256], &[0x05, 0x00]].concat();
        let (tag, contents, rest) = der_next(&long).unwrap();
        assert_eq!((tag, contents.len(), rest), (0x04, 256, &[0x05, 0x00][..]));
        for bad in [&[0x04, 0x80][..], &[0x04, 0x85, 1, 1, 1, 1, 1], &[0x1f, 0x01, 0x00], &[0x04, 0x02, 0x00]] {
            assert!(der_next(bad).is_err(), "{bad:02x?}");
        }
    }
}
