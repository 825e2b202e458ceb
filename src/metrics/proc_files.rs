//! Pure parsers of the kernel's `/proc` files the sampler reads, and the deltas between two
//! readings. No I/O here: each function takes the file's text, so tests feed it samples.

/// CPU time counters from the first (`cpu `) line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// All time: user, nice, system, idle, iowait, irq, softirq, steal.
    pub total: u64,
    /// Time not spent idle or waiting for I/O.
    pub busy: u64,
}

/// Reads the aggregate `cpu` line of `/proc/stat`. Guest time is already counted in user and
/// nice, so it is left out.
pub fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // idle (3) and iowait (4, absent on very old kernels) are not busy.
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        total,
        busy: total.saturating_sub(idle),
    })
}

/// Busy share of CPU time between two readings, 0–100; `None` when no time passed (or the
/// counters went back, as after a hot-unplugged CPU).
pub fn cpu_pct(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    if total == 0 {
        return None;
    }
    Some((busy as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
}

/// The 1-, 5- and 15-minute load averages of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<(f64, f64, f64)> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let one = fields.next()?.ok()?;
    let five = fields.next()?.ok()?;
    let fifteen = fields.next()?.ok()?;
    [one, five, fifteen]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        .then_some((one, five, fifteen))
}

/// Memory in use and in total, in bytes, from `/proc/meminfo`: used = `MemTotal` −
/// `MemAvailable` (what could not be given to a new program without swapping).
pub fn parse_meminfo(text: &str) -> Option<(i64, i64)> {
    let field = |name: &str| -> Option<i64> {
        let line = text.lines().find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':'))
        })?;
        let mut words = line.split_whitespace().skip(1);
        let kib: i64 = words.next()?.parse().ok()?;
        // Every value is in kB (KiB) whatever the line says; a unit other than kB means a
        // format we do not know.
        match words.next() {
            Some("kB") | None => kib.checked_mul(1024),
            Some(_) => None,
        }
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?;
    Some(((total - available).max(0), total))
}

/// Bytes received and sent since boot over all interfaces but loopback, from `/proc/net/dev`.
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut rx = 0u64;
    let mut tx = 0u64;
    let mut seen = false;
    // Two header lines, then `  name: rx_bytes packets errs drop fifo frame compressed
    // multicast tx_bytes …`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let counters: Vec<&str> = counters.split_whitespace().collect();
        let (Some(r), Some(t)) = (counters.first(), counters.get(8)) else {
            return None;
        };
        rx = rx.wrapping_add(r.parse().ok()?);
        tx = tx.wrapping_add(t.parse().ok()?);
        seen = true;
    }
    seen.then_some((rx, tx))
}

/// A counter's rate per second between two readings `secs` apart; `None` when the counter went
/// back (an interface went away, a 32-bit counter wrapped) or no time passed.
pub fn rate_per_s(before: u64, after: u64, secs: f64) -> Option<f64> {
    let delta = after.checked_sub(before)?;
    (secs > 0.0).then(|| delta as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  4705 356 584 3699 23 0 92 5 0 0\n\
        cpu0 1393 100 174 1782 10 0 50 2 0 0\nintr 1000 0\nctxt 12345\n";

    #[test]
    fn stat_and_cpu_share() {
        let before = parse_stat(STAT).unwrap();
        assert_eq!(before.total, 4705 + 356 + 584 + 3699 + 23 + 92 + 5);
        assert_eq!(before.busy, before.total - 3699 - 23);
        let after = CpuTimes {
            total: before.total + 200,
            busy: before.busy + 50,
        };
        assert_eq!(cpu_pct(before, after), Some(25.0));
        assert_eq!(cpu_pct(before, before), None);
        assert_eq!(cpu_pct(after, before), None);
        for bad in ["", "cpu0 1 2 3 4\n", "cpu  1 2 x 4\n", "cpu  1 2\n"] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
        // Kernels before 2.5.41 had no iowait column.
        assert_eq!(
            parse_stat("cpu 1 2 3 4\n"),
            Some(CpuTimes { total: 10, busy: 6 })
        );
    }

    #[test]
    fn loadavg() {
        assert_eq!(
            parse_loadavg("0.52 1.07 0.98 2/811 12345\n"),
            Some((0.52, 1.07, 0.98))
        );
        for bad in ["", "0.5 1.0", "a b c", "-1 0 0", "NaN 1 1", "inf 1 1"] {
            assert_eq!(parse_loadavg(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:        8000000 kB\nMemFree:          500000 kB\n\
            MemAvailable:    6000000 kB\nBuffers:          100000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some((2_000_000 * 1024, 8_000_000 * 1024))
        );
        // MemAvailable missing (kernels before 3.14), a prefix-only match, a strange unit.
        assert_eq!(parse_meminfo("MemTotal: 10 kB\nMemFree: 5 kB\n"), None);
        assert_eq!(
            parse_meminfo("MemTotalX: 10 kB\nMemAvailable: 5 kB\n"),
            None
        );
        assert_eq!(parse_meminfo("MemTotal: 10 MB\nMemAvailable: 5 kB\n"), None);
    }

    #[test]
    fn net_dev_skips_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo: 9000000   1000    0    0    0     0          0         0  9000000   1000    0    0    0     0       0          0\n  \
            eth0: 1500 10 0 0 0 0 0 0 2500 20 0 0 0 0 0 0\n  \
            wlan0:100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), Some((1600, 2700)));
        // Only loopback: no traffic figure at all rather than a false zero.
        let only_lo = "h1\nh2\n lo: 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(only_lo), None);
        assert_eq!(parse_net_dev("h1\nh2\n eth0: 1 2\n"), None);
    }

    #[test]
    fn rates() {
        assert_eq!(rate_per_s(1000, 3000, 2.0), Some(1000.0));
        assert_eq!(rate_per_s(3000, 1000, 2.0), None);
        assert_eq!(rate_per_s(0, 10, 0.0), None);
    }
}
