//! Sites: `site list|show|create|delete`. Records only for now (status `pending`); applying
//! them to nginx and PHP-FPM is the host layer's job.

use super::audit::{conflict, record_ok};
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Services, Site};
use crate::domain::{DomainName, Name, PhpVersion, SiteKind, Upstream};
use crate::error::{Error, Result};
use crate::store::{NewSite, SiteRow};

/// The status of a site recorded but not yet applied to a host.
pub const STATUS_PENDING: &str = "pending";
/// The server sites live on until remote servers can host them.
const LOCAL_SERVER: &str = "local";

/// `site create` input, already parsed.
#[derive(Debug, Clone)]
pub struct SiteCreate {
    pub domain: DomainName,
    pub kind: SiteKind,
    pub php: Option<PhpVersion>,
    pub aliases: Vec<DomainName>,
    pub upstream: Option<Upstream>,
    pub tenant: Option<Name>,
}

impl Services {
    pub async fn site_list(&self, actor: &Actor, tenant: Option<&Name>) -> Result<Vec<Site>> {
        let (tenant_id, _) = self.target_tenant(actor, tenant).await?;
        policy::check(
            actor,
            Resource::Site,
            Verb::Read,
            Owner::Tenant(tenant_id),
            "sites",
        )?;
        let scope = (tenant.is_some() || !actor.is_admin()).then_some(tenant_id);
        Ok(self
            .db
            .sites(scope)
            .await?
            .into_iter()
            .map(Site::from)
            .collect())
    }

    pub async fn site_show(&self, actor: &Actor, domain: &DomainName) -> Result<Site> {
        Ok(Site::from(
            self.visible_site(actor, domain, Verb::Read).await?,
        ))
    }

    pub(super) async fn visible_site(
        &self,
        actor: &Actor,
        domain: &DomainName,
        verb: Verb,
    ) -> Result<SiteRow> {
        let what = format!("site {domain}");
        let row = self.db.site_by_domain(domain.as_str()).await?;
        let owner = Owner::Tenant(row.as_ref().map_or(actor.tenant_id, |r| r.tenant_id));
        policy::check(actor, Resource::Site, verb, owner, &what)?;
        row.ok_or_else(|| policy::not_found(&what))
    }

    pub async fn site_create(&self, actor: &Actor, req: SiteCreate) -> Result<Site> {
        let domain = req.domain.clone();
        self.audited(actor, "site.create", domain.as_str(), async {
            let (tenant_id, tenant) = self.target_tenant(actor, req.tenant.as_ref()).await?;
            policy::check(
                actor,
                Resource::Site,
                Verb::Write,
                Owner::Tenant(tenant_id),
                "sites",
            )?;
            let php = self.site_php(&req)?;
            let upstream = match (req.kind, &req.upstream) {
                (SiteKind::Proxy, Some(u)) => Some(u.as_str().to_owned()),
                (SiteKind::Proxy, None) => {
                    return Err(Error::invalid(
                        "a proxy site needs --upstream URL, like http://127.0.0.1:3000",
                    ));
                }
                (_, Some(_)) => {
                    return Err(Error::invalid("--upstream only applies to --type proxy"));
                }
                (_, None) => None,
            };
            let mut aliases: Vec<String> = Vec::new();
            for alias in &req.aliases {
                if alias == &domain {
                    return Err(Error::invalid(format!(
                        "alias {alias} is the site's own domain"
                    )));
                }
                if aliases.iter().any(|a| a == alias.as_str()) {
                    return Err(Error::invalid(format!("alias {alias} is given twice")));
                }
                aliases.push(alias.as_str().to_owned());
            }
            let mut tx = self.db.begin().await?;
            for name in std::iter::once(domain.as_str()).chain(aliases.iter().map(String::as_str)) {
                if tx.hostname_taken(name).await? {
                    return Err(conflict(format!("{name} is already used by a site")));
                }
            }
            let server_id = tx.ensure_local_server().await?;
            tx.insert_site(&NewSite {
                tenant_id,
                server_id,
                domain: domain.as_str(),
                kind: req.kind.as_str(),
                php_version: php.as_deref(),
                upstream: upstream.as_deref(),
                status: STATUS_PENDING,
                aliases: &aliases,
            })
            .await?;
            let detail = format!("tenant={tenant} type={} server={LOCAL_SERVER}", req.kind);
            record_ok(
                &mut tx,
                actor,
                &tenant,
                "site.create",
                domain.as_str(),
                &detail,
            )
            .await?;
            tx.commit().await?;
            self.site_show(actor, &domain).await
        })
        .await
    }

    /// The PHP version of a new site: `--php`, else the configured default; PHP sites only.
    fn site_php(&self, req: &SiteCreate) -> Result<Option<String>> {
        match (req.kind, req.php) {
            (SiteKind::Php, Some(v)) => Ok(Some(v.to_string())),
            (SiteKind::Php, None) => Ok(Some(self.config.host.default_php.clone())),
            (_, Some(_)) => Err(Error::invalid("--php only applies to --type php")),
            (_, None) => Ok(None),
        }
    }

    pub async fn site_delete(
        &self,
        actor: &Actor,
        domain: &DomainName,
        purge: bool,
    ) -> Result<Site> {
        self.audited(actor, "site.delete", domain.as_str(), async {
            let row = self.visible_site(actor, domain, Verb::Write).await?;
            let mut tx = self.db.begin().await?;
            tx.delete_site(row.id).await?;
            let detail = format!("tenant={} purge={purge}", row.tenant);
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                "site.delete",
                domain.as_str(),
                &detail,
            )
            .await?;
            tx.commit().await?;
            Ok(Site::from(row))
        })
        .await
    }
}
