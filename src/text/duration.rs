//! Durations as people read them, in plans, MR texts, notes and the dashboard.

use std::time::Duration;

/// Durations as people read them: `1h 30m`, `2d 3h`, `45s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 && days == 0 {
        parts.push(format!("{minutes}m"));
    }
    if parts.is_empty() {
        format!("{}s", secs % 60)
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(59)), "59s");
        assert_eq!(human(Duration::from_secs(3600 + 1800)), "1h 30m");
        assert_eq!(
            human(Duration::from_secs(86_400 * 2 + 3600 * 3 + 60)),
            "2d 3h"
        );
    }
}
