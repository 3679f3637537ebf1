//! The JWT authenticator: good tokens become principals; every bad one is
//! `Unauthenticated`, never a panic.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use alertkit_core::{Authenticator, Error, Permission, Principal};
use alertkit_transport::{Claims, JwtAuthenticator};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use proptest::prelude::*;

const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes!!";
const RS_PUBLIC: &[u8] = include_bytes!("fixtures/rs256_public.pem");
const RS_PRIVATE: &[u8] = include_bytes!("fixtures/rs256_private.pem");
const OTHER_PRIVATE: &[u8] = include_bytes!("fixtures/other_private.pem");

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: "alice".into(),
        groups: vec!["ops".into()],
        perms: vec![
            "alerts.read".into(),
            "alerts.create".into(),
            "future.permission".into(),
        ],
        exp,
        nbf: None,
        iss: None,
        aud: None,
    }
}

fn hs(claims: &impl serde::Serialize, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn rs(claims: &Claims, private: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(private).unwrap(),
    )
    .unwrap()
}

async fn refused(auth: &JwtAuthenticator, token: &str) -> String {
    match auth.authenticate(token).await {
        Err(Error::Unauthenticated(why)) => why,
        other => panic!("{token:?} gave {other:?}"),
    }
}

#[tokio::test]
async fn hs256_token_becomes_a_principal() {
    let auth = JwtAuthenticator::hs256(SECRET).unwrap();
    let p = auth
        .authenticate(&hs(&claims(now() + 60), SECRET))
        .await
        .unwrap();
    assert_eq!(p.user_id, "alice");
    assert_eq!(p.groups, ["ops"]);
    assert!(p.can(Permission::AlertsRead) && p.can(Permission::AlertsCreate));
    assert!(
        !p.can(Permission::AlertsManage),
        "unknown strings grant nothing"
    );
}

#[tokio::test]
async fn issued_tokens_round_trip() {
    let auth = JwtAuthenticator::hs256(SECRET).unwrap();
    let admin = Principal::admin("root").with_groups(["ops"]);
    let token = auth.issue(&admin, Duration::from_secs(3600)).unwrap();
    let back = auth.authenticate(&token).await.unwrap();
    assert!(back.expires_at.is_some(), "the session's end is known");
    assert_eq!(
        Principal {
            expires_at: None,
            ..back
        },
        admin
    );
    assert!(
        JwtAuthenticator::rs256_pem(RS_PUBLIC)
            .unwrap()
            .issue(&admin, Duration::from_secs(1))
            .is_err()
    );
}

#[tokio::test]
async fn rs256_token_becomes_a_principal() {
    let auth = JwtAuthenticator::rs256_pem(RS_PUBLIC).unwrap();
    let p = auth
        .authenticate(&rs(&claims(now() + 60), RS_PRIVATE))
        .await
        .unwrap();
    assert_eq!(p.user_id, "alice");
    assert!(
        refused(&auth, &rs(&claims(now() + 60), OTHER_PRIVATE))
            .await
            .contains("signature")
    );
    // An HS256 token whose "secret" is the public key (the classic confusion) is refused.
    assert!(
        refused(&auth, &hs(&claims(now() + 60), RS_PUBLIC))
            .await
            .contains("algorithm")
    );
}

