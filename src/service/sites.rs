//! Sites: `site list|show|create|delete|enable|disable|php|alias|apply`.
//!
//! Each change is written to the database with its audit row and a `site.apply` job in one
//! transaction (the site's `revision` moves on), then the command runs the job and waits for
//! it (`site_jobs.rs`): the command returns when the site serves as asked. An apply that fails
//! leaves the host as it was, records the error on the site (status `error`) and is exit 8
//! with the validator's message; the change stays recorded, so fixing the cause and `site
//! apply` (or `host reconcile`) finishes it. Deleting marks the site `deleting` (with its
//! audit row and job); the job removes it from the host, then drops the row. A daemon that dies
//! midway leaves the job to be run again when the node's next daemon starts.

use super::audit::{conflict, record_ok};
use super::policy::{self, Owner, Resource, Verb};
use super::{Actor, Services, Site};
use crate::domain::{DomainName, Name, PhpVersion, SiteKind, Upstream};

/// A site being deleted takes no other change: finish the deletion first.
fn refuse_deleting(row: &SiteRow) -> Result<()> {
    if row.status == SITE_DELETING {
        return Err(conflict(format!(
            "site {} is being deleted: run `site delete {}` again to finish",
            row.domain, row.domain
        )));
    }
    Ok(())
}
use crate::error::{Error, Result};
use crate::store::{NewSite, SITE_DELETING, SiteChange, SiteRow};

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
            tx.lock_site_names().await?;
            for name in std::iter::once(domain.as_str()).chain(aliases.iter().map(String::as_str)) {
                if tx.hostname_taken(name).await? {
                    return Err(conflict(format!("{name} is already used by a site")));
                }
            }
            let server_id = tx.ensure_local_server().await?;
            let id = tx
                .insert_site(&NewSite {
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
            let user = self.applier()?.layout.site_user(id)?;
            tx.set_site_user(id, user.as_str()).await?;
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
            let job = self
                .enqueue_site_apply(
                    &mut tx,
                    &actor.user,
                    tenant_id,
                    &[(id, domain.clone())],
                    false,
                )
                .await?;
            tx.commit().await?;
            self.finish_site_apply(job).await?;
            self.site_show(actor, &domain).await
        })
        .await
    }

    /// The PHP version of a new site: `--php`, else the newest installed PHP-FPM, else
    /// `host.default_php`; PHP sites only.
    fn site_php(&self, req: &SiteCreate) -> Result<Option<String>> {
        match (req.kind, req.php) {
            (SiteKind::Php, Some(v)) => {
                self.require_php(v)?;
                Ok(Some(v.to_string()))
            }
            (SiteKind::Php, None) => {
                // The newest installed PHP-FPM, else host.default_php.
                let installed = self.applier()?.layout.installed_php();
                let default = match installed.last() {
                    Some(newest) => *newest,
                    None => PhpVersion::parse(&self.config.host.default_php)?,
                };
                self.require_php(default)?;
                Ok(Some(default.to_string()))
            }
            (_, Some(_)) => Err(Error::invalid("--php only applies to --type php")),
            (_, None) => Ok(None),
        }
    }

    /// Records a change to a site (revision moves on) with its audit row, then applies it.
    async fn change_site(
        &self,
        actor: &Actor,
        action: &str,
        domain: &DomainName,
        detail: impl FnOnce(&SiteRow) -> Result<(SiteChange, String)>,
        extra: impl AsyncFnOnce(&mut crate::store::Tx, &SiteRow) -> Result<()>,
    ) -> Result<Site> {
        self.audited(actor, action, domain.as_str(), async {
            let row = self.visible_site(actor, domain, Verb::Write).await?;
            refuse_deleting(&row)?;
            let (change, detail) = detail(&row)?;
            let mut tx = self.db.begin().await?;
            extra(&mut tx, &row).await?;
            tx.update_site(row.id, &change).await?;
            record_ok(
                &mut tx,
                actor,
                &row.tenant,
                action,
                domain.as_str(),
                &detail,
            )
            .await?;
            let force = action == "site.apply";
            let sites = [(row.id, domain.clone())];
            let job = self
                .enqueue_site_apply(&mut tx, &actor.user, row.tenant_id, &sites, force)
                .await?;
            tx.commit().await?;
            self.finish_site_apply(job).await?;
            self.site_show(actor, domain).await
        })
        .await
    }

    /// `site enable|disable`: a disabled site answers 503 and has no PHP-FPM pool.
    pub async fn site_set_enabled(
        &self,
        actor: &Actor,
        domain: &DomainName,
        enabled: bool,
    ) -> Result<Site> {
        let action = if enabled {
            "site.enable"
        } else {
            "site.disable"
        };
        self.change_site(
            actor,
            action,
            domain,
            |row| {
                Ok((
                    SiteChange {
                        enabled: Some(enabled),
                        ..SiteChange::default()
                    },
                    format!("tenant={}", row.tenant),
                ))
            },
            async |_, _| Ok(()),
        )
        .await
    }

    /// `site php DOMAIN X.Y`: moves a PHP site to another installed PHP-FPM version.
    pub async fn site_set_php(
        &self,
        actor: &Actor,
        domain: &DomainName,
        version: PhpVersion,
    ) -> Result<Site> {
        self.require_php(version)?;
        let version_text = version.to_string();
        self.change_site(
            actor,
            "site.php",
            domain,
            |row| {
                if row.kind != SiteKind::Php.as_str() {
                    return Err(Error::invalid(format!(
                        "site {} is a {} site: only php sites have a PHP version",
                        row.domain, row.kind
                    )));
                }
                Ok((
                    SiteChange {
                        php_version: Some(version_text.clone()),
                        ..SiteChange::default()
                    },
                    format!(
                        "tenant={} php={}->{version_text}",
                        row.tenant,
                        row.php_version.as_deref().unwrap_or("-")
                    ),
                ))
            },
            async |_, _| Ok(()),
        )
        .await
    }

    /// `site alias add|remove DOMAIN NAME`.
    pub async fn site_alias(
        &self,
        actor: &Actor,
        domain: &DomainName,
        alias: &DomainName,
        add: bool,
    ) -> Result<Site> {
        let action = if add {
            "site.alias.add"
        } else {
            "site.alias.remove"
        };
        self.change_site(
            actor,
            action,
            domain,
            |row| {
                if alias == domain {
                    return Err(Error::invalid(format!(
                        "alias {alias} is the site's own domain"
                    )));
                }
                Ok((
                    SiteChange::default(),
                    format!("tenant={} alias={alias}", row.tenant),
                ))
            },
            async |tx, row| {
                if add {
                    tx.lock_site_names().await?;
                    if tx.hostname_taken(alias.as_str()).await? {
                        return Err(conflict(format!("{alias} is already used by a site")));
                    }
                    tx.add_site_alias(row.id, alias.as_str()).await
                } else if tx.remove_site_alias(row.id, alias.as_str()).await? {
                    Ok(())
                } else {
                    Err(Error::not_found(format!(
                        "site {domain} has no alias {alias}"
                    )))
                }
            },
        )
        .await
    }

    /// `site apply DOMAIN`: renders and applies the site again (after fixing a hook, say).
    pub async fn site_apply(&self, actor: &Actor, domain: &DomainName) -> Result<Site> {
        self.change_site(
            actor,
            "site.apply",
            domain,
            |row| Ok((SiteChange::default(), format!("tenant={}", row.tenant))),
            async |_, _| Ok(()),
        )
        .await
    }

    pub async fn site_delete(
        &self,
        actor: &Actor,
        domain: &DomainName,
        purge: bool,
    ) -> Result<Site> {
        self.audited(actor, "site.delete", domain.as_str(), async {
            let row = self.visible_site(actor, domain, Verb::Write).await?;
            // Marked, recorded and queued together: from here on the job finishes the deletion
            // (removes the site from the host, then the row), in this daemon or the next.
            let mut tx = self.db.begin().await?;
            tx.update_site(
                row.id,
                &SiteChange {
                    status: Some(SITE_DELETING),
                    purge_on_delete: Some(purge || row.purge_on_delete),
                    ..SiteChange::default()
                },
            )
            .await?;
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
            let sites = [(row.id, domain.clone())];
            let job = self
                .enqueue_site_apply(&mut tx, &actor.user, row.tenant_id, &sites, false)
                .await?;
            tx.commit().await?;
            self.finish_site_apply(job).await?;
            Ok(Site::from(row))
        })
        .await
    }
}
