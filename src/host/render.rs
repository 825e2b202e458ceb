//! Rendering the generated files (placeholder until the templates land).

use super::spec::{AccountName, ListenAddr, SafePath, SiteSpec};

pub const MANAGED_MARK: &str = "Managed by vipanel";

pub fn vhost(site: &SiteSpec) -> String {
    format!("# {MANAGED_MARK}\n# {}\n", site.domain)
}

pub fn pool(site: &SiteSpec, _nginx_user: &AccountName) -> Option<String> {
    Some(format!("; {MANAGED_MARK}\n; {}\n", site.domain))
}

pub fn catch_all(_listen: &[ListenAddr]) -> String {
    format!("# {MANAGED_MARK}\n")
}

pub fn nginx_include(sites_dir: &SafePath) -> String {
    format!("# {MANAGED_MARK}\ninclude {sites_dir}/*.conf;\n")
}

pub fn sandbox_nginx_main(_root: &SafePath, sites_dir: &SafePath) -> String {
    format!("# {MANAGED_MARK}\nevents {{}}\nhttp {{ include {sites_dir}/*.conf; }}\n")
}
