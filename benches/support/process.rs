//! This process's memory and CPU time, from `/proc/self/status` and `/proc/self/stat`.

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`, `RssAnon`, `RssFile`), 0 if absent.
pub fn status_kib(field: &str) -> u64 {
    status_kib_in("self", field)
}

/// [`status_kib`] of process `pid` (`"self"` or a number).
pub fn status_kib_in(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of every thread of this process so far, in seconds; 10 ms
/// resolution (clock ticks of 1/100 s). On a shared machine it moves less than wall time.
pub fn cpu_secs() -> f64 {
    cpu_secs_in("self")
}

/// [`cpu_secs`] of process `pid` (`"self"` or a number).
pub fn cpu_secs_in(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces): utime is
    // field 14 and stime field 15 of the whole line, i.e. 12th and 13th after the `)`.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// CPU seconds (user + system) of this process's live threads whose name starts with
/// `prefix` (`/proc/self/task/*/comm`); threads that exited are not counted.
pub fn threads_cpu_secs(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut total = 0.0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += (ticks(11) + ticks(12)) / 100.0;
    }
    total
}
