//! Sampling the panel host (server `local`): CPU from `/proc/stat` deltas, load from
//! `/proc/loadavg`, memory from `/proc/meminfo`, the disk holding `metrics.disk_path` via
//! `statvfs`, network rates from `/proc/net/dev` deltas (loopback left out).
//!
//! Blocking file reads only (run it on a blocking thread); nothing here touches the database.
//! The daemon's loop that stores the samples lives in `service::metrics`.

pub mod proc_files;

use crate::domain::MetricValues;
use proc_files::CpuTimes;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Counters kept from one reading to the next, for the values that are deltas.
#[derive(Debug, Clone, Copy)]
struct Counters {
    taken: Instant,
    cpu: Option<CpuTimes>,
    net: Option<(u64, u64)>,
}

/// Reads the host's metrics; remembers the previous reading for CPU and network deltas.
#[derive(Debug)]
pub struct Sampler {
    proc_root: PathBuf,
    disk_path: PathBuf,
    previous: Option<Counters>,
}

impl Sampler {
    /// A sampler of this machine (`/proc`), reporting the file system that holds `disk_path`.
    pub fn new(disk_path: &Path) -> Sampler {
        Sampler::with_proc_root(Path::new("/proc"), disk_path)
    }

    /// A sampler reading its `/proc` files under `proc_root` (tests use a temporary tree).
    pub fn with_proc_root(proc_root: &Path, disk_path: &Path) -> Sampler {
        Sampler {
            proc_root: proc_root.to_owned(),
            disk_path: disk_path.to_owned(),
            previous: None,
        }
    }

    /// Takes a reading. The first only primes the counters and returns `None` (CPU and network
    /// are rates over the time between two readings); each later one returns a sample. A file
    /// that cannot be read or parsed leaves its values `None`.
    pub fn sample(&mut self) -> Option<MetricValues> {
        let now = Counters {
            taken: Instant::now(),
            cpu: self
                .read("stat")
                .as_deref()
                .and_then(proc_files::parse_stat),
            net: self
                .read("net/dev")
                .as_deref()
                .and_then(proc_files::parse_net_dev),
        };
        let before = self.previous.replace(now)?;
        let secs = now.taken.duration_since(before.taken).as_secs_f64();
        let mut values = MetricValues::default();
        if let (Some(b), Some(a)) = (before.cpu, now.cpu) {
            values.cpu_pct = proc_files::cpu_pct(b, a);
        }
        if let (Some((brx, btx)), Some((arx, atx))) = (before.net, now.net) {
            values.net_rx_bytes_per_s = proc_files::rate_per_s(brx, arx, secs);
            values.net_tx_bytes_per_s = proc_files::rate_per_s(btx, atx, secs);
        }
        if let Some((l1, l5, l15)) = self
            .read("loadavg")
            .as_deref()
            .and_then(proc_files::parse_loadavg)
        {
            (values.load1, values.load5, values.load15) = (Some(l1), Some(l5), Some(l15));
        }
        if let Some((used, total)) = self
            .read("meminfo")
            .as_deref()
            .and_then(proc_files::parse_meminfo)
        {
            (values.mem_used_bytes, values.mem_total_bytes) = (Some(used), Some(total));
        }
        if let Some((used, total)) = disk_usage(&self.disk_path) {
            (values.disk_used_bytes, values.disk_total_bytes) = (Some(used), Some(total));
        }
        Some(values)
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.proc_root.join(name)).ok()
    }
}

/// Used and total bytes of the file system holding `path`, as `df` counts them: used = all
/// blocks − free blocks (root's reserve counts as free space of the file system, not as used).
pub fn disk_usage(path: &Path) -> Option<(i64, i64)> {
    let stat = rustix::fs::statvfs(path).ok()?;
    let block = stat.f_frsize;
    let total = stat.f_blocks.checked_mul(block)?;
    let used = stat
        .f_blocks
        .saturating_sub(stat.f_bfree)
        .checked_mul(block)?;
    Some((i64::try_from(used).ok()?, i64::try_from(total).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_proc(dir: &Path, cpu_busy: u64, cpu_idle: u64, rx: u64, tx: u64) {
        std::fs::create_dir_all(dir.join("net")).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!("cpu  {cpu_busy} 0 0 {cpu_idle} 0 0 0 0 0 0\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("net/dev"),
            format!("h1\nh2\n lo: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n eth0: {rx} 0 0 0 0 0 0 0 {tx} 0 0 0 0 0 0 0\n"),
        )
        .unwrap();
        std::fs::write(dir.join("loadavg"), "1.50 0.75 0.25 1/100 42\n").unwrap();
        std::fs::write(
            dir.join("meminfo"),
            "MemTotal: 1000 kB\nMemAvailable: 250 kB\n",
        )
        .unwrap();
    }

    #[test]
    fn first_reading_primes_then_deltas() {
        let dir = tempfile::tempdir().unwrap();
        write_proc(dir.path(), 100, 900, 1000, 2000);
        let mut sampler = Sampler::with_proc_root(dir.path(), dir.path());
        assert_eq!(sampler.sample(), None);
        write_proc(dir.path(), 130, 970, 1000 + 10_000, 2000);
        let v = sampler.sample().unwrap();
        assert_eq!(v.cpu_pct, Some(30.0));
        assert_eq!(
            (v.load1, v.load5, v.load15),
            (Some(1.5), Some(0.75), Some(0.25))
        );
        assert_eq!(
            (v.mem_used_bytes, v.mem_total_bytes),
            (Some(750 * 1024), Some(1000 * 1024))
        );
        assert!(v.net_rx_bytes_per_s.unwrap() > 0.0);
        assert_eq!(v.net_tx_bytes_per_s, Some(0.0));
        let (used, total) = (v.disk_used_bytes.unwrap(), v.disk_total_bytes.unwrap());
        assert!(total > 0 && (0..=total).contains(&used), "{used}/{total}");
    }

    #[test]
    fn missing_files_leave_values_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut sampler = Sampler::with_proc_root(dir.path(), &dir.path().join("nowhere"));
        assert_eq!(sampler.sample(), None);
        assert_eq!(sampler.sample(), Some(MetricValues::default()));
    }

    #[test]
    fn this_machine() {
        let mut sampler = Sampler::new(Path::new("/"));
        sampler.sample();
        let v = sampler.sample().unwrap();
        assert!(v.mem_total_bytes.unwrap() > 0);
        assert!(v.disk_total_bytes.unwrap() > 0);
        assert!(v.load1.is_some());
    }
}
