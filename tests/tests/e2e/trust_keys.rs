//! Keys change without downtime: a server re-reads its JWKS file when it
//! changes; during a rotation tokens of the old and the new key are both
//! accepted, and once the old key is removed its tokens are refused.

use std::time::{Duration, Instant};

use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_server::auth::keys::{self, jwks, SigningKey};
use cetrack_server::auth::{Auth, Authenticator, JwtConfig};
use cetrack_tests::*;

/// How long a server may take to notice a changed key file.
const NOTICE: Duration = Duration::from_secs(15);

fn viewer_token(key: &SigningKey) -> anyhow::Result<String> {
    Ok(key.issue(&keys::claims(
        "rotating",
        None,
        &[Role::Viewer],
        None,
        Clearance::Public,
        Duration::from_secs(600),
    ))?)
}

async fn code_with(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<tonic::Code> {
    let mut c = connect_as(addr, Some(token)).await?;
    Ok(
        match c
            .get_domain_summary(GetDomainSummaryRequest {
                parent: Domain::Ai.parent(),
                ..Default::default()
            })
            .await
        {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        },
    )
}

/// Polls until `token` gets `want` (bounded by [`NOTICE`]).
async fn until(addr: std::net::SocketAddr, token: &str, want: tonic::Code) -> anyhow::Result<()> {
    let give_up = Instant::now() + NOTICE;
    loop {
        let got = code_with(addr, token).await?;
        if got == want {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < give_up,
            "still {got:?}, not {want:?}, after {NOTICE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rotated_key_is_accepted_beside_the_old_one_until_the_old_one_is_removed(
) -> anyhow::Result<()> {
    let keys_dir = tempfile::tempdir()?;
    let file = keys_dir.path().join("jwks.json");
    let old = SigningKey::generate();
    let new = SigningKey::generate();
    std::fs::write(&file, jwks(&[&old]))?;
    let auth = Auth::Jwt(Authenticator::load(JwtConfig {
        keys: file.clone(),
        issuer: keys::DEFAULT_ISSUER.into(),
        audience: keys::DEFAULT_AUDIENCE.into(),
    })?);
    let dir = tempfile::tempdir()?;
    let server = serve_with_auth(Domain::Ai, dir.path(), auth).await?;
    let (old_token, new_token) = (viewer_token(&old)?, viewer_token(&new)?);

    assert_eq!(code_with(server.addr, &old_token).await?, tonic::Code::Ok);
    assert_eq!(
        code_with(server.addr, &new_token).await?,
        tonic::Code::Unauthenticated
    );

    // Rotation: both keys listed.
    std::fs::write(&file, jwks(&[&new, &old]))?;
    until(server.addr, &new_token, tonic::Code::Ok).await?;
    assert_eq!(code_with(server.addr, &old_token).await?, tonic::Code::Ok);

    // A file that cannot be read keeps the keys in force.
    std::fs::write(&file, "not json")?;
    std::fs::write(&file, jwks(&[&new, &old]))?;
    assert_eq!(code_with(server.addr, &old_token).await?, tonic::Code::Ok);

    // The old key retired: its tokens are refused, even the cached one.
    std::fs::write(&file, jwks(&[&new]))?;
    until(server.addr, &old_token, tonic::Code::Unauthenticated).await?;
    assert_eq!(code_with(server.addr, &new_token).await?, tonic::Code::Ok);
    server.stop().await?;
    Ok(())
}
