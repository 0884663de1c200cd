//! A first end-to-end check: create, read back, list and summarize on a real
//! server of every domain.

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

#[tokio::test]
async fn create_get_list_and_summary_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        let mut t = TestDomain::start(domain).await?;
        let created = t
            .client
            .create_initiative(create_request(
                domain,
                "first",
                sample(domain, "First", 2025),
            ))
            .await?
            .into_inner();
        assert_eq!(created.name, t.name("first"));
        assert_eq!(created.revision, 1);
        let got = t
            .client
            .get_initiative(GetInitiativeRequest {
                name: t.name("first"),
            })
            .await?
            .into_inner();
        assert_eq!(got, created);
        let listed = t
            .client
            .list_initiatives(ListInitiativesRequest {
                parent: t.parent(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(listed.initiatives, vec![created.clone()]);
        let summary = t
            .client
            .get_domain_summary(GetDomainSummaryRequest {
                parent: t.parent(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(summary.initiative_count, 1);
        assert_eq!(summary.last_revision, 1);
        assert_eq!(summary.organizations.len(), 2);
        t.stop().await?;
    }
    Ok(())
}