#[tokio::test]
async fn every_bad_token_is_unauthenticated() {
    let auth = JwtAuthenticator::hs256(SECRET).unwrap().leeway(0);
    assert!(
        refused(&auth, &hs(&claims(now() - 10), SECRET))
            .await
            .contains("expired")
    );
    assert!(
        refused(
            &auth,
            &hs(&claims(now() + 60), b"another-secret-that-is-32-bytes-long")
        )
        .await
        .contains("signature")
    );
    let no_exp = serde_json::json!({"sub": "alice", "perms": ["alerts.manage"]});
    refused(&auth, &hs(&no_exp, SECRET)).await; // no expiry: refused
    let empty_sub = Claims {
        sub: " ".into(),
        ..claims(now() + 60)
    };
    assert!(
        refused(&auth, &hs(&empty_sub, SECRET))
            .await
            .contains("subject")
    );
    // Tampered payload: claims swapped for an admin's, signature kept.
    let good = hs(&claims(now() + 60), SECRET);
    let forged_claims = hs(
        &Claims {
            perms: vec!["alerts.manage".into()],
            ..claims(now() + 60)
        },
        b"attacker-secret-attacker-secret-xx",
    );
    let parts: Vec<&str> = good.split('.').collect();
    let forged: Vec<&str> = forged_claims.split('.').collect();
    refused(&auth, &format!("{}.{}.{}", parts[0], forged[1], parts[2])).await;
    // alg=none.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    refused(&auth, &none).await;
    for junk in [
        "",
        "abc",
        "a.b.c",
        "....",
        "Bearer x",
        "\u{0}",
        &"x".repeat(100_000),
    ] {
        refused(&auth, junk).await;
    }
    assert!(matches!(
        JwtAuthenticator::hs256(b"short"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        JwtAuthenticator::rs256_pem(b"not a key"),
        Err(Error::Invalid(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_never_panics_or_authenticates(token in ".{0,300}", cut in 0usize..400, flip in any::<u8>()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let auth = JwtAuthenticator::hs256(SECRET).unwrap();
        prop_assert!(matches!(rt.block_on(auth.authenticate(&token)), Err(Error::Unauthenticated(_))));
        // A real token, truncated or with one byte changed, is refused too.
        let mut good = hs(&claims(now() + 60), SECRET).into_bytes();
        let i = cut % good.len();
        good[i] ^= flip.max(1);
        let mangled = String::from_utf8_lossy(&good).into_owned();
        prop_assert!(rt.block_on(auth.authenticate(&mangled)).is_err());
        let truncated = String::from_utf8_lossy(&good[..i]).into_owned();
        prop_assert!(rt.block_on(auth.authenticate(&truncated)).is_err());
    }
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let auth = JwtAuthenticator::hs256(SECRET).unwrap().leeway(0);
    let mut c = claims(now() + 600);
    c.nbf = Some(now() + 300);
    assert!(
        refused(&auth, &hs(&c, SECRET))
            .await
            .contains("not yet valid")
    );
    c.nbf = Some(now() - 5);
    assert!(auth.authenticate(&hs(&c, SECRET)).await.is_ok());
}

#[tokio::test]
async fn issuer_and_audience_are_checked_only_when_configured() {
    let mut c = claims(now() + 600);
    c.iss = Some("https://idp.example".into());
    c.aud = Some(serde_json::json!(["alertkit", "other"]));
    let plain = JwtAuthenticator::hs256(SECRET).unwrap();
    // Not configured: iss/aud are not checked (a string or a list).
    assert!(plain.authenticate(&hs(&c, SECRET)).await.is_ok());

    let strict = JwtAuthenticator::hs256(SECRET)
        .unwrap()
        .issuer("https://idp.example")
        .audience("alertkit");
    assert!(strict.authenticate(&hs(&c, SECRET)).await.is_ok());
    let mut other_aud = c.clone();
    other_aud.aud = Some(serde_json::json!("billing"));
    assert!(
        refused(&strict, &hs(&other_aud, SECRET))
            .await
            .contains("audience")
    );
    let mut no_aud = c.clone();
    no_aud.aud = None;
    refused(&strict, &hs(&no_aud, SECRET)).await;
    let mut other_iss = c.clone();
    other_iss.iss = Some("https://evil.example".into());
    assert!(
        refused(&strict, &hs(&other_iss, SECRET))
            .await
            .contains("issuer")
    );
    let mut no_iss = c.clone();
    no_iss.iss = None;
    refused(&strict, &hs(&no_iss, SECRET)).await;

    // What it issues, it accepts.
    let token = strict
        .issue(&Principal::user("bob"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(strict.authenticate(&token).await.unwrap().user_id, "bob");
    refused(
        &JwtAuthenticator::hs256(SECRET)
            .unwrap()
            .audience("elsewhere"),
        &token,
    )
    .await;
}

#[tokio::test]
async fn the_principal_expires_with_the_token_plus_leeway() {
    let exp = now() + 600;
    let auth = JwtAuthenticator::hs256(SECRET).unwrap().leeway(15);
    let p = auth.authenticate(&hs(&claims(exp), SECRET)).await.unwrap();
    assert_eq!(p.expires_at.map(|t| t.timestamp()), Some(exp as i64 + 15));
}
