//! What the Hetzner stand-in (`hetzner_api`) offers: server types with prices, locations,
//! images, and the JSON of a server, in the shapes of the Hetzner Cloud API v1.

use serde_json::{Value, json};

pub(super) fn server_json(
    id: u64,
    name: &str,
    kind: &str,
    location: &str,
    image: &str,
    status: &str,
) -> Value {
    let kind = server_types()
        .into_iter()
        .find(|t| t["name"] == kind)
        .unwrap_or(Value::Null);
    let location = locations()
        .into_iter()
        .find(|l| l["name"] == location)
        .unwrap_or(Value::Null);
    let image = images()
        .into_iter()
        .find(|i| i["name"] == image)
        .unwrap_or(Value::Null);
    json!({
        "id": id, "name": name, "status": status, "created": super::hetzner_api::now_rfc3339(),
        "public_net": {"ipv4": {"ip": format!("203.0.113.{}", id % 250), "blocked": false},
                       "ipv6": {"ip": format!("2001:db8:{id:x}::/64"), "blocked": false},
                       "floating_ips": []},
        "private_net": [], "server_type": kind,
        "datacenter": {"id": 4, "name": format!("{}-dc14", location["name"].as_str().unwrap_or("")),
                       "description": "stand-in datacenter", "location": location},
        "image": image, "iso": null, "rescue_enabled": false, "locked": false,
        "backup_window": null, "outgoing_traffic": 0, "ingoing_traffic": 0,
        "included_traffic": 21990232555520u64, "protection": {"delete": false, "rebuild": false},
        "labels": {}, "volumes": [], "load_balancers": [], "primary_disk_size": 40,
        "placement_group": null,
    })
}

pub(super) fn server_types() -> Vec<Value> {
    // name, cores, memory (GB), disk (GB), net price per hour and per month (EUR)
    [
        ("cx22", 2, 4.0, 40, "0.0060", "3.7900"),
        ("cx32", 4, 8.0, 80, "0.0110", "6.8000"),
        ("cx42", 8, 16.0, 160, "0.0270", "16.4000"),
        ("cpx11", 2, 2.0, 40, "0.0070", "4.3500"),
        ("cax11", 2, 4.0, 40, "0.0060", "3.7900"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, cores, memory, disk, hourly, monthly))| {
        let prices: Vec<Value> = ["fsn1", "nbg1", "hel1"]
            .iter()
            .map(|location| {
                json!({
                    "location": location,
                    "price_hourly": {"net": hourly, "gross": hourly},
                    "price_monthly": {"net": monthly, "gross": monthly},
                    "included_traffic": 21990232555520u64,
                    "price_per_tb_traffic": {"net": "1.00", "gross": "1.19"},
                })
            })
            .collect();
        let architecture = if name.starts_with("cax") {
            "arm"
        } else {
            "x86"
        };
        json!({
            "id": i + 1, "name": name, "description": name.to_uppercase(), "cores": cores,
            "memory": memory, "disk": disk, "deprecated": false, "prices": prices,
            "storage_type": "local", "cpu_type": "shared", "architecture": architecture,
        })
    })
    .collect()
}

pub(super) fn locations() -> Vec<Value> {
    [
        (
            "fsn1",
            "Falkenstein DC Park 1",
            "DE",
            "Falkenstein",
            "eu-central",
        ),
        (
            "nbg1",
            "Nuremberg DC Park 1",
            "DE",
            "Nuremberg",
            "eu-central",
        ),
        ("hel1", "Helsinki DC Park 1", "FI", "Helsinki", "eu-central"),
        ("ash", "Ashburn, VA", "US", "Ashburn, VA", "us-east"),
        ("hil", "Hillsboro, OR", "US", "Hillsboro, OR", "us-west"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, description, country, city, zone))| {
        json!({
            "id": i + 1, "name": name, "description": description, "country": country,
            "city": city, "latitude": 50.0, "longitude": 12.0, "network_zone": zone,
        })
    })
    .collect()
}

pub(super) fn images() -> Vec<Value> {
    [
        ("ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04"),
        ("debian-12", "Debian 12", "debian", "12"),
        ("debian-13", "Debian 13", "debian", "13"),
        ("rocky-9", "Rocky Linux 9", "rocky", "9"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, description, flavor, version))| {
        json!({
            "id": 100 + i, "type": "system", "status": "available", "name": name,
            "description": description, "os_flavor": flavor, "os_version": version,
            "architecture": "x86", "rapid_deploy": true, "deprecated": null, "labels": {},
        })
    })
    .collect()
}
